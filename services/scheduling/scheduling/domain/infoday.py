"""The information day: a personal programme of one session per round for every pupil.

The problem (see shared/bench/infoday/README.md): pupils list 3 sessions ("choices") and 1 backup;
sessions have a capacity per round and run in some rounds. A plan gives every pupil one session
per round, never the same one twice. Objective: first seat everyone in every round (100 per
seated pupil-round), then U[k] = 0/10/18/24 for k granted choices (concave: a second choice for
one pupil beats a third for another), plus 4 for the backup when k < 3.

Method (docs/scheduling.md):
1. *Sets* - ignore rounds: give each pupil a set of up to R distinct sessions, each session
   holding capacity x (rounds it runs) pupils. That is a min-cost flow with convex per-pupil
   costs (parallel arcs with marginal gains 10, 8, 6; backup 4; any other session 0; 100 per
   seat). Its optimum is an upper bound on any valid plan, which we report.
2. *Rounds* - place each pupil's sessions into distinct rounds in which they run, within the
   per-round capacities: an integer program over pupils grouped by identical requests (few
   thousand variables, not one per pupil), solved with CP-SAT. It may drop a session of a pupil
   where the sets do not fit into rounds; dropping costs its seat and wish value.
3. *Fill* - give every empty pupil-round a session with a free seat in that round (per-round
   min-cost flow, preferring the pupil's own choices).
Re-planning passes the previous plan; keeping a pupil's session (and its round) earns a bonus
larger than any wish gain but smaller than a seat, so pupils move only where it is needed.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ortools.graph.python import min_cost_flow
from ortools.sat.python import cp_model

U = (0, 10, 18, 24)
SEAT = 100
BACKUP = 4
KEEP = 50  # re-planning: worth more than any wish gain (<= 10), less than a seat (100)

Progress = Callable[[str, float], None]
Assignments = dict[str, tuple[str | None, ...]]


class InstanceError(ValueError):
    """The instance cannot be planned as given; the message names the bad element."""


class PlanError(ValueError):
    """A plan breaks a hard rule; `violations` lists every one."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__(f"{len(violations)} violation(s): " + "; ".join(violations[:5]))
        self.violations = violations


@dataclass(frozen=True)
class Session:
    id: str
    capacity: int
    rounds: tuple[int, ...]
    title: str = ""
    provider: str = ""


@dataclass(frozen=True)
class PupilRequest:
    id: str
    school: str
    choices: tuple[str, ...]
    backup: str | None = None

    def wishes(self) -> tuple[tuple[str, ...], str | None]:
        """Choices without duplicates (in rank order) and a backup that is not a choice."""
        choices = tuple(dict.fromkeys(self.choices))
        backup = self.backup if self.backup not in choices else None
        return choices, backup


@dataclass(frozen=True)
class InfoDayInstance:
    rounds: int
    sessions: tuple[Session, ...]
    pupils: tuple[PupilRequest, ...]
    name: str = ""

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> InfoDayInstance:
        """Read the JSON instance format (version 1); InstanceError names what is wrong."""
        if not isinstance(data, Mapping):
            raise InstanceError("the instance must be a JSON object")
        if data.get("kind", "infoday") != "infoday" or int(data.get("version", 1)) != 1:
            raise InstanceError("expected kind 'infoday', version 1")
        rounds = data.get("rounds")
        if not isinstance(rounds, int) or rounds < 1:
            raise InstanceError("'rounds' must be a whole number of at least 1")
        sessions = tuple(_read_session(s, rounds) for s in _list(data, "sessions"))
        known = {s.id for s in sessions}
        if len(known) != len(sessions):
            raise InstanceError("session ids must be unique")
        pupils = tuple(_read_pupil(p, known) for p in _list(data, "pupils"))
        if len({p.id for p in pupils}) != len(pupils):
            raise InstanceError("pupil ids must be unique")
        return InfoDayInstance(rounds, sessions, pupils, str(data.get("name", "")))


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise InstanceError(f"'{key}' must be a list")
    return value


def _read_session(raw: Any, rounds: int) -> Session:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise InstanceError(f"session {raw!r}: needs a string 'id'")
    ident = raw["id"]
    capacity = raw.get("capacity")
    if not isinstance(capacity, int) or capacity < 0:
        raise InstanceError(f"session {ident}: capacity must be a whole number >= 0")
    runs = raw.get("rounds", list(range(1, rounds + 1)))
    if not isinstance(runs, list) or any(
        not isinstance(r, int) or not 1 <= r <= rounds for r in runs
    ):
        raise InstanceError(f"session {ident}: rounds must be numbers from 1 to {rounds}")
    return Session(
        ident,
        capacity,
        tuple(sorted(set(runs))),
        str(raw.get("title", "")),
        str(raw.get("provider", "")),
    )


