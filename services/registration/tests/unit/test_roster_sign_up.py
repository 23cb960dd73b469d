"""A roster's rows as sign-ups: the school's legal basis, who is a known pupil, what rows do."""

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from registration.domain.caller import Caller, CallerRole
from registration.domain.errors import InvalidSignUp
from registration.domain.model import Activity, Consent, LegalBasis, Preferences, School
from registration.domain.roster import RosterRow
from registration.domain.roster_sign_up import (
    KnownPupil,
    KnownPupils,
    Outcome,
    RosterCounts,
    decide_row,
    decide_rows,
    row_problems,
    sign_up_request,
)
from registration.domain.sign_up import decide_sign_up

FAREL = Caller(CallerRole.SCHOOL, "farel-college")
SCHOOL = School("farel-college", "Farel College", "vmbo", "Amersfoort")
DAY = Activity("klas", "career_event", "Loopbaandag", datetime(2026, 12, 15, 9, tzinfo=UTC))
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
ZOE = RosterRow(
    line=2,
    student_number="301187",
    first_name="Zoë",
    last_name_prefix="de",
    last_name="Vries",
    class_name="3B",
    school_year=3,
    date_of_birth=date(2011, 3, 14),
    email=None,
    parent_email=None,
)


def known(**changes):
    pupil = KnownPupil(
        person_id="p1",
        student_number="301187",
        first_name="Zoë",
        last_name="de Vries",
        date_of_birth=date(2011, 3, 14),
        email=None,
        parent_email=None,
        school_year=3,
        registration_id="r1",
        status="signed_up",
    )
    return replace(pupil, **changes)


def test_a_roster_pupil_under_16_without_addresses_is_signed_up_on_the_schools_basis():
    request = sign_up_request(ZOE, "klas", "farel-college")
    decision = decide_sign_up(FAREL, request, DAY, SCHOOL, (), NOW)

    assert decision.consent is Consent.NOT_REQUIRED  # 15: no parent consent round
    assert decision.legal_basis is LegalBasis.SCHOOL
    assert decision.email is None and decision.last_name == "de Vries"


def test_the_same_pupil_signed_up_singly_still_needs_an_address_and_a_parents_consent():
    request = replace(sign_up_request(ZOE, "klas", "farel-college"), legal_basis=None)

    with pytest.raises(InvalidSignUp) as refused:
        decide_sign_up(FAREL, request, DAY, SCHOOL, (), NOW)

    assert {v.field for v in refused.value.violations} == {"email", "parent_email"}


def test_a_rule_of_the_sign_up_lands_on_the_rows_line_and_column():
    toddler = replace(ZOE, line=7, date_of_birth=date(2023, 1, 1))
    with pytest.raises(InvalidSignUp) as refused:
        decide_sign_up(
            FAREL, sign_up_request(toddler, "klas", "farel-college"), DAY, SCHOOL, (), NOW
        )

    [problem] = row_problems(toddler, refused.value.violations)
    assert (problem.row, problem.field) == (7, "date_of_birth")


def test_a_pupil_is_found_by_student_number_though_the_name_was_corrected():
    pupils = KnownPupils([known(first_name="Zoe")])
    assert pupils.find(ZOE).person_id == "p1"


def test_without_a_number_a_pupil_is_found_by_name_and_birth_date_accents_and_case_aside():
    pupils = KnownPupils([known(student_number=None, first_name="ZOE", last_name="De  Vries")])
    assert pupils.find(replace(ZOE, student_number=None)).person_id == "p1"
    assert pupils.find(ZOE).person_id == "p1"  # the number is new: the pupil without one
    assert pupils.find(replace(ZOE, date_of_birth=date(2011, 3, 15))) is None


def test_another_number_with_the_same_name_and_birthday_is_another_pupil():
    pupils = KnownPupils([known(student_number="999")])
    assert pupils.find(ZOE) is None


def test_what_each_row_does():
    assert decide_row(ZOE, None, "Dag").outcome is Outcome.CREATED
    assert decide_row(ZOE, known(status=None), "Dag").outcome is Outcome.CREATED
    assert decide_row(ZOE, known(), "Dag").outcome is Outcome.UNCHANGED
    corrected = replace(ZOE, email="Zoe@Leerling.example")
    assert decide_row(corrected, known(), "Dag").outcome is Outcome.UPDATED
    assert decide_row(corrected, known(email="zoe@leerling.example"), "Dag").outcome is (
        Outcome.UNCHANGED
    )
    cancelled = decide_row(ZOE, known(status="cancelled"), "Dag")
    assert cancelled.outcome is Outcome.REFUSED and "afgemeld" in cancelled.reason


def test_an_empty_cell_keeps_what_is_stored():
    assert decide_row(ZOE, known(email="zoe@example.nl"), "Dag").outcome is Outcome.UNCHANGED


def test_other_info_day_choices_are_refused_not_silently_changed():
    wishes = Preferences(("a", "b", "c"), "d")
    row = replace(ZOE, choices=("a", "b", "e"), backup="d")
    assert decide_row(row, known(preferences=wishes), "Dag").outcome is Outcome.REFUSED
    same = replace(ZOE, choices=("a", "b", "c"), backup="d")
    assert decide_row(same, known(preferences=wishes), "Dag").outcome is Outcome.UNCHANGED


def test_two_rows_that_are_one_known_pupil_are_a_problem_of_the_later_line():
    by_name = replace(ZOE, line=5, student_number=None)
    decisions, problems = decide_rows([ZOE, by_name], KnownPupils([known()]), "Dag")

    assert [d.row.line for d in decisions] == [2]
    assert [(p.row, p.field) for p in problems] == [(5, "row")]
    assert RosterCounts.of(decisions) == RosterCounts(unchanged=1)
