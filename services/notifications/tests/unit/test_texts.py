"""What pupils read: Dutch texts, right times, calendar entries that update in place."""

from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from notifications.domain.texts import UnknownTemplate, dutch_date, render

CONTACT = {
    "registration_id": "r-42",
    "person_id": "p1",
    "first_name": "Sanne",
    "email": "sanne@example.nl",
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
PROGRAMME = {
    "plan_version": 2,
    "sessions": [
        {
            "round": 1,
            "session_id": "S01",
            "title": "Zorg & Welzijn",
            "room": "Lokaal 101",
            "starts_at": "2027-11-20T08:00:00+00:00",
            "ends_at": "2027-11-20T08:45:00+00:00",
        },
        {"round": 2, "session_id": None, "title": "", "room": ""},
        {"round": 3, "session_id": "S07", "title": "ICT & Software", "room": "Lokaal 107"},
    ],
}


def _calendar(email):
    [(_, mime, content)] = email.attachments
    assert mime.startswith("text/calendar")
    return Calendar.from_ical(content).walk("VEVENT")[0]


def test_dates_are_dutch_and_in_amsterdam_time():
    # 23:30 UTC on 31 Dec is already New Year's day in Amsterdam
    assert dutch_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "vrijdag 1 januari 2027"


def test_confirmation_in_dutch_with_local_times():
    email = render("sign_up_confirmation", CONTACT, {})
    assert email.to == "sanne@example.nl"
    assert email.subject == (
        "Aanmelding ontvangen: Voorlichtingsdag MBO-beroepen (zaterdag 20 november 2027)"
    )
    assert "Wanneer: zaterdag 20 november 2027, 08:45 - 12:00 uur\nWaar: MBO Amersfoort" in (
        email.text
    )
    assert "toestemming" not in email.text


def test_under_sixteen_the_confirmation_mentions_consent():
    email = render("sign_up_confirmation", {**CONTACT, "consent": "pending"}, {})
    assert "ouder of verzorger om toestemming" in email.text


def test_programme_lists_each_round_and_says_when_there_is_no_place_yet():
    email = render("programme_assigned", CONTACT, PROGRAMME)
    assert (
        email.subject == "Je programma: Voorlichtingsdag MBO-beroepen (zaterdag 20 november 2027)"
    )
    assert "- Ronde 1 (09:00 - 09:45): Zorg & Welzijn, Lokaal 101" in email.text
    assert "- Ronde 2: nog geen plek" in email.text
    assert "- Ronde 3: ICT & Software, Lokaal 107" in email.text


def test_a_changed_programme_updates_the_same_calendar_entry():
    first = _calendar(render("sign_up_confirmation", CONTACT, {"sequence": 0}))
    changed = _calendar(render("programme_changed", CONTACT, {**PROGRAMME, "sequence": 1}))
    assert str(first["UID"]) == str(changed["UID"])
    assert int(changed["SEQUENCE"]) > int(first["SEQUENCE"])
    assert "Zorg & Welzijn" in str(changed["DESCRIPTION"])


def test_waitlisted_names_the_position():
    email = render("waitlisted", CONTACT, {"position": 3})
    assert "op plaats 3" in email.text
    assert email.attachments == ()


def test_an_unknown_template_is_an_error():
    with pytest.raises(UnknownTemplate):
        render("birthday_card", CONTACT, {})


BUS_TOUR = {
    "plan_version": 1,
    "seat": {"bus_id": "touringcar", "seat": 7},
    "itinerary": [
        {
            "stop_id": "amersfoort-cs",
            "name": "Amersfoort Centraal",
            "leave_at": "2027-10-14T08:30:00+02:00",
        },
        {
            "stop_id": "ede",
            "name": "Aeres MBO Ede",
            "arrive_at": "2027-10-14T09:05:00+02:00",
            "visit_starts_at": "2027-10-14T09:30:00+02:00",
            "leave_at": "2027-10-14T10:45:00+02:00",
        },
        {
            "stop_id": "amersfoort-cs",
            "name": "Amersfoort Centraal",
            "arrive_at": "2027-10-14T11:20:00+02:00",
        },
    ],
}


def test_a_bus_seat_comes_with_the_timetable():
    email = render("programme_assigned", CONTACT, BUS_TOUR)
    assert "- Bus touringcar, stoel 7" in email.text
    assert "- 08:30 vertrek vanaf Amersfoort Centraal" in email.text
    assert "- 09:30 - 10:45 Aeres MBO Ede" in email.text
    assert "- 11:20 terug bij Amersfoort Centraal" in email.text


def test_a_place_from_the_waiting_list_says_so():
    email = render(
        "programme_assigned",
        CONTACT,
        {"plan_version": 2, "from_waitlist": True, "workshop": {"workshop_id": "garage"}},
    )
    assert email.subject.startswith("Er is een plek voor je")
    assert "Je stond op de wachtlijst" in email.text
    assert "- Workshop: garage" in email.text


def test_waitlisted_names_the_workshop_that_is_full():
    email = render("waitlisted", CONTACT, {"position": 1, "item_title": "Autotechniek"})
    assert "Autotechniek (Voorlichtingsdag MBO-beroepen) op zaterdag 20 november 2027 is vol" in (
        email.text
    )