def _read_pupil(raw: Any, known: set[str]) -> PupilRequest:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise InstanceError(f"pupil {raw!r}: needs a string 'id'")
    ident = raw["id"]
    choices = raw.get("choices", [])
    if not isinstance(choices, list):
        raise InstanceError(f"pupil {ident}: choices must be a list")
    for choice in choices:
        if choice not in known:
            raise InstanceError(
                f"pupil {ident}: choice {choice!r} is not a session of this instance"
            )
    backup = raw.get("backup")
    if backup is not None and backup not in known:
        raise InstanceError(f"pupil {ident}: backup {backup!r} is not a session of this instance")
    return PupilRequest(ident, str(raw.get("school", "")), tuple(choices), backup)


@dataclass(frozen=True)
class PlanMetrics:
    objective: int
    seated: int
    seated_max: int
    wish_utility: int
    all3: int
    le1: int
    k_hist: tuple[int, ...]
    backup_granted: int
    first_choice: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "seated": self.seated,
            "seated_max": self.seated_max,
            "wish_utility": self.wish_utility,
            "all3": self.all3,
            "le1": self.le1,
            "k_hist": list(self.k_hist),
            "backup_granted": self.backup_granted,
            "first_choice": self.first_choice,
        }


@dataclass(frozen=True)
class InfoDayPlan:
    assignments: Assignments
    metrics: PlanMetrics
    upper_bound: int | None = None  # on the objective; no valid plan can score higher
    moved: int = 0  # pupils whose programme differs from the previous plan
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"assignments": {p: list(a) for p, a in self.assignments.items()}}

    def unseated(self) -> list[tuple[str, int]]:
        return [
            (p, r + 1)
            for p, row in self.assignments.items()
            for r, s in enumerate(row)
            if s is None
        ]


# --- scoring (the same rules and numbers as shared/bench/infoday/score.py) ---------------------


def score_plan(
    instance: InfoDayInstance, assignments: Mapping[str, Iterable[str | None]]
) -> PlanMetrics:
    violations = _violations(instance, assignments)
    if violations:
        raise PlanError(violations)
    seated = wish = all3 = le1 = backups = first = 0
    hist = [0] * 4
    for pupil in instance.pupils:
        got = {s for s in assignments[pupil.id] if s is not None}
        seated += len(got)
        k = len(set(pupil.choices) & got)
        granted_backup = int(pupil.backup in got and k < 3)
        wish += U[min(k, 3)] + BACKUP * granted_backup
        hist[min(k, 3)] += 1
        all3 += k >= 3
        le1 += k <= 1
        backups += granted_backup
        first += bool(pupil.choices) and pupil.choices[0] in got
    return PlanMetrics(
        SEAT * seated + wish,
        seated,
        instance.rounds * len(instance.pupils),
        wish,
        all3,
        le1,
        tuple(hist),
        backups,
        first,
    )


def _violations(
    instance: InfoDayInstance, assignments: Mapping[str, Iterable[str | None]]
) -> list[str]:
    sessions = {s.id: s for s in instance.sessions}
    pupils = {p.id for p in instance.pupils}
    problems = [f"unknown pupil {p}" for p in assignments if p not in pupils]
    load: dict[tuple[str, int], int] = defaultdict(int)
    for pupil in instance.pupils:
        row = list(assignments.get(pupil.id, ()))
        if len(row) != instance.rounds:
            problems.append(f"pupil {pupil.id}: needs {instance.rounds} rounds, has {len(row)}")
            continue
        seen = set()
        for r, s in enumerate(row, start=1):
            if s is None:
                continue
            if s not in sessions:
                problems.append(f"pupil {pupil.id} round {r}: unknown session {s}")
                continue
            if r not in sessions[s].rounds:
                problems.append(f"pupil {pupil.id} round {r}: {s} does not run in round {r}")
            if s in seen:
                problems.append(f"pupil {pupil.id}: {s} twice")
            seen.add(s)
            load[(s, r)] += 1
    problems += [
        f"session {s} round {r}: {n} > capacity {sessions[s].capacity}"
        for (s, r), n in sorted(load.items())
        if n > sessions[s].capacity
    ]
    return problems


# --- phase 1: sets (min-cost flow over rounds-relaxed capacities) ------------------------------


def _marginals(k_max: int) -> list[int]:
    return [U[i + 1] - U[i] for i in range(min(k_max, 3))]


