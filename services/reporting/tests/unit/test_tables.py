"""The region's tables as pure functions: which rows, which columns, what counts, which period."""

from __future__ import annotations

from datetime import date

import pytest

from reporting.domain.attendance import no_shows
from reporting.domain.comparison import year_over_year
from reporting.domain.facts import Activity, FactCount, School
from reporting.domain.legacy import tabel_3a, tabel_3b
from reporting.domain.periods import (
    PeriodError,
    SchoolYear,
    legacy_period,
    programme_period,
    school_year_of,
)
from reporting.domain.programme import AgeBands, programme_12_27

SCHOOLS = [
    School("farel", "Farel College", "vmbo", "Amersfoort"),
    School("atrium", "'t Atrium", "vmbo", "Amersfoort"),
    School("waldheim", "Waldheim-mavo", "vmbo", "Baarn"),
    School("axia", "Axia College (vso)", "vso", "Amersfoort"),
    School("baander", "De Baander", "pro", "Amersfoort"),
    School("mboa", "MBO Amersfoort", "mbo", "Amersfoort"),
    School("hoornbeeck", "Hoornbeeck College", "mbo", "Amersfoort"),
    School("gemeente", "Gemeente Amersfoort", "other", "Amersfoort"),
]
INFODAY = Activity("vld", "infoday", "Voorlichtingsdag", date(2024, 11, 14), ("pupils",))
CAREER = Activity(
    "lbe", "career_event", "Loopbaanevenement", date(2025, 6, 5), ("pupils", "parents")
)
BUS = Activity("bus", "bus_tour", "LOB-bustour", date(2024, 10, 17), ("professionals",))
NETWORK = Activity(
    "ln", "network_meeting", "Lerend Netwerk", date(2024, 12, 12)
)  # 1.0: no audience
YEAR = SchoolYear(2024)


def pupil(activity="vld", school="farel", n=1, **kw):
    return FactCount(activity_id=activity, role="pupil", school_id=school, n=n, **kw)


def pro(activity="bus", school="farel", attended=True, n=1, **kw):
    return FactCount(activity, "professional", attended=attended, school_id=school, n=n, **kw)


# --- periods ---------------------------------------------------------------------------------


def test_a_school_year_runs_from_august_to_july():
    year = SchoolYear.parse("2024-2025")
    assert (year.starts, year.ends) == (date(2024, 8, 1), date(2025, 7, 31))
    assert school_year_of(date(2025, 7, 31)) == year
    assert school_year_of(date(2025, 8, 1)) == SchoolYear(2025)


@pytest.mark.parametrize("text", ["2024/2025", "2024-2026", "24-25", "2025-2024", ""])
def test_a_school_year_written_otherwise_is_refused_with_the_form_to_use(text):
    with pytest.raises(PeriodError, match="2024-2025"):
        SchoolYear.parse(text)


def test_school_year_2025_2026_is_split_at_new_year_between_the_programmes():
    legacy = legacy_period(SchoolYear(2025))
    new = programme_period(school_year=SchoolYear(2025))

    assert (legacy.starts, legacy.ends) == (date(2025, 8, 1), date(2025, 12, 31))
    assert (new.starts, new.ends) == (date(2026, 1, 1), date(2026, 7, 31))
    assert "tot en met 31 december 2025" in legacy.label
    assert "vanaf 1 januari 2026" in new.label


def test_each_programme_refuses_the_years_of_the_other():
    with pytest.raises(PeriodError, match="programme-12-27"):
        legacy_period(SchoolYear(2026))
    with pytest.raises(PeriodError, match="tabel-3a"):
        programme_period(calendar_year=2025)
    with pytest.raises(PeriodError, match="niet allebei"):
        programme_period(school_year=SchoolYear(2026), calendar_year=2026)


# --- Tabel 3a --------------------------------------------------------------------------------


def test_tabel_3a_has_every_vmbo_school_also_without_pupils_and_others_only_when_they_took_part():
    facts = [pupil(n=3), pupil(school="axia", n=2), pupil("lbe", "atrium", n=4)]

    table = tabel_3a(YEAR, SCHOOLS, [INFODAY, CAREER, BUS], facts)

    rows = [(r.label, r.cells, r.total) for r in table.sections[0].rows]
    assert rows == [
        ("'t Atrium", (0, 4), 4),
        ("Axia College (vso)", (2, 0), 2),
        ("Farel College", (3, 0), 3),
        ("Waldheim-mavo", (0, 0), 0),
    ]
    assert [c.key for c in table.columns] == ["vld", "lbe"]
    assert table.totals == (5, 4)


def test_tabel_3a_counts_sign_ups_not_cancelled_and_not_professionals_or_parents():
    facts = [
        pupil(n=5),
        pupil(status="cancelled", n=2),
        pupil(attended=False),  # a no-show still signed up: the report counts sign-ups
        FactCount("vld", "professional", school_id="farel"),
        FactCount("lbe", "parent", school_id="farel"),
    ]

    table = tabel_3a(YEAR, SCHOOLS, [INFODAY, CAREER], facts)

    assert table.row("farel").cells == (6,)
    assert [c.key for c in table.columns] == ["vld"]


