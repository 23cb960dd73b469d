"""The 2024-2025 season's data reproduces the annual report's tables through reporting's own
table functions (no servers: the facts a replay would produce, fed to the domain)."""

from __future__ import annotations

from datetime import datetime

from lob_cli import season_2024_2025 as season
from lob_common.timeutil import local_date
from reporting.domain.facts import Activity, FactCount, School
from reporting.domain.legacy import tabel_3a, tabel_3b
from reporting.domain.periods import SchoolYear

# Tabel 3a as printed in shared/seeds/002_864f2a79a18bf82f.txt: school, information day, career
# event, total. "MBO Amersfoort - Entree" has no printed total; its only figure is 33.
REPORT_3A = [
    ("'t Atrium", 71, 101, 172),
    ("'t Hooghe Landt", 51, 0, 51),
    ("Aeres VMBO Nijkerk", 0, 0, 0),
    ("Amsfort College", 80, 0, 80),
    ("Axia College bovenbouw (vso)", 14, 0, 14),
    ("Corderius College", 94, 0, 94),
    ("Corlaer College", 52, 0, 52),
    ("De Meerwaarde", 0, 0, 0),
    ("Farel College", 47, 50, 97),
    ("Griftland College", 68, 0, 68),
    ("Guido vmbo Amersfoort", 65, 0, 65),
    ("Het Element", 147, 0, 147),
    ("Het Nieuwe Eemland", 45, 0, 45),
    ("Johannes Fontanus College", 0, 0, 0),
    ("MBO Amersfoort - Entree", 33, 0, 33),
    ("Muurhuizen", 133, 0, 133),
    ("Oostwende College", 91, 0, 91),
    ("Van Lodenstein College", 0, 0, 0),
    ("Vathorst College", 0, 0, 0),
    ("VAVO Lyceum", 10, 0, 10),
    ("VMBO Trivium College", 147, 0, 147),
    ("Waldheim-mavo", 0, 0, 0),
    ("Yuverta vmbo Amersfoort", 101, 0, 101),
]


def catalogue():
    schools = [School(s.id, s.name, s.kind, s.municipality) for s in season.SCHOOLS]
    activities = [Activity(a.id, a.kind, a.title, a.day, a.audience) for a in season.ACTIVITIES]
    return schools, activities


def replayed_facts():
    """What reporting would hold after the season's sign-ups (and attendance) came in."""
    kinds = {a.id: a.kind for a in season.ACTIVITIES}
    days = {a.id: a.day for a in season.ACTIVITIES}
    return [
        FactCount(
            activity_id=p.activity_id,
            role=p.role,
            attended=p.attended,
            school_id=p.school_id,
            activity_kind=kinds[p.activity_id],
            activity_date=days[p.activity_id],
            municipality=p.municipality,
        )
        for p in season.participants()
    ]


def test_the_season_reproduces_tabel_3a_of_the_report_exactly():
    schools, activities = catalogue()
    table = tabel_3a(SchoolYear(2024), schools, activities, replayed_facts())

    rows = [(r.label, *r.cells, r.total) for r in table.sections[0].rows]
    assert rows == REPORT_3A
    assert table.totals == (1249, 151)
    assert table.grand_total == 1400
    assert [c.key for c in table.columns] == list(season.TABEL_3A_ACTIVITIES)
    assert table.title.startswith(
        "Tabel 3a: Overzicht regionale activiteiten schooljaar 2024 – 2025"
    )
    published = table.publish()
    assert not published.suppressed  # no count of 1-4 in Tabel 3a: the export equals the report
    assert [r.total for r in published.sections[0].rows] == [row[3] for row in REPORT_3A]


def test_the_orientation_days_without_figures_are_named_not_shown_as_zeros():
    schools, activities = catalogue()
    table = tabel_3a(SchoolYear(2024), schools, activities, replayed_facts())

    note = next(n for n in table.notes if n.startswith("Geen aanmeldingen"))
    assert "MBO-oriëntatiedag 1 (28-11-2024)" in note
    assert "MBO-oriëntatiedag 3 (06-03-2025)" in note


def test_the_season_matches_every_column_total_of_tabel_3b():
    schools, activities = catalogue()
    table = tabel_3b(SchoolYear(2024), schools, activities, replayed_facts())

    assert table.totals == season.TABEL_3B_COLUMN_TOTALS == (22, 14, 38, 55, 24, 40, 22, 17)
    assert table.grand_total == 232
    assert [c.key for c in table.columns] == list(season.TABEL_3B_ACTIVITIES)
    labels = [r.label for r in table.sections[0].rows]
    assert labels[-5:] == [
        "Aeres MBO",
        "Hoornbeeck College",
        "MBO Amersfoort",
        "ROC Midden Nederland",
        "Overige instellingen",
    ]
    assert "MBO Amersfoort - Entree" not in labels  # pupils only: not a row of Tabel 3b
    assert table.row("hoornbeeck-college").total == 0
    assert table.row(None).total == 41


def test_every_school_and_activity_of_the_season_is_a_valid_event():
    from lob_common.contracts import new_event

    for payload in season.school_events():
        new_event("school_registered", payload)
    for payload in season.activity_events():
        event = new_event("activity_published", payload)
        day = next(a.day for a in season.ACTIVITIES if a.id == payload["activity_id"])
        assert local_date(event.payload["starts_at"]) == day


def test_the_synthetic_people_are_stable_and_distinct():
    first, again = list(season.participants()), list(season.participants())

    assert first == again
    assert len({p.email for p in first}) == len(first) == 1400 + 232
    assert all(p.date_of_birth and p.date_of_birth.year in (2008, 2009, 2010) for p in first[:1400])
    assert all(isinstance(a.starts_at, datetime) for a in season.ACTIVITIES)