def assign_sets(
    instance: InfoDayInstance, previous: Assignments | None = None
) -> tuple[dict[str, list[str]], int]:
    """Each pupil's set of sessions, ignoring rounds, and the flow's (maximal) objective."""
    sessions = [s for s in instance.sessions if s.capacity > 0 and s.rounds]
    index = {s.id: i for i, s in enumerate(sessions)}
    pupils = instance.pupils
    n_p, rounds = len(pupils), instance.rounds
    source, sink = 0, 1
    pupil_node = 2
    wish_node = 2 + n_p
    session_node = 2 + 2 * n_p
    flow = min_cost_flow.SimpleMinCostFlow()
    tails: list[int] = []
    heads: list[int] = []
    caps: list[int] = []
    costs: list[int] = []
    meaning: list[tuple[int, str] | None] = []

    def arc(tail: int, head: int, cap: int, cost: int, label: tuple[int, str] | None) -> None:
        tails.append(tail)
        heads.append(head)
        caps.append(cap)
        costs.append(cost)
        meaning.append(label)

    for s_i, session in enumerate(sessions):
        arc(session_node + s_i, sink, session.capacity * len(session.rounds), -SEAT, None)
    arc(source, sink, rounds * n_p, 0, None)  # seats nobody can have: left empty
    for p_i, pupil in enumerate(pupils):
        choices, backup = pupil.wishes()
        choices = tuple(c for c in choices if c in index)
        kept = set(previous.get(pupil.id, ())) if previous else set()
        arc(source, pupil_node + p_i, rounds, 0, None)
        for gain in _marginals(len(choices)):
            arc(pupil_node + p_i, wish_node + p_i, 1, -gain, None)
        for choice in choices:
            bonus = KEEP if choice in kept else 0
            arc(wish_node + p_i, session_node + index[choice], 1, -bonus, (p_i, choice))
        wished = set(choices)
        if backup in index:
            wished.add(backup)
            bonus = KEEP if backup in kept else 0
            arc(pupil_node + p_i, session_node + index[backup], 1, -BACKUP - bonus, (p_i, backup))
        for session in sessions:
            if session.id not in wished:
                bonus = KEEP if session.id in kept else 0
                arc(
                    pupil_node + p_i, session_node + index[session.id], 1, -bonus, (p_i, session.id)
                )
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_node_supply(source, rounds * n_p)
    flow.set_node_supply(sink, -rounds * n_p)
    if flow.solve() != flow.OPTIMAL:
        raise RuntimeError("the set assignment flow did not solve")
    sets: dict[str, list[str]] = {p.id: [] for p in pupils}
    for a, label in enumerate(meaning):
        if label is not None and flow.flow(a):
            sets[pupils[label[0]].id].append(label[1])
    return sets, -flow.optimal_cost()


def upper_bound(instance: InfoDayInstance) -> int:
    """No valid plan scores more: the optimum of the rounds-relaxed problem."""
    return assign_sets(instance)[1]


# --- phase 2: rounds (CP-SAT over groups of pupils with the same sets) -------------------------


def _value(pupil: PupilRequest, session: str) -> int:
    """What a session is worth to a pupil beyond its seat (for choosing what to drop)."""
    choices, backup = pupil.wishes()
    if session in choices:
        return 8
    return BACKUP if session == backup else 0


def _patterns(
    sets: tuple[str, ...], runs: Mapping[str, tuple[int, ...]], rounds: int
) -> list[tuple[int | None, ...]]:
    """Every way to put the sessions into distinct rounds they run in; None = dropped."""
    options = [(*runs[s], None) for s in sets]
    found = []
    for combo in itertools.product(*options):
        placed = [r for r in combo if r is not None]
        if len(placed) == len(set(placed)) and all(r <= rounds for r in placed):
            found.append(combo)
    return found


def assign_rounds(
    instance: InfoDayInstance,
    sets: Mapping[str, list[str]],
    previous: Assignments | None = None,
    time_limit_s: float = 60.0,
) -> Assignments:
    """Put each pupil's sessions into rounds, trying ever larger models:
    1. every session placed (usually feasible, and fast);
    2. groups whose set cannot be placed whole (e.g. all its sessions miss one round) may drop
       one session;
    3. any group may drop one session; 4. any group may drop any.
    Each dropped seat is offered again in the fill phase."""
    groups = _groups(instance, sets, previous)
    runs = {s.id: s.rounds for s in instance.sessions}
    stuck = {
        key
        for key in groups
        if not any(None not in p for p in _patterns(key[0], runs, instance.rounds))
    }
    stages: list[tuple[Callable[[tuple], int], float]] = []
    if not stuck and _rounds_have_room(instance, groups):
        stages.append((lambda key: 0, 0.25))
    if stuck and _rounds_have_room(instance, groups, excluding=stuck):
        stages.append((lambda key: 1 if key in stuck else 0, 0.25))
    stages += [(lambda key: 1, 0.5), (lambda key: instance.rounds, 1.0)]
    for drops_allowed, share in stages:
        found = _solve_rounds(instance, groups, drops_allowed, time_limit_s * share)
        if found is not None:
            return found
    raise RuntimeError("no round assignment found in the time limit; raise it")


