"""Registration rules: ages, consent, phases, preferences."""

from datetime import date

import pytest

from registration.domain.rules import (
    age_band,
    age_on,
    check_preferences,
    needs_parent_consent,
    phase_of,
)

SESSIONS = {"S1", "S2", "S3", "S4"}


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(2010, 6, 5), date(2026, 6, 5), 16),  # birthday on the day itself
        (date(2010, 6, 6), date(2026, 6, 5), 15),  # the day after
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # leap-day birthday
    ],
)
def test_age_counts_completed_years(birth, day, age):
    assert age_on(birth, day) == age


def test_consent_is_needed_for_pupils_under_sixteen_only():
    day = date(2026, 11, 20)
    assert needs_parent_consent("pupil", age_on(date(2011, 1, 1), day))
    assert not needs_parent_consent("pupil", age_on(date(2010, 11, 20), day))
    assert not needs_parent_consent("young_adult", age_on(date(2012, 1, 1), day))
    assert not needs_parent_consent("pupil", None)


def test_phase_follows_the_school_for_pupils_and_the_person_otherwise():
    assert phase_of("pupil", "vmbo", None) == "vo"
    assert phase_of("pupil", "pro", None) == "pro_vso"
    assert phase_of("mbo_student", None, None) == "mbo"
    assert phase_of("young_adult", None, "working") == "working"


def _fields(problems):
    return [p.field for p in problems]


def test_info_day_needs_three_distinct_known_choices_and_another_backup():
    assert check_preferences("infoday", ["S1", "S2", "S3"], "S4", [], SESSIONS, set()) == []
    assert _fields(check_preferences("infoday", ["S1", "S1", "S3"], "S4", [], SESSIONS, set())) == [
        "choices"
    ]
    assert _fields(check_preferences("infoday", ["S1", "S2"], None, [], SESSIONS, set())) == [
        "choices",
        "backup",
    ]
    assert _fields(check_preferences("infoday", ["S1", "S2", "S9"], "S3", [], SESSIONS, set())) == [
        "choices"
    ]


def test_orientation_day_ranks_one_to_three_known_workshops():
    workshops = {"w1", "w2", "w3", "w4"}
    assert check_preferences("orientation_day", [], None, ["w2", "w1"], set(), workshops) == []
    assert _fields(check_preferences("orientation_day", [], None, [], set(), workshops)) == [
        "ranking"
    ]
    assert _fields(
        check_preferences("orientation_day", [], None, ["w1", "w2", "w3", "w4"], set(), workshops)
    ) == ["ranking"]


def test_other_activities_take_no_choices():
    assert _fields(check_preferences("career_event", ["S1"], None, [], SESSIONS, set())) == [
        "choices"
    ]


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (None, None),
        (11, "other"),
        (12, "12-15"),
        (15, "12-15"),
        (16, "16-17"),
        (17, "16-17"),
        (18, "18-22"),
        (22, "18-22"),
        (23, "23-27"),
        (27, "23-27"),
        (28, "other"),
    ],
)
def test_the_age_band_that_travels_instead_of_the_age(age, band):
    assert age_band(age) == band
