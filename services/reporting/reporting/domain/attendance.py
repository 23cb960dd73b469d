"""No-shows: per activity and school, who signed up against who came.

One section per activity (by date), a row per school with sign-ups, and the columns present,
absent and not recorded; their sum is the row's "Aangemeld" (sign-ups that were not cancelled).
The orientation afternoons are where this matters: the annual report names pupils who sign up
and stay away as the problem to solve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from reporting.domain.facts import Activity, FactCount, School, known_activities, sort_key
from reporting.domain.legacy import WITHOUT_SCHOOL, activity_column, describe, period_dict
from reporting.domain.periods import Period
from reporting.domain.table import Column, Row, Section, Table

MEASURES = (
    Column("attended", "Aanwezig"),
    Column("absent", "Afwezig"),
    Column("not_recorded", "Niet geregistreerd"),
)
NOT_COUNTED_ROLES = ("parent", "mbo_student")


def no_shows(
    period: Period,
    schools: Iterable[School],
    activities: Iterable[Activity],
    counts: Iterable[FactCount],
) -> Table:
    counts = [c for c in counts if c.role not in NOT_COUNTED_ROLES]
    catalogue = known_activities(activities, counts)
    in_period = sorted(
        (a for a in catalogue.values() if a.date in period), key=lambda a: (a.date, a.title, a.id)
    )
    names = {s.id: s.name for s in schools}
    cells: dict[str, dict[str | None, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0] * 3)
    )
    for c in counts:
        if c.signed_up:
            column = 0 if c.attended is True else 1 if c.attended is False else 2
            cells[c.activity_id][c.school_id][column] += c.n

    sections = []
    for activity in in_period:
        if activity.cancelled or activity.id not in cells:
            continue
        per_school = cells[activity.id]
        keys = sorted(per_school, key=lambda k: (k is None, sort_key(names.get(k, k) if k else "")))
        rows = tuple(
            Row(k, names.get(k, k) if k else WITHOUT_SCHOOL, tuple(per_school[k])) for k in keys
        )
        sections.append(Section(activity_column(activity).label, rows))
    notes = []
    cancelled = [a for a in in_period if a.cancelled]
    if cancelled:
        notes.append(f"Afgelast, niet geteld: {describe(cancelled)}.")
    return Table(
        name="no-shows",
        title=f"Aanmeldingen en aanwezigheid per activiteit en school, {period.label}",
        row_header="School",
        columns=MEASURES,
        sections=tuple(sections),
        total_label="Aangemeld",
        partitioned=True,
        notes=tuple(notes),
        period=period_dict(period),
    )