def test_tabel_3a_leaves_out_activities_of_other_years_and_names_cancelled_and_empty_ones():
    before = Activity("old", "infoday", "Voorlichtingsdag", date(2024, 7, 31))
    called_off = Activity(
        "od", "orientation_day", "Oriëntatiedag", date(2025, 2, 13), cancelled=True
    )
    no_sign_ups = Activity("od2", "orientation_day", "Oriëntatiedag 2", date(2025, 3, 6))
    facts = [pupil(), pupil("old", n=9), pupil("od", n=7)]

    table = tabel_3a(YEAR, SCHOOLS, [INFODAY, before, called_off, no_sign_ups], facts)

    assert [c.key for c in table.columns] == ["vld"]
    assert table.grand_total == 1
    assert "Afgelast, niet geteld: Oriëntatiedag (13-02-2025)." in table.notes
    assert any("Oriëntatiedag 2 (06-03-2025)" in n for n in table.notes)


def test_an_activity_whose_announcement_has_not_arrived_still_counts_under_its_id():
    facts = [pupil("vld-x", activity_kind="infoday", activity_date=date(2024, 11, 14), n=2)]

    table = tabel_3a(YEAR, SCHOOLS, [], facts)

    assert [(c.key, c.label) for c in table.columns] == [("vld-x", "vld-x (14-11-2024)")]
    assert table.row("farel").total == 2


def test_in_2025_2026_tabel_3a_stops_at_new_year():
    autumn = Activity("vld25", "infoday", "Voorlichtingsdag", date(2025, 11, 20))
    eve = Activity("eve", "career_event", "Loopbaanevenement", date(2025, 12, 31))
    spring = Activity("od26", "orientation_day", "Oriëntatiedag", date(2026, 2, 12))
    facts = [pupil("vld25", n=6), pupil("eve"), pupil("od26", n=8)]

    table = tabel_3a(SchoolYear(2025), SCHOOLS, [autumn, eve, spring], facts)

    assert [c.key for c in table.columns] == ["vld25", "eve"]
    assert table.grand_total == 7
    assert "(tot en met 31 december 2025)" in table.title


def test_pupils_without_a_school_get_a_row_of_their_own():
    table = tabel_3a(YEAR, SCHOOLS, [INFODAY], [pupil(school=None, n=2)])

    assert table.row(None).label == "Zonder school"
    assert table.grand_total == 2


# --- Tabel 3b --------------------------------------------------------------------------------


def test_tabel_3b_counts_professionals_who_attended_not_those_who_signed_up():
    facts = [
        pro(n=3),
        pro(attended=False, n=2),
        pro(attended=None, n=4),
        pro("ln", "mboa", n=2),
        FactCount("bus", "mbo_student", attended=True, school_id="mboa"),
        pupil("bus"),
    ]

    table = tabel_3b(YEAR, SCHOOLS, [BUS, NETWORK, INFODAY], facts)

    assert [c.key for c in table.columns] == ["bus", "ln"]  # the 1.0 network meeting by kind
    assert table.row("farel").cells == (3, 0)
    assert table.row("mboa").cells == (0, 2)
    assert table.grand_total == 5


def test_tabel_3b_lists_schools_then_mbo_institutions_then_other_institutions():
    facts = [pro(school="gemeente"), pro(school=None, n=2), pro(school="baander")]

    table = tabel_3b(YEAR, SCHOOLS, [BUS], facts)

    assert [r.label for r in table.sections[0].rows] == [
        "'t Atrium",
        "De Baander",
        "Farel College",
        "Waldheim-mavo",
        "Hoornbeeck College",
        "MBO Amersfoort",
        "Overige instellingen",
    ]
    assert table.row(None).cells == (3,)


def test_a_professional_activity_without_recorded_attendance_is_a_note_not_zeros():
    table = tabel_3b(YEAR, SCHOOLS, [BUS, NETWORK], [pro(), pro("ln", attended=None)])

    assert [c.key for c in table.columns] == ["bus"]
    assert any(n.startswith("Nog geen aanwezigheid") and "Lerend Netwerk" in n for n in table.notes)


# --- 12-27 -----------------------------------------------------------------------------------

SPRING = Activity("od26", "orientation_day", "Oriëntatiedag", date(2026, 2, 12))
TALK = Activity("talk", "career_event", "Loopbaanavond", date(2026, 3, 3), ("young_adults",))


def young(activity="od26", band="12-15", phase="vo", place="Amersfoort", n=1, **kw):
    return FactCount(
        activity,
        kw.pop("role", "pupil"),
        age_band=band,
        phase=phase,
        municipality=place,
        n=n,
        **kw,
    )


