"""Small-count suppression for published tables (statistical disclosure control).

A published table must not let anyone recognise a person, so small counts are hidden:
- primary suppression: every count from 1 to threshold-1 is shown as "<5" (threshold 5). Zeros
  are shown: "nobody from this school" identifies no one, and a table of "<5" where there are
  zeros would hide the region's own point (which schools take no part);
- secondary (complementary) suppression: more cells are hidden ("x"), so that no hidden cell can
  be worked out from the totals and the cells that are shown.

Why not the rule of thumb "at least two hidden cells in every row and column": a pattern with two
per line can still give a cell away (a cell that joins two otherwise separate groups of hidden
cells is determined by the equations, as a bridge in a graph is on no cycle), and the ranges an
attacker knows can pin a cell the equations leave open ("<5" is at most 4, "x" is at least 5).

So the method is audit and repair. What is published is a system of equations (every total is
the sum of its parts) over the hidden cells, each within a known range: 1..threshold-1 for "<5",
threshold or more for "x" (zeros are never hidden). The audit asks, for every hidden cell, for
the smallest and largest value the system allows (linear programming, GLOP). For a table with
margins the system is totally unimodular, so these bounds are whole numbers and exact; a
solution that differs from the true table in a cell proves that cell open. Where linked tables
make the linear programme give only fractional evidence, CP-SAT decides. The repair hides, for an
exposed cell, a cell in each of its equations where it is the only hidden one (preferring one
that closes a group of hidden cells, then the smallest count), and the audit runs again, until no
hidden cell can be worked out. A table so small that even hiding every count gives people away
(four "<5" cells under a total "<5" are all 1) is withheld: no figure at all.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

Key = Hashable
HIDDEN = "x"
DEFAULT_THRESHOLD = 5


@dataclass(frozen=True)
class Relation:
    """`total` equals the sum of `parts` (a row, a column, or the grand total)."""

    total: Key
    parts: tuple[Key, ...]

    @property
    def members(self) -> tuple[Key, ...]:
        return (self.total, *self.parts)


@dataclass(frozen=True)
class Protection:
    threshold: int
    primary: frozenset = field(default_factory=frozenset)
    secondary: frozenset = field(default_factory=frozenset)
    # Too few people to publish anything: every figure is hidden, zeros too.
    withheld: bool = False

    @property
    def small(self) -> str:
        return f"<{self.threshold}"

    def shown(self, key: Key, value: int) -> int | str:
        if self.withheld:
            return HIDDEN
        if key in self.primary:
            return self.small
        if key in self.secondary:
            return HIDDEN
        return value

    @property
    def hidden(self) -> frozenset:
        return self.primary | self.secondary


def protect(
    values: Mapping[Key, int], relations: Sequence[Relation], threshold: int = DEFAULT_THRESHOLD
) -> Protection:
    """Which cells to hide so that no small count can be seen or recomputed."""
    if threshold <= 1:
        return Protection(threshold)
    primary = frozenset(k for k, v in values.items() if 0 < v < threshold)
    if not primary:
        return Protection(threshold)
    audit = _Audit(values, relations, primary, threshold)
    hidden = set(primary)
    while exposed := audit.exposed(hidden):
        # Repair first where a cell is the only hidden one in an equation: that is the cause;
        # the other exposed cells are often determined through it.
        cell = max(exposed, key=lambda k: audit.alone_in(k, hidden))
        added = _complements(cell, values, audit, hidden)
        if not added:
            # Every count is hidden and the ranges still pin a cell: a handful of people, e.g.
            # four cells of "<5" under a total of "<5" are all 1. Nothing can be published.
            return Protection(threshold, primary, frozenset(hidden - primary), withheld=True)
        hidden |= added
    return Protection(threshold, primary, frozenset(hidden - primary))


def _complements(cell: Key, values: Mapping[Key, int], audit: _Audit, hidden: set[Key]) -> set[Key]:
    """Cells to hide so that an exposed cell gets company in its equations."""
    own = sorted(audit.relations_of[cell], key=lambda r: audit.hidden_in(r, hidden))
    alone = [r for r in own if audit.hidden_in(r, hidden) == 1]
    added: set[Key] = set()
    for relation in alone or own:
        candidates = [
            k for k in relation.members if k not in hidden and k not in added and values[k] > 0
        ]
        if candidates:
            added.add(min(candidates, key=lambda k: audit.cost(k, hidden, relation)))
            if not alone:
                break
    if added:
        return added
    # Nothing left to hide in its own equations: hide the smallest shown count elsewhere.
    rest = [k for k in audit.order if k not in hidden and values[k] > 0]
    return {min(rest, key=lambda k: audit.cost(k, hidden))} if rest else set()


class _Audit:
    """The attacker's view of a protected table, as equations over the hidden cells."""

    def __init__(
        self,
        values: Mapping[Key, int],
        relations: Sequence[Relation],
        primary: frozenset,
        threshold: int,
    ) -> None:
        self.values = values
        self.relations = list(relations)
        self.primary = primary
        self.threshold = threshold
        self.order = {k: i for i, k in enumerate(values)}
        self.relations_of: dict[Key, list[Relation]] = {k: [] for k in values}
        for relation in self.relations:
            for member in relation.members:
                self.relations_of[member].append(relation)
        # A bound no true value reaches; an attacker knows less, so this errs on the safe side.
        self.ceiling = sum(values.values()) + threshold

    def hidden_in(self, relation: Relation, hidden: set[Key]) -> int:
        return sum(1 for k in relation.members if k in hidden)

    def alone_in(self, key: Key, hidden: set[Key]) -> int:
        """In how many of its equations `key` is the only hidden cell."""
        return sum(1 for r in self.relations_of[key] if self.hidden_in(r, hidden) == 1)

    def cost(self, key: Key, hidden: set[Key], within: Relation | None = None) -> tuple:
        """Prefer a cell whose other equations already hide something (it closes a group of
        hidden cells, so fewer cells go), then the smallest count, then table order (so the
        result is reproducible)."""
        alone = not any(
            self.hidden_in(r, hidden) for r in self.relations_of[key] if r is not within
        )
        return (alone, self.values[key], self.order[key])

    def _range(self, key: Key) -> tuple[int, int]:
        if key in self.primary:
            return 1, self.threshold - 1
        return self.threshold, self.ceiling

    def _equations(self, hidden: set[Key]) -> list[tuple[list[tuple[Key, int]], int]]:
        """Each relation as sum(coefficient * hidden cell) == constant."""
        out = []
        for relation in self.relations:
            signed = [(relation.total, 1), *((p, -1) for p in relation.parts)]
            unknown = [(k, c) for k, c in signed if k in hidden]
            if unknown:
                known = sum(c * self.values[k] for k, c in signed if k not in hidden)
                out.append((unknown, -known))
        return out

    def exposed(self, hidden: set[Key]) -> list[Key]:
        """Hidden cells whose value follows from what is shown, in table order."""
        cells = sorted(hidden, key=self.order.__getitem__)
        equations = self._equations(hidden)
        solver = pywraplp.Solver.CreateSolver("GLOP")
        variables = {k: solver.NumVar(*self._range(k), "") for k in cells}
        for unknown, constant in equations:
            constraint = solver.Constraint(constant, constant)
            for k, c in unknown:
                constraint.SetCoefficient(variables[k], c)
        objective = solver.Objective()
        open_cells: set[Key] = set()
        exposed = []
        for cell in cells:
            if cell in open_cells:
                continue
            for maximise in (True, False):
                objective.Clear()
                objective.SetCoefficient(variables[cell], 1)
                objective.SetOptimizationDirection(maximise)
                if solver.Solve() != pywraplp.Solver.OPTIMAL:
                    continue
                solution = {k: v.solution_value() for k, v in variables.items()}
                if abs(solution[cell] - self.values[cell]) < 0.5:
                    continue
                if all(abs(x - round(x)) < 1e-6 for x in solution.values()):
                    open_cells.update(
                        k for k, x in solution.items() if abs(x - self.values[k]) > 0.5
                    )
                    break
                witness = self._integer_alternative(cell, cells, equations)
                if witness is not None:
                    open_cells.update(k for k, x in witness.items() if x != self.values[k])
                    break
            if cell not in open_cells:
                exposed.append(cell)
        return exposed

    def _integer_alternative(
        self, cell: Key, cells: list[Key], equations: list[tuple[list[tuple[Key, int]], int]]
    ) -> dict[Key, int] | None:
        """A whole-number table, consistent with what is shown, that differs in `cell`."""
        model = cp_model.CpModel()
        variables = {k: model.NewIntVar(*self._range(k), "") for k in cells}
        for unknown, constant in equations:
            model.Add(sum(c * variables[k] for k, c in unknown) == constant)
        model.Add(variables[cell] != self.values[cell])
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = 5.0
        solver.parameters.num_workers = 1
        if solver.Solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        return {k: solver.Value(v) for k, v in variables.items()}


def grid_relations(
    rows: Sequence[Key], columns: Sequence[Key], cell, row_total, column_total, grand_total
) -> list[Relation]:
    """The equations of a two-way table with row totals, column totals and a grand total."""
    relations = [Relation(row_total(r), tuple(cell(r, c) for c in columns)) for r in rows]
    relations += [Relation(column_total(c), tuple(cell(r, c) for r in rows)) for c in columns]
    relations.append(Relation(grand_total, tuple(row_total(r) for r in rows)))
    relations.append(Relation(grand_total, tuple(column_total(c) for c in columns)))
    return relations