def _rounds_have_room(
    instance: InfoDayInstance,
    groups: Mapping[tuple, list[PupilRequest]],
    excluding: set[tuple] = frozenset(),
) -> bool:
    """A quick necessary condition for placing every set whole: in each round, the pupils
    holding a full set of R sessions need that many seats (saves proving infeasibility)."""
    full = sum(
        len(members)
        for key, members in groups.items()
        if len(key[0]) == instance.rounds and key not in excluding
    )
    return all(
        full <= sum(s.capacity for s in instance.sessions if r in s.rounds)
        for r in range(1, instance.rounds + 1)
    )


def _groups(
    instance: InfoDayInstance, sets: Mapping[str, list[str]], previous: Assignments | None
) -> dict[tuple, list[PupilRequest]]:
    """Pupils with the same sets (and the same previous rounds, and wish values) are one group:
    the model counts how many of a group take each pattern."""
    groups: dict[tuple, list[PupilRequest]] = defaultdict(list)
    for pupil in instance.pupils:
        chosen = tuple(sorted(sets[pupil.id]))
        before = previous.get(pupil.id) if previous else None
        kept = tuple((s, before.index(s) + 1) for s in chosen if before and s in before)
        values = tuple(_value(pupil, s) for s in chosen)
        groups[(chosen, kept, values)].append(pupil)
    return groups


def _solve_rounds(
    instance: InfoDayInstance,
    groups: Mapping[tuple, list[PupilRequest]],
    drops_allowed: Callable[[tuple], int],
    time_limit_s: float,
) -> Assignments | None:
    runs = {s.id: s.rounds for s in instance.sessions}
    capacity = {s.id: s.capacity for s in instance.sessions}
    model = cp_model.CpModel()
    load: dict[tuple[str, int], list[Any]] = defaultdict(list)
    variables: dict[tuple, list[tuple[tuple[int | None, ...], Any]]] = {}
    objective = []
    for key in sorted(groups):
        chosen, kept, values = key
        keep = dict(kept)
        size = len(groups[key])
        options = []
        limit = drops_allowed(key)
        for pattern in _patterns(chosen, runs, instance.rounds):
            if pattern.count(None) > limit:
                continue
            count = model.new_int_var(0, size, "")
            options.append((pattern, count))
            if kept and all(keep.get(c) == r for c, r in zip(chosen, pattern, strict=True)):
                model.add_hint(count, size)  # re-planning: the previous rounds are a good start
            cost = sum(SEAT + v for r, v in zip(pattern, values, strict=True) if r is None)
            cost -= KEEP * sum(
                1
                for s, r in zip(chosen, pattern, strict=True)
                if r is not None and keep.get(s) == r
            )
            if cost:
                objective.append(cost * count)
            for s, r in zip(chosen, pattern, strict=True):
                if r is not None:
                    load[(s, r)].append(count)
        if not options:
            return None  # some set cannot be placed whole: only dropping helps
        model.add(sum(c for _, c in options) == size)
        variables[key] = options
    for (s, _round), counts in load.items():
        model.add(sum(counts) <= capacity[s])
    if objective:
        model.minimize(sum(objective))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1  # deterministic: same instance, same plan
    # Stop once provably within less than one kept session (50) of the best: no seat or
    # kept session is ever traded for speed.
    solver.parameters.absolute_gap_limit = KEEP - 1
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    result: Assignments = {}
    for key, options in variables.items():
        chosen = key[0]
        pending = list(groups[key])
        for pattern, count in options:
            for _ in range(solver.value(count)):
                row: list[str | None] = [None] * instance.rounds
                for s, r in zip(chosen, pattern, strict=True):
                    if r is not None:
                        row[r - 1] = s
                result[pending.pop(0).id] = tuple(row)
    return result


# --- phase 3: fill empty pupil-rounds --------------------------------------------------------


