"""Parental consent, links and attendance marks: the rules in plain Python."""

from datetime import UTC, datetime, timedelta

import pytest

from registration.domain import consent
from registration.domain.attendance import (
    AttendanceFileRefused,
    is_change,
    present_value,
    read_attendance,
)
from registration.domain.consent import Answer, ConsentNotOpen, ConsentState
from registration.domain.links import (
    Link,
    LinkExpired,
    LinkPurpose,
    LinkUnknown,
    check_link,
    new_token,
    token_hash,
    well_formed,
)
from registration.domain.model import Consent, RegistrationStatus

NOW = datetime(2030, 11, 1, 12, tzinfo=UTC)
PENDING = ConsentState(RegistrationStatus.PENDING_CONSENT, Consent.PENDING, NOW + timedelta(days=3))


def test_consent_makes_it_a_sign_up_and_announces_consent_then_the_sign_up():
    outcome = consent.decide(PENDING, Answer.GIVE, NOW)

    assert outcome.status is RegistrationStatus.SIGNED_UP
    assert outcome.consent is Consent.GIVEN
    assert outcome.events == ("consent_given", "signed_up")
    assert not outcome.erase


def test_a_refusal_voids_the_sign_up_and_erases_after_the_grace():
    outcome = consent.decide(PENDING, Answer.REFUSE, NOW)

    assert (outcome.status, outcome.consent) == (RegistrationStatus.WITHDRAWN, Consent.REFUSED)
    assert outcome.events == ("consent_refused",)
    assert outcome.refusal_reason == "refused"
    assert outcome.erase


def test_a_second_answer_changes_nothing():
    given = ConsentState(RegistrationStatus.SIGNED_UP, Consent.GIVEN, PENDING.expires_at)
    refused = ConsentState(RegistrationStatus.WITHDRAWN, Consent.REFUSED, PENDING.expires_at)

    for state, answer in ((given, Answer.GIVE), (given, Answer.REFUSE), (refused, Answer.GIVE)):
        with pytest.raises(ConsentNotOpen):
            consent.decide(state, answer, NOW)


def test_withdrawal_is_only_of_a_consent_given_and_is_a_cancellation_and_erasure():
    given = ConsentState(RegistrationStatus.SIGNED_UP, Consent.GIVEN, PENDING.expires_at)

    outcome = consent.decide(given, Answer.WITHDRAW, NOW)

    assert outcome.events == ("sign_up_cancelled", "consent_refused")
    assert (outcome.refusal_reason, outcome.erase) == ("withdrawn", True)
    with pytest.raises(ConsentNotOpen):
        consent.decide(PENDING, Answer.WITHDRAW, NOW)


def test_no_answer_after_the_expiry_and_the_sweep_expires_it():
    later = PENDING.expires_at + timedelta(seconds=1)

    with pytest.raises(ConsentNotOpen) as late:
        consent.decide(PENDING, Answer.GIVE, later)
    outcome = consent.expire(PENDING, later)

    assert late.value.status == 410
    assert consent.expire(PENDING, NOW) is None
    assert outcome.consent is Consent.EXPIRED and outcome.refusal_reason == "expired"


def test_a_cancelled_sign_up_takes_no_answer():
    cancelled = ConsentState(RegistrationStatus.CANCELLED, Consent.PENDING, PENDING.expires_at)

    with pytest.raises(ConsentNotOpen):
        consent.decide(cancelled, Answer.GIVE, NOW)
    assert not consent.may_ask_again(cancelled)
    assert consent.may_ask_again(PENDING)


def test_tokens_are_random_stored_as_hashes_and_checked_for_purpose_and_expiry():
    token = new_token()
    link = Link(LinkPurpose.CONSENT, "r1", NOW + timedelta(days=1))

    assert well_formed(token) and token != new_token()
    assert token not in token_hash(token) and len(token_hash(token)) == 64
    assert not well_formed("kort") and not well_formed(token + "/..") and not well_formed(None)
    assert check_link(link, LinkPurpose.CONSENT, NOW) is link
    with pytest.raises(LinkUnknown):
        check_link(link, LinkPurpose.PERSONAL, NOW)  # a consent link opens no personal page
    with pytest.raises(LinkUnknown):
        check_link(None, LinkPurpose.CONSENT, NOW)
    with pytest.raises(LinkExpired):
        check_link(link, LinkPurpose.CONSENT, NOW + timedelta(days=2))


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("ja", True),
        ("X", True),
        ("1", True),
        (" Ja ", True),
        ("nee", False),
        ("0", False),
        ("", False),
        ("afwezig", False),
        ("misschien", None),
        ("2", None),
    ],
)
def test_what_a_supervisor_writes_in_the_aanwezig_column(text, present):
    assert present_value(text) is present


def test_recording_the_same_twice_is_no_change_and_a_correction_is():
    assert is_change(None, True) and is_change(True, False)
    assert not is_change(True, True) and not is_change(False, False)


def _rows(*lines):
    return [(n, line) for n, line in enumerate(lines, start=1)]


def test_a_ticked_room_list_gives_one_mark_per_registration_present_in_any_round():
    table = _rows(
        ["ronde", "sessie", "achternaam", "aanmeldingsnummer", "aanwezig"],
        ["1", "S1", "Bakker", "r1", "x"],
        ["2", "S2", "Bakker", "r1", ""],
        ["1", "S1", "Vries", "r2", "nee"],
        ["", "", "", "", ""],
    )

    marks = read_attendance(table)

    assert marks.problems == ()
    assert {(m.registration_id, m.present) for m in marks.marks} == {("r1", True), ("r2", False)}


def test_duplicated_rows_unknown_values_and_missing_numbers_are_named_per_row():
    table = _rows(
        ["Aanmeldingsnummer", "Aanwezig"],
        ["r1", "x"],
        ["r1", "x"],
        ["r2", "misschien"],
        ["", "ja"],
    )

    problems = read_attendance(table).problems

    assert [(p.row, p.field) for p in problems] == [
        (3, "row"),
        (4, "present"),
        (5, "registration_id"),
    ]
    assert "regel 2" in problems[0].message


def test_a_file_without_the_columns_or_with_nothing_ticked_is_refused_as_a_whole():
    with pytest.raises(AttendanceFileRefused, match="aanwezig"):
        read_attendance(_rows(["naam", "klas"], ["Sanne", "3b"]))
    with pytest.raises(AttendanceFileRefused, match="leeg"):
        read_attendance(_rows(["aanmeldingsnummer", "aanwezig"], ["r1", ""], ["r2", ""]))


def test_a_roster_row_of_a_pupil_waiting_for_consent_is_refused_with_why():
    from registration.domain.roster import RosterRow
    from registration.domain.roster_sign_up import KnownPupil, Outcome, decide_row

    fields = {f: None for f in RosterRow.__dataclass_fields__}
    row = RosterRow(**{**fields, "line": 2, "first_name": "Noor", "last_name": "Jansen"})
    known = KnownPupil(
        **{
            **{f: None for f in KnownPupil.__dataclass_fields__},
            "person_id": "p1",
            "status": "pending_consent",
        }
    )

    decision = decide_row(row, known, "Loopbaanevenement")

    assert decision.outcome is Outcome.REFUSED and "toestemming" in decision.reason
