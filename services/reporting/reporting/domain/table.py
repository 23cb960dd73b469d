"""The shape every report has: columns, sections of rows, totals; and how it is published.

A table is counts only. Its sections either break the same people down in different ways (the
12-27 programme: by age band, by phase, by municipality; each section sums to the one totals
row) or split them into parts (no-shows: one section per activity, each with its subtotal).
Publishing applies small-count suppression over exactly these equations (domain/suppression).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import date

from reporting.domain.suppression import DEFAULT_THRESHOLD, Protection, Relation, protect

Cell = int | str  # a count, or "<5" / "x" where it is suppressed


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str | None = None
    date: date | None = None


@dataclass(frozen=True)
class Row:
    key: str | None
    label: str
    cells: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.cells)


@dataclass(frozen=True)
class Section:
    title: str | None
    rows: tuple[Row, ...]

    def column_totals(self, width: int) -> tuple[int, ...]:
        return tuple(sum(row.cells[c] for row in self.rows) for c in range(width))


@dataclass(frozen=True)
class Table:
    name: str  # "tabel-3a"
    title: str
    row_header: str  # what the first column names: "School"
    columns: tuple[Column, ...]
    sections: tuple[Section, ...]
    total_label: str = "Totaal"  # the row-total column
    totals_label: str = "TOTAAL"  # the totals row
    # True: sections are disjoint parts with a subtotal each; False: each is a full breakdown.
    partitioned: bool = False
    notes: tuple[str, ...] = ()
    period: dict[str, str | None] = field(default_factory=dict)

    @property
    def totals(self) -> tuple[int, ...]:
        width = len(self.columns)
        if not self.sections:
            return (0,) * width
        if self.partitioned:
            parts = [s.column_totals(width) for s in self.sections]
            return tuple(sum(p[c] for p in parts) for c in range(width))
        return self.sections[0].column_totals(width)

    @property
    def grand_total(self) -> int:
        return sum(self.totals)

    def row(self, key: str | None, section: int = 0) -> Row:
        return next(r for r in self.sections[section].rows if r.key == key)

    def restricted_to(self, row_keys: set[str | None]) -> Table:
        """Only these rows (a school's own figures); totals follow."""
        sections = tuple(
            replace(s, rows=tuple(r for r in s.rows if r.key in row_keys)) for s in self.sections
        )
        return replace(self, sections=sections)

    # --- publishing -------------------------------------------------------------------------

    def _values(self) -> dict[Hashable, int]:
        """Every number the table shows, by position (cells, row totals, subtotals, totals)."""
        values: dict[Hashable, int] = {}
        width = len(self.columns)
        for s, section in enumerate(self.sections):
            for r, row in enumerate(section.rows):
                for c in range(width):
                    values[("cell", s, r, c)] = row.cells[c]
                values[("row", s, r)] = row.total
            if self.partitioned:
                for c, n in enumerate(section.column_totals(width)):
                    values[("sub", s, c)] = n
                values[("sub", s)] = sum(section.column_totals(width))
        for c, n in enumerate(self.totals):
            values[("col", c)] = n
        values[("grand",)] = self.grand_total
        return values

    def _relations(self) -> list[Relation]:
        width = len(self.columns)
        relations = []
        for s, section in enumerate(self.sections):
            rows = range(len(section.rows))
            for r in rows:
                relations.append(
                    Relation(("row", s, r), tuple(("cell", s, r, c) for c in range(width)))
                )
            if self.partitioned:
                for c in range(width):
                    relations.append(
                        Relation(("sub", s, c), tuple(("cell", s, r, c) for r in rows))
                    )
                relations.append(Relation(("sub", s), tuple(("row", s, r) for r in rows)))
                relations.append(Relation(("sub", s), tuple(("sub", s, c) for c in range(width))))
            else:
                for c in range(width):
                    relations.append(Relation(("col", c), tuple(("cell", s, r, c) for r in rows)))
                relations.append(Relation(("grand",), tuple(("row", s, r) for r in rows)))
        if self.partitioned:
            parts = range(len(self.sections))
            for c in range(width):
                relations.append(Relation(("col", c), tuple(("sub", s, c) for s in parts)))
            relations.append(Relation(("grand",), tuple(("sub", s) for s in parts)))
        relations.append(Relation(("grand",), tuple(("col", c) for c in range(width))))
        return relations

    def publish(self, threshold: int | None = DEFAULT_THRESHOLD) -> PublishedTable:
        """The table as it may be published: small counts suppressed (threshold None: exact)."""
        values = self._values()
        if threshold is None:
            protection = Protection(threshold=0)
        else:
            protection = protect(values, self._relations(), threshold)
        return PublishedTable(self, protection, values)


@dataclass(frozen=True)
class PublishedRow:
    key: str | None
    label: str
    cells: tuple[Cell, ...]
    total: Cell


@dataclass(frozen=True)
class PublishedSection:
    title: str | None
    rows: tuple[PublishedRow, ...]
    subtotal: PublishedRow | None


class PublishedTable:
    """What leaves the system: the table's figures, each shown or suppressed."""

    def __init__(self, table: Table, protection: Protection, values: dict[Hashable, int]) -> None:
        self.table = table
        self.protection = protection
        self.exact = protection.threshold == 0
        show = lambda key: protection.shown(key, values[key])  # noqa: E731
        width = len(table.columns)
        sections = []
        for s, section in enumerate(table.sections):
            rows = tuple(
                PublishedRow(
                    row.key,
                    row.label,
                    tuple(show(("cell", s, r, c)) for c in range(width)),
                    show(("row", s, r)),
                )
                for r, row in enumerate(section.rows)
            )
            subtotal = None
            if table.partitioned:
                subtotal = PublishedRow(
                    None,
                    f"Totaal {section.title}" if section.title else "Totaal",
                    tuple(show(("sub", s, c)) for c in range(width)),
                    show(("sub", s)),
                )
            sections.append(PublishedSection(section.title, rows, subtotal))
        self.sections = tuple(sections)
        self.totals = PublishedRow(
            None,
            table.totals_label,
            tuple(show(("col", c)) for c in range(width)),
            show(("grand",)),
        )

    @property
    def suppressed(self) -> int:
        return len(self.protection.hidden)

    @property
    def withheld(self) -> bool:
        return self.protection.withheld

    @property
    def notes(self) -> tuple[str, ...]:
        notes = self.table.notes
        if self.withheld:
            notes = (
                "Te weinig deelnemers om cijfers te publiceren zonder dat iemand herkenbaar is.",
                *notes,
            )
        elif not self.exact and self.suppressed:
            threshold = self.protection.threshold
            notes = (
                f"<{threshold}: minder dan {threshold} (1 tot en met {threshold - 1}); "
                f"x: weggelaten zodat een klein aantal niet uit de totalen is terug te rekenen.",
                *notes,
            )
        return notes
