"""Every kind renders to a complete Dutch mail (text + HTML), the calendar follows one entry
through assign -> change -> cancel, and the defects found from outside stay fixed."""

from email import policy
from email.parser import BytesParser

import pytest
from icalendar import Calendar

from notifications.adapters.smtp import Mailer
from notifications.domain.samples import sample_mail
from notifications.domain.texts import KINDS, render

CONTACT = {
    "registration_id": "r-42",
    "person_id": "p1",
    "first_name": "Sanne",
    "email": "sanne@example.nl",
    "parent_email": "ouder@example.nl",
    "consent": "not_required",
    "activity": {
        "id": "vld",
        "title": "Voorlichtingsdag MBO-beroepen",
        "kind": "infoday",
        "starts_at": "2027-11-20T07:45:00+00:00",
        "ends_at": "2027-11-20T11:00:00+00:00",
        "location": "MBO Amersfoort",
    },
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_a_complete_mime_message_with_both_parts(kind):
    raw = sample_mail(kind, Mailer({"MAIL_FROM": "LOB <lob@regio-eem.example>"}))
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail["Subject"] and mail["Message-ID"] and mail["To"]
    assert mail["Subject"] == mail["Subject"].strip()  # no fold before a long subject
    assert mail["Date"].endswith(("+0100", "+0200"))
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert text.startswith("Beste ") and "Projectgroep LOB regio Eem" in text
    assert '<html lang="nl">' in html
    for part in mail.iter_attachments():
        Calendar.from_ical(part.get_content())  # every invitation parses


def test_html_is_escaped():
    contact = {**CONTACT, "first_name": "<script>x</script>"}
    email = render("sign_up_confirmation", contact, {})
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html


def test_a_capacity_only_programme_says_the_place_is_confirmed():
    email = render("programme_assigned", CONTACT, {"plan_version": 1})
    assert "Je plek is bevestigd" in email.text
    assert "Je programma" not in email.text.split("\n\n", 1)[1].split("\n")[0]
    assert "klaar:" not in email.text


def test_a_bus_tour_does_not_read_in_vertrek():
    contact = {
        **CONTACT,
        "activity": {**CONTACT["activity"], "kind": "bus_tour", "location": "Vertrek: Amersfoort"},
    }
    email = render("programme_assigned", contact, {"seat": {"bus_id": "b1", "seat": 3}})
    assert "in Vertrek" not in email.text
    assert "\nVertrek: Amersfoort\n" in email.text


def test_how_to_cancel_is_said_with_or_without_a_personal_link():
    plain = render("sign_up_confirmation", CONTACT, {})
    assert "Meld je dan af door te antwoorden op deze e-mail" in plain.text
    linked = {**CONTACT, "links": {"personal": "https://lob.example/mijn/abc", "consent": None}}
    email = render("sign_up_confirmation", linked, {})
    assert "Meld je dan af via je persoonlijke pagina," in email.text
    # the link on a line of its own: no comma or full stop for a mail program to take into it
    assert "\nhttps://lob.example/mijn/abc\n" in email.text
    assert 'href="https://lob.example/mijn/abc"' in email.html


def test_a_changed_programme_says_what_changed():
    before = {"sessions": [{"round": 1, "session_id": "S1", "title": "Zorg", "room": "L1"}]}
    after = {
        "sessions": [{"round": 1, "session_id": "S2", "title": "ICT", "room": "L2"}],
        "previous": before,
    }
    email = render("programme_changed", CONTACT, after)
    assert "Ronde 1: was Zorg (L1), wordt ICT (L2)" in email.text


def test_parent_mails_go_to_the_parent_with_the_consent_link_and_deadline():
    contact = {**CONTACT, "links": {"personal": "https://p", "consent": "https://c/t"}}
    data = {"expires_at": "2027-11-10T12:00:00+00:00"}
    email = render("consent_requested_parent", contact, data)
    assert email.to == "ouder@example.nl"
    assert "https://c/t" in email.text and "woensdag 10 november 2027" in email.text
    assert "https://p" not in email.text  # the pupil's own page is not the parent's
    pupil = render("consent_requested_pupil", contact, data)
    assert pupil.to == "sanne@example.nl" and "ouder of verzorger" in pupil.text


def _event(email):
    [(_, _mime, content)] = email.attachments
    calendar = Calendar.from_ical(content)
    return str(calendar["METHOD"]), calendar.walk("VEVENT")[0], calendar


def test_one_calendar_entry_from_assign_through_change_to_cancel():
    steps = [
        render("programme_assigned", CONTACT, {"sequence": 0, "plan_version": 1}),
        render("programme_changed", CONTACT, {"sequence": 1, "plan_version": 2}),
        render("sign_up_cancelled", CONTACT, {"sequence": 2}),
    ]
    methods, uids, sequences = [], set(), []
    for email in steps:
        method, entry, calendar = _event(email)
        methods.append(method)
        uids.add(str(entry["UID"]))
        sequences.append(int(entry["SEQUENCE"]))
        assert "mailto:lob@regio-eem.example" in str(entry["ORGANIZER"])
        assert str(entry["ATTENDEE"]) == "mailto:sanne@example.nl"
        assert entry["DTSTART"].params["TZID"] == "Europe/Amsterdam"
        assert calendar.walk("VTIMEZONE")
        assert email.attachments[0][1] == f"text/calendar; method={method}"
    assert methods == ["REQUEST", "REQUEST", "CANCEL"]
    assert len(uids) == 1 and sequences == sorted(set(sequences))
