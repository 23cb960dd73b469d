"""The info-day problem solved exactly with CP-SAT, for instances small enough (a few dozen
pupils): one yes/no per pupil, round and session. The flows of `infoday_stages.py` are not
always optimal on small, tight instances; this proves the optimum, or improves the plan and
tightens the bound within the time left. Imported only when used (CP-SAT loads in ~1 s)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from scheduling.domain.infoday_stages import BACKUP, KEEP, SEAT, Encoded, U


@dataclass(frozen=True)
class Exact:
    plan: np.ndarray | None  # None: nothing found in the time
    optimal: bool
    bound: int  # on the value (with the re-planning bonus when the instance has one)


def solve(enc: Encoded, hint: np.ndarray, time_limit_s: float) -> Exact:
    n, rounds = enc.pupils, enc.rounds
    model = cp_model.CpModel()
    x: dict[tuple[int, int, int], cp_model.IntVar] = {}
    terms = []
    running = [np.nonzero(enc.runs[:, r])[0].tolist() for r in range(rounds)]
    for p in range(n):
        holds: dict[int, list[cp_model.IntVar]] = {}  # session -> its rounds for this pupil
        for r in range(rounds):
            for s in running[r]:
                var = model.new_bool_var(f"x{p}_{r}_{s}")
                x[p, r, s] = var
                holds.setdefault(s, []).append(var)
                model.add_hint(var, int(hint[p, r] == s))
                bonus = KEEP if enc.keep is not None and enc.keep[p, r] == s else 0
                terms.append((SEAT + bonus) * var)
            model.add_at_most_one(x[p, r, s] for s in running[r])
        for vars_ in holds.values():
            model.add_at_most_one(vars_)
        choices = [c for c in enc.choices[p].tolist() if c >= 0]
        granted = sum(v for c in choices for v in holds.get(c, []))
        steps = [model.new_bool_var(f"k{p}_{i}") for i in range(min(3, len(choices)))]
        for i, step in enumerate(steps):  # U is concave: the marginals 10, 8, 6 fill in order
            terms.append((U[i + 1] - U[i]) * step)
            if i:
                model.add_implication(step, steps[i - 1])
        if steps:
            model.add(sum(steps) <= granted)
        backup = int(enc.backup[p])
        if backup >= 0 and holds.get(backup):
            bonus = model.new_bool_var(f"b{p}")
            model.add(bonus <= sum(holds[backup]))
            if len(steps) == 3:
                model.add(bonus + steps[2] <= 1)  # the backup counts only with < 3 choices
            terms.append(BACKUP * bonus)
    for r in range(rounds):
        for s in running[r]:
            model.add(sum(x[p, r, s] for p in range(n)) <= int(enc.capacity[s]))
    model.maximize(sum(terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit_s)
    solver.parameters.num_workers = 1  # deterministic: the same instance, the same plan
    # The full linear relaxation: without it, symmetric instances (many pupils wanting one
    # session) never close their bound; with it they are proven in milliseconds.
    solver.parameters.linearization_level = 2
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Exact(None, False, 1 << 62)
    plan = np.full((n, rounds), -1, dtype=np.int64)
    for (p, r, s), var in x.items():
        if solver.value(var):
            plan[p, r] = s
    return Exact(plan, status == cp_model.OPTIMAL, int(solver.best_objective_bound))