def fill_empty(instance: InfoDayInstance, assignments: Assignments) -> Assignments:
    """Seat pupils in rounds where they have nothing, in sessions with a free seat."""
    result = {p: list(row) for p, row in assignments.items()}
    pupils = {p.id: p for p in instance.pupils}
    for r in range(1, instance.rounds + 1):
        empty = [p for p, row in result.items() if row[r - 1] is None]
        if not empty:
            continue
        used: dict[str, int] = defaultdict(int)
        for row in result.values():
            if row[r - 1] is not None:
                used[row[r - 1]] += 1
        free = {
            s.id: s.capacity - used[s.id]
            for s in instance.sessions
            if r in s.rounds and s.capacity - used[s.id] > 0
        }
        if not free:
            continue
        for pupil_id, session in _fill_round(empty, free, pupils, result).items():
            result[pupil_id][r - 1] = session
    return {p: tuple(row) for p, row in result.items()}


def _fill_round(
    empty: list[str],
    free: Mapping[str, int],
    pupils: Mapping[str, PupilRequest],
    result: Mapping[str, list[str | None]],
) -> dict[str, str]:
    names = sorted(free)
    index = {s: i for i, s in enumerate(names)}
    flow = min_cost_flow.SimpleMinCostFlow()
    source, sink = 0, 1
    pupil_base, session_base = 2, 2 + len(empty)
    labels: list[tuple[str, str] | None] = []
    for s in names:
        flow.add_arc_with_capacity_and_unit_cost(session_base + index[s], sink, free[s], 0)
        labels.append(None)
    for i, pupil_id in enumerate(empty):
        flow.add_arc_with_capacity_and_unit_cost(source, pupil_base + i, 1, 0)
        labels.append(None)
        has = set(result[pupil_id])
        pupil = pupils[pupil_id]
        choices, backup = pupil.wishes()
        k = len(set(choices) & has)
        for s in names:
            if s in has:
                continue
            gain = U[min(k + 1, 3)] - U[min(k, 3)] if s in choices else 0
            if s == backup and backup not in has and k < 3:
                gain = BACKUP
            flow.add_arc_with_capacity_and_unit_cost(
                pupil_base + i, session_base + index[s], 1, -(SEAT + gain)
            )
            labels.append((pupil_id, s))
    flow.add_arc_with_capacity_and_unit_cost(source, sink, len(empty), 0)
    labels.append(None)
    flow.set_node_supply(source, len(empty))
    flow.set_node_supply(sink, -len(empty))
    if flow.solve() != flow.OPTIMAL:
        return {}
    return {
        label[0]: label[1] for a, label in enumerate(labels) if label is not None and flow.flow(a)
    }


# --- the whole method --------------------------------------------------------------------------


def assign_programmes(
    instance: InfoDayInstance,
    *,
    previous: Assignments | None = None,
    time_limit_s: float | None = None,
    progress: Progress | None = None,
) -> InfoDayPlan:
    """Plan every pupil's programme (see the module docstring for the method)."""
    say = progress or (lambda _message, _fraction: None)
    present = {p.id for p in instance.pupils}
    kept = {
        p: tuple(row)
        for p, row in (previous or {}).items()
        if p in present and len(row) == instance.rounds
    }
    say("sets: min-cost flow", 0.0)
    sets, relaxed = assign_sets(instance, kept or None)
    bound = upper_bound(instance) if kept else relaxed
    say("rounds: CP-SAT", 0.3)
    placed = assign_rounds(instance, sets, kept or None, time_limit_s or 60.0)
    say("filling empty rounds", 0.8)
    filled = fill_empty(instance, placed)
    metrics = score_plan(instance, filled)
    moved = sum(1 for p, row in kept.items() if filled[p] != row)
    say("done", 1.0)
    return InfoDayPlan(filled, metrics, upper_bound=bound, moved=moved, stats={"groups": None})


# --- room lists --------------------------------------------------------------------------------


def room_lists(instance: InfoDayInstance, plan: InfoDayPlan) -> list[dict[str, Any]]:
    """Per session and round: who is in the room (sorted by school, then id)."""
    schools = {p.id: p.school for p in instance.pupils}
    rooms: dict[tuple[str, int], list[str]] = defaultdict(list)
    for pupil_id, row in plan.assignments.items():
        for r, s in enumerate(row, start=1):
            if s is not None:
                rooms[(s, r)].append(pupil_id)
    lists = []
    for session in instance.sessions:
        for r in session.rounds:
            members = sorted(rooms.get((session.id, r), []), key=lambda p: (schools[p], p))
            lists.append(
                {
                    "session_id": session.id,
                    "title": session.title,
                    "provider": session.provider,
                    "round": r,
                    "capacity": session.capacity,
                    "count": len(members),
                    "pupils": members,
                }
            )
    return lists