def test_the_12_27_table_breaks_the_same_people_down_by_age_phase_and_municipality():
    facts = [
        young(n=4),
        young(band="16-17", phase="pro_vso", place="Baarn", n=2),
        young("talk", band="23-27", phase="working", place="Soest", role="young_adult", n=3),
        young(band=None, phase=None, place=None),
    ]

    table = programme_12_27(programme_period(calendar_year=2026), [SPRING, TALK], facts)

    assert [c.label for c in table.columns] == ["MBO-oriëntatiedag", "Loopbaanevenement"]
    age, phase, place = ({r.label: r.cells for r in section.rows} for section in table.sections)
    assert age == {
        "12-15": (4, 0),
        "16-17": (2, 0),
        "18-22": (0, 0),
        "23-27": (0, 3),
        "onbekend": (1, 0),
    }
    assert phase["pro/vso"] == (2, 0) and phase["werkend"] == (0, 3) and phase["hbo"] == (0, 0)
    assert place == {"Amersfoort": (4, 0), "Baarn": (2, 0), "Soest": (0, 3), "onbekend": (1, 0)}
    for section in table.sections:
        assert section.column_totals(2) == table.totals == (7, 3)


def test_the_12_27_table_counts_who_came_or_may_have_come_not_cancelled_or_absent_or_staff():
    facts = [
        young(n=2),
        young(status="cancelled"),
        young(attended=False),
        young(attended=True),
        young(role="professional"),
        young(role="parent"),
    ]

    table = programme_12_27(programme_period(calendar_year=2026), [SPRING], facts)

    assert table.grand_total == 3


def test_the_12_27_table_for_2025_2026_starts_at_new_year():
    autumn = Activity("vld25", "infoday", "Voorlichtingsdag", date(2025, 11, 20))
    facts = [young("vld25", n=9), young(n=2)]

    school_year = programme_12_27(programme_period(SchoolYear(2025)), [autumn, SPRING], facts)

    assert school_year.grand_total == 2
    assert "vanaf 1 januari 2026" in school_year.title


def test_age_bands_can_be_coarser_but_must_follow_the_bands_that_travel():
    bands = AgeBands.parse("12-17,18-27")
    facts = [young(band="12-15", n=2), young(band="16-17"), young(band="18-22", n=5)]

    table = programme_12_27(programme_period(calendar_year=2026), [SPRING], facts, bands)

    assert {r.label: r.cells for r in table.sections[0].rows} == {"12-17": (3,), "18-27": (5,)}
    with pytest.raises(PeriodError, match="past niet"):
        AgeBands.parse("12-16,17-27")
    with pytest.raises(PeriodError, match="overlappen"):
        AgeBands.parse("12-17,16-17")


def test_ages_outside_the_configured_bands_have_a_row_of_their_own():
    bands = AgeBands.parse("12-15,16-17")
    facts = [young(band="18-22"), young(band="other")]

    table = programme_12_27(programme_period(calendar_year=2026), [SPRING], facts, bands)

    assert table.sections[0].rows[-1].label == "buiten de leeftijdsgroepen"
    assert table.sections[0].rows[-1].cells == (2,)


# --- no-shows and year over year ---------------------------------------------------------------


def test_no_shows_compare_sign_ups_with_attendance_per_activity_and_school():
    od = Activity("od", "orientation_day", "Oriëntatiedag 2", date(2025, 2, 13))
    facts = [
        pupil("od", attended=True, n=10),
        pupil("od", attended=False, n=3),
        pupil("od", "atrium", n=2),
        pupil("od", status="cancelled", n=4),
        pro(attended=False),
    ]

    table = no_shows(legacy_period(YEAR), SCHOOLS, [od, BUS], facts)

    [bus, orientation] = table.sections
    assert orientation.title == "Oriëntatiedag 2 (13-02-2025)"
    assert [(r.label, r.cells, r.total) for r in orientation.rows] == [
        ("'t Atrium", (0, 0, 2), 2),
        ("Farel College", (10, 3, 0), 13),
    ]
    assert bus.rows[0].cells == (0, 1, 0)
    assert table.totals == (10, 4, 2)
    assert table.total_label == "Aangemeld"


def test_year_over_year_sets_each_schools_total_of_several_years_side_by_side():
    last_year = Activity("vld23", "infoday", "Voorlichtingsdag", date(2023, 11, 16))
    facts = [pupil("vld23", n=30), pupil(n=40), pupil("vld23", "axia", n=6)]

    table = year_over_year(
        "tabel-3a", [SchoolYear(2024), SchoolYear(2023)], SCHOOLS, [last_year, INFODAY], facts
    )

    assert [c.key for c in table.columns] == ["2023-2024", "2024-2025"]
    assert table.row("farel").cells == (30, 40)
    assert table.row("axia").cells == (6, 0)
    assert table.row("waldheim").cells == (0, 0)
    assert table.totals == (36, 40)
