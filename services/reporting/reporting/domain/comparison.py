"""Year over year: Tabel 3a or 3b for several school years side by side.

A column per school year holding each school's total of that year's table (activities differ
from year to year; the school's total is what compares). Rows: every school that has a row in
any of the years, in the order of the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from reporting.domain.facts import Activity, FactCount, School, sort_key
from reporting.domain.legacy import OTHER_INSTITUTIONS, school_group, tabel_3a, tabel_3b
from reporting.domain.periods import PROGRAMME_12_27_START, PeriodError, SchoolYear
from reporting.domain.table import Column, Row, Section, Table

BASES = {
    "tabel-3a": (tabel_3a, "deelnemende leerlingen"),
    "tabel-3b": (tabel_3b, "deelnemende professionals"),
}


def year_over_year(
    base: str,
    school_years: Sequence[SchoolYear],
    schools: Iterable[School],
    activities: Iterable[Activity],
    counts: Iterable[FactCount],
    programme_start: date = PROGRAMME_12_27_START,
) -> Table:
    if base not in BASES:
        raise PeriodError("table", f"Vergelijk tabel-3a of tabel-3b, niet {base!r}.")
    if not school_years:
        raise PeriodError("school_year", "Geef minstens één schooljaar.")
    build, what = BASES[base]
    schools, activities, counts = list(schools), list(activities), list(counts)
    years = sorted(set(school_years), key=lambda y: y.first)
    tables = [build(y, schools, activities, counts, programme_start=programme_start) for y in years]

    labels: dict[str | None, str] = {}
    for table in reversed(tables):  # the latest year's order and names first
        for row in table.sections[0].rows:
            labels.setdefault(row.key, row.label)
    totals = [{row.key: row.total for row in t.sections[0].rows} for t in tables]
    by_id = {s.id: s for s in schools}
    others = OTHER_INSTITUTIONS if base == "tabel-3b" else None
    ordered = sorted(
        (k for k in labels if k is not None),
        key=lambda k: (school_group(by_id.get(k), others), sort_key(labels[k])),
    )
    if None in labels:
        ordered.append(None)
    rows = tuple(Row(k, labels[k], tuple(t.get(k, 0) for t in totals)) for k in ordered)
    columns = tuple(
        Column(str(y), t.period["label"] or str(y)) for y, t in zip(years, tables, strict=True)
    )
    span = (
        years[0].spoken if len(years) == 1 else f"{years[0].spoken} tot en met {years[-1].spoken}"
    )
    return Table(
        name="year-over-year",
        title=f"{base.replace('tabel-', 'Tabel ')} door de jaren: {what} per school, "
        f"schooljaren {span}",
        row_header=tables[-1].row_header,
        columns=columns,
        sections=(Section(None, rows),),
        total_label="Alle jaren",
        notes=tuple(dict.fromkeys(n for t in tables for n in t.notes)),
        period={
            "school_year": ",".join(str(y) for y in years),
            "calendar_year": None,
            "from": tables[0].period["from"],
            "to": tables[-1].period["to"],
            "label": f"schooljaren {span}",
        },
    )
