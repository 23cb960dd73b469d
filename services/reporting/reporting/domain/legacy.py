"""Tabel 3a and 3b of the vsv programme's annual report, per school year.

- Tabel 3a: per school, the pupils who signed up for each pupil activity ("individuele
  aanmeldingen"; a sign-up that was cancelled does not count). A row for every school of the
  kinds the table is about (vmbo: also with 0), and for every other school whose pupils took
  part (a vso school, VAVO, an mbo entree department).
- Tabel 3b: per school or institution, the professionals who actually attended each activity for
  professionals (recorded attendance, not sign-ups; mbo students and parents are not counted).
  Rows: the vmbo schools and the mbo institutions (also with 0), every other school with
  attendance, and "Overige instellingen" for professionals of no registered school.

A column is an activity of the period for that audience. An activity without any sign-up in this
system (3a) or without recorded attendance (3b) has no figures here, like the orientation
workshops the report leaves out: it is named in a note instead of shown as a column of zeros.
Activities that were called off are named in a note too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date

from reporting.domain.facts import Activity, FactCount, School, known_activities, sort_key
from reporting.domain.periods import (
    PROGRAMME_12_27_START,
    Period,
    SchoolYear,
    dutch_date,
    legacy_period,
)
from reporting.domain.table import Column, Row, Section, Table

TABEL_3A_ALWAYS = ("vmbo",)
TABEL_3B_ALWAYS = ("vmbo", "mbo")
OTHER_INSTITUTIONS = "Overige instellingen"
WITHOUT_SCHOOL = "Zonder school"


def tabel_3a(
    school_year: SchoolYear,
    schools: Iterable[School],
    activities: Iterable[Activity],
    counts: Iterable[FactCount],
    always: tuple[str, ...] = TABEL_3A_ALWAYS,
    programme_start: date = PROGRAMME_12_27_START,
) -> Table:
    period = legacy_period(school_year, programme_start)
    return _per_school(
        name="tabel-3a",
        title=f"Tabel 3a: Overzicht regionale activiteiten {period.label} en het aantal "
        "deelnemende leerlingen per school",
        row_header="School",
        period=period,
        schools=list(schools),
        activities=activities,
        counts=[c for c in counts if c.role == "pupil"],
        audience="pupils",
        has_figures=lambda c: True,
        counted=lambda c: c.signed_up,
        always=always,
        others=None,
        notes=["Het gaat om individuele aanmeldingen van leerlingen."],
        missing="Geen aanmeldingen in dit systeem, dus niet in de tabel",
    )


def tabel_3b(
    school_year: SchoolYear,
    schools: Iterable[School],
    activities: Iterable[Activity],
    counts: Iterable[FactCount],
    always: tuple[str, ...] = TABEL_3B_ALWAYS,
    programme_start: date = PROGRAMME_12_27_START,
) -> Table:
    period = legacy_period(school_year, programme_start)
    return _per_school(
        name="tabel-3b",
        title=f"Tabel 3b: Overzicht regionale activiteiten {period.label} en het aantal "
        "deelnemende professionals per school",
        row_header="School / instelling",
        period=period,
        schools=list(schools),
        activities=activities,
        counts=[c for c in counts if c.role == "professional"],
        audience="professionals",
        has_figures=lambda c: c.attended is not None,
        counted=lambda c: c.attended is True,
        always=always,
        others=OTHER_INSTITUTIONS,
        notes=["Werkelijke deelname (aanwezigheid), zonder mbo-studenten en ouders."],
        missing="Nog geen aanwezigheid geregistreerd, dus niet in de tabel",
    )


def period_dict(period: Period) -> dict[str, str | None]:
    return {
        "school_year": str(period.school_year) if period.school_year else None,
        "calendar_year": str(period.calendar_year) if period.calendar_year else None,
        "from": period.starts.isoformat(),
        "to": period.ends.isoformat(),
        "label": period.label,
    }


def activity_column(activity: Activity) -> Column:
    return Column(
        activity.id,
        f"{activity.title} ({dutch_date(activity.date)})",
        activity.kind,
        activity.date,
    )


def describe(activities: Iterable[Activity]) -> str:
    return "; ".join(f"{a.title} ({dutch_date(a.date)})" for a in activities)


def _per_school(
    *,
    name: str,
    title: str,
    row_header: str,
    period: Period,
    schools: list[School],
    activities: Iterable[Activity],
    counts: list[FactCount],
    audience: str,
    has_figures: Callable[[FactCount], bool],
    counted: Callable[[FactCount], bool],
    always: tuple[str, ...],
    others: str | None,
    notes: list[str],
    missing: str,
) -> Table:
    catalogue = known_activities(activities, counts)
    in_period = sorted(
        (a for a in catalogue.values() if a.date in period and a.is_for(audience)),
        key=lambda a: (a.date, a.title, a.id),
    )
    live = {a.id for a in in_period if not a.cancelled}
    with_figures = {c.activity_id for c in counts if c.activity_id in live and has_figures(c)}
    columns = [a for a in in_period if a.id in with_figures]
    index = {a.id: i for i, a in enumerate(columns)}

    by_id = {s.id: s for s in schools}
    other_kind = {s.id for s in schools if s.kind == "other"}
    cells: dict[str | None, list[int]] = defaultdict(lambda: [0] * len(columns))
    for count in counts:
        if count.activity_id in index and counted(count):
            school = count.school_id
            if others and (school is None or school in other_kind):
                school = None
            cells[school][index[count.activity_id]] += count.n

    shown = {s.id for s in schools if s.kind in always} | {k for k in cells if k is not None}
    if others is not None:
        shown -= other_kind

    def row(key: str | None, label: str) -> Row:
        return Row(key, label, tuple(cells[key]) if key in cells else (0,) * len(columns))

    def label(school_id: str) -> str:
        return by_id[school_id].name if school_id in by_id else school_id

    ordered = sorted(shown, key=lambda k: (school_group(by_id.get(k), others), sort_key(label(k))))
    rows = [row(k, label(k)) for k in ordered]
    if others is not None:
        rows.append(row(None, others))
    elif None in cells:
        rows.append(row(None, WITHOUT_SCHOOL))

    cancelled = [a for a in in_period if a.cancelled]
    empty = [a for a in in_period if a.id in live and a.id not in with_figures]
    if cancelled:
        notes = [*notes, f"Afgelast, niet geteld: {describe(cancelled)}."]
    if empty:
        notes = [*notes, f"{missing}: {describe(empty)}."]
    return Table(
        name=name,
        title=title,
        row_header=row_header,
        columns=tuple(activity_column(a) for a in columns),
        sections=(Section(None, tuple(rows)),),
        notes=tuple(notes),
        period=period_dict(period),
    )


def school_group(school: School | None, others: str | None) -> int:
    """Tabel 3b lists the schools, then the mbo institutions; 3a is one alphabetical list."""
    if others is not None and school is not None and school.kind == "mbo":
        return 1
    return 0
