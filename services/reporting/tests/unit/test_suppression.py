"""Small-count suppression: no small count is shown, and no hidden cell can be recomputed.

The checker plays the attacker. It sees only the published table (numbers, "<5", "x") and knows
how the table adds up; for every hidden cell it asks CP-SAT for a whole-number table that fits
everything published but differs in that cell. It is written independently of the audit in
domain/suppression.py (different solver, its own equations read off the published grid).
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from reporting.domain.suppression import Protection
from reporting.domain.table import Column, PublishedTable, Row, Section, Table

THRESHOLD = 5


def grid_table(grids, partitioned=False):
    """A table with one section per grid (a grid: rows of counts)."""
    columns = tuple(Column(f"c{c}", f"c{c}") for c in range(len(grids[0][0])))
    return Table(
        "t",
        "t",
        "rij",
        columns,
        tuple(
            Section(f"s{s}", tuple(Row(f"r{r}", f"r{r}", tuple(row)) for r, row in enumerate(g)))
            for s, g in enumerate(grids)
        ),
        partitioned=partitioned,
    )


def recomputable(published: PublishedTable) -> list[tuple]:
    """Hidden positions whose true value is the only one consistent with the publication."""
    if published.withheld:
        assert visible_numbers(published) == []
        return []
    table = published.table
    width = len(table.columns)
    truth, shown = {}, {}
    for s, (section, out) in enumerate(zip(table.sections, published.sections, strict=True)):
        for r, (row, seen) in enumerate(zip(section.rows, out.rows, strict=True)):
            for c in range(width):
                truth[("cell", s, r, c)], shown[("cell", s, r, c)] = row.cells[c], seen.cells[c]
            truth[("row", s, r)], shown[("row", s, r)] = row.total, seen.total
        if out.subtotal is not None:
            sums = section.column_totals(width)
            for c in range(width):
                truth[("sub", s, c)], shown[("sub", s, c)] = sums[c], out.subtotal.cells[c]
            truth[("sub", s)], shown[("sub", s)] = sum(sums), out.subtotal.total
    for c in range(width):
        truth[("col", c)], shown[("col", c)] = table.totals[c], published.totals.cells[c]
    truth[("grand",)], shown[("grand",)] = table.grand_total, published.totals.total

    ceiling = 10 * (sum(truth.values()) + THRESHOLD)

    def model_with(var):
        equations = []
        for s, section in enumerate(table.sections):
            for r in range(len(section.rows)):
                equations.append((("row", s, r), [("cell", s, r, c) for c in range(width)]))
            if table.partitioned:
                for c in range(width):
                    parts = [("cell", s, r, c) for r in range(len(section.rows))]
                    equations.append((("sub", s, c), parts))
                equations.append((("sub", s), [("sub", s, c) for c in range(width)]))
            else:
                for c in range(width):
                    parts = [("cell", s, r, c) for r in range(len(section.rows))]
                    equations.append((("col", c), parts))
        if table.partitioned:
            for c in range(width):
                parts = [("sub", s, c) for s in range(len(table.sections))]
                equations.append((("col", c), parts))
        equations.append((("grand",), [("col", c) for c in range(width)]))
        return equations

    hidden = [k for k, v in shown.items() if isinstance(v, str)]
    exposed = []
    for target in hidden:
        model = cp_model.CpModel()
        var = {}
        for key, seen in shown.items():
            if seen == f"<{THRESHOLD}":
                var[key] = model.NewIntVar(1, THRESHOLD - 1, "")
            elif seen == "x":
                var[key] = model.NewIntVar(THRESHOLD, ceiling, "")
            else:
                var[key] = model.NewConstant(seen)
        for total, parts in model_with(var):
            model.Add(var[total] == sum(var[p] for p in parts))
        model.Add(var[target] != truth[target])
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        if solver.Solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            exposed.append(target)
    return exposed


def visible_numbers(published: PublishedTable) -> list[int]:
    rows = [r for s in published.sections for r in (*s.rows, *filter(None, [s.subtotal]))]
    rows.append(published.totals)
    return [x for r in rows for x in (*r.cells, r.total) if isinstance(x, int)]


counts = st.one_of(st.just(0), st.integers(1, THRESHOLD - 1), st.integers(THRESHOLD, 40))
grids = st.integers(1, 5).flatmap(
    lambda width: st.lists(st.lists(counts, min_size=width, max_size=width), min_size=1, max_size=6)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids)
def test_no_hidden_cell_of_a_two_way_table_can_be_recomputed(grid):
    published = grid_table([grid]).publish(THRESHOLD)

    assert recomputable(published) == []
    assert all(n == 0 or n >= THRESHOLD for n in visible_numbers(published))


@st.composite
def breakdowns(draw):
    """The same people broken down several ways: every section has the same column totals."""
    width = draw(st.integers(1, 3))
    first = draw(st.lists(st.lists(counts, min_size=width, max_size=width), min_size=1, max_size=4))
    totals = [sum(column) for column in zip(*first, strict=True)]
    sections = [first]
    for _ in range(draw(st.integers(1, 2))):
        height = draw(st.integers(1, 4))
        columns = []
        for total in totals:
            cuts = sorted(
                draw(st.lists(st.integers(0, total), min_size=height - 1, max_size=height - 1))
            )
            bounds = [0, *cuts, total]
            columns.append([b - a for a, b in itertools.pairwise(bounds)])
        sections.append([list(row) for row in zip(*columns, strict=True)])
    return sections


parts = st.integers(1, 3).flatmap(
    lambda width: st.lists(
        st.lists(st.lists(counts, min_size=width, max_size=width), min_size=1, max_size=4),
        min_size=1,
        max_size=3,
    )
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts)
def test_sections_with_subtotals_cannot_be_recomputed_either(sections):
    """No-shows: a section per activity, each with its subtotal row, then the totals."""
    published = grid_table(sections, partitioned=True).publish(THRESHOLD)

    assert recomputable(published) == []
    assert all(n == 0 or n >= THRESHOLD for n in visible_numbers(published))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(breakdowns())
def test_breakdowns_sharing_their_totals_cannot_be_recomputed_either(sections):
    """The 12-27 programme: by age, by phase, by municipality; one totals row links them."""
    published = grid_table(sections).publish(THRESHOLD)

    assert recomputable(published) == []
    assert all(n == 0 or n >= THRESHOLD for n in visible_numbers(published))


def test_the_checker_catches_a_cell_that_only_primary_suppression_leaves_exposed():
    """Control: hiding only the small count lets anyone recompute it from its row total."""
    table = grid_table([[[3, 10], [12, 7]]])
    values = table._values()
    primary_only = PublishedTable(
        table, Protection(THRESHOLD, frozenset({("cell", 0, 0, 0)})), values
    )

    assert ("cell", 0, 0, 0) in recomputable(primary_only)
    assert recomputable(table.publish(THRESHOLD)) == []


def test_two_hidden_cells_per_row_and_column_are_not_always_enough():
    """The ranges give cells away that the equations leave open: two "<5" in a row that adds up
    to 8 can only be 4 and 4, whatever the "x" cells below them are."""
    table = grid_table([[[4, 4], [5, 30]]])
    values = table._values()
    two_per_line = Protection(
        THRESHOLD,
        primary=frozenset({("cell", 0, 0, 0), ("cell", 0, 0, 1)}),
        secondary=frozenset({("cell", 0, 1, 0), ("cell", 0, 1, 1)}),
    )

    assert ("cell", 0, 0, 0) in recomputable(PublishedTable(table, two_per_line, values))
    assert recomputable(table.publish(THRESHOLD)) == []


def test_small_counts_show_as_below_the_threshold_zeros_and_large_counts_as_they_are():
    published = grid_table([[[0, 3, 10], [12, 0, 7], [5, 6, 9]]]).publish(THRESHOLD)
    first = published.sections[0].rows[0]

    assert first.cells[:2] == (0, "<5")
    assert published.sections[0].rows[1].cells == (12, 0, 7)


def test_a_table_of_a_handful_of_people_is_withheld_entirely():
    """Four "<5" cells under a total "<5" can only be four times 1: no figure may be shown."""
    published = grid_table([[[1, 1], [1, 1]]]).publish(THRESHOLD)

    assert published.withheld
    assert visible_numbers(published) == []
    assert "Te weinig deelnemers" in published.notes[0]


def test_exact_figures_hide_nothing():
    published = grid_table([[[0, 3, 10]]]).publish(None)

    assert published.exact
    assert published.sections[0].rows[0].cells == (0, 3, 10)
    assert published.totals.total == 13


def test_another_threshold_moves_the_line():
    published = grid_table([[[7, 12], [20, 30]]]).publish(10)

    assert published.sections[0].rows[0].cells[0] == "<10"
