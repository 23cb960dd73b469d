"""The information day: a personal programme of one session per round for every pupil.

The problem (see shared/bench/infoday/README.md): pupils list 3 sessions ("choices") and 1 backup;
sessions have a capacity per round and run in some rounds. A plan gives every pupil one session
per round, never the same one twice. Objective: first seat everyone in every round (100 per
seated pupil-round), then U[k] = 0/10/18/24 for k granted choices (concave: a second choice for
one pupil beats a third for another), plus 4 for the backup when k < 3.

Method: an anytime search (docs/scheduling.md). It holds a valid plan from its first
milliseconds, and each stage replaces it only by a better one; whatever stops the search (the
time limit, a stage that finds nothing), the best plan so far comes back with the upper bound
and the gap. The stages (`infoday_stages.py`, all min-cost flows):
0. *First come, first served*: valid at once.
1. *Bound* - ignore rounds, but not the seats of each round: every plan is a flow there, so its
   optimum bounds every plan; it also gives each pupil a target set of sessions.
2. *Placement* - the target sets into rounds, round by round (each a flow); what does not fit
   is left out.
3. *Improvement* - one round at a time, exactly, with the other rounds fixed, until no round
   gains: this fills every empty pupil-round and repairs what placement left out.
4. *Exact* - an instance small enough is solved to proven optimality with CP-SAT.
The search stops as soon as the plan is within `gap_tolerance` of the bound.
Re-planning passes the previous plan; keeping a pupil's session in its round earns a bonus
larger than any wish gain but smaller than a seat, so pupils move only where it is needed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scheduling.domain import infoday_stages as stages
from scheduling.domain.infoday_stages import BACKUP, SEAT, U

DEFAULT_TIME_LIMIT_S = 20.0
# Stop searching once the wish utility is within this share of its upper bound (like a MIP
# gap): 0.01% is 3 points at 1300 pupils, less than one pupil's second choice.
DEFAULT_GAP_TOLERANCE = 1e-4
EXACT_MAX_VARIABLES = 5000  # pupil x round x session; above this CP-SAT is not tried
EXACT_TIME_LIMIT_S = 5.0  # at most this long (a proof on such sizes takes well under 1 s)

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
class Stage:
    """One step of the search, for the log: what it did and the best plan after it."""

    name: str
    seconds: float  # since the search started
    objective: int  # of the best plan so far


@dataclass(frozen=True)
class InfoDayPlan:
    assignments: Assignments
    metrics: PlanMetrics
    upper_bound: int  # on the objective: no valid plan scores more
    seats_bound: int  # on seated pupil-rounds: no valid plan seats more
    moved: int = 0  # pupils whose programme differs from the previous plan
    stages: tuple[Stage, ...] = ()
    warning: str | None = None  # why the search stopped short of a proven optimum

    @property
    def wish_upper_bound(self) -> int:
        """No plan that seats `seats_bound` pupil-rounds has more wish utility than this."""
        return self.upper_bound - SEAT * self.seats_bound

    @property
    def gap(self) -> int:
        return self.upper_bound - self.metrics.objective

    @property
    def proven_optimal(self) -> bool:
        return self.gap == 0

    def to_dict(self) -> dict[str, Any]:
        return {"assignments": {p: list(a) for p, a in self.assignments.items()}}

    def unseated(self) -> list[tuple[str, int]]:
        return [
            (p, r + 1)
            for p, row in self.assignments.items()
            for r, s in enumerate(row)
            if s is None
        ]

    def summary(self) -> dict[str, Any]:
        """The metrics with the bounds and the gap: what an operator reads (counts only)."""
        wish_bound = self.wish_upper_bound
        return {
            **self.metrics.to_dict(),
            "upper_bound": self.upper_bound,
            "seats_bound": self.seats_bound,
            "wish_upper_bound": wish_bound,
            "gap_to_upper_bound": self.gap,
            "wish_share_of_bound": round(self.metrics.wish_utility / wish_bound, 6)
            if wish_bound > 0
            else 1.0,
            "proven_optimal": self.proven_optimal,
            "unseated": self.metrics.seated_max - self.metrics.seated,
            "moved": self.moved,
            "warning": self.warning,
        }


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


# --- the search --------------------------------------------------------------------------------


def assign_programmes(
    instance: InfoDayInstance,
    *,
    previous: Mapping[str, Iterable[str | None]] | None = None,
    time_limit_s: float | None = None,
    gap_tolerance: float = DEFAULT_GAP_TOLERANCE,
    progress: Progress | None = None,
) -> InfoDayPlan:
    """Plan every pupil's programme (see the module docstring for the method). Never fails on
    a valid instance: the plan returned is the best found when the search stopped."""
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else time_limit_s
    kept = _previous_rows(instance, previous)
    enc = _encode(instance, kept)
    search = _Search(enc, time.perf_counter() + limit, gap_tolerance, progress)
    search.offer("first come, first served", stages.first_come_first_served(enc))
    if kept:
        held = _sanitised(enc)
        search.offer("the previous plan", held)
        search.offer("the previous plan, improved", search.improve(held))
    bound = stages.relaxed_bound(enc, keep=False)
    search.set_bound(bound.value, _seats_bound(enc, bound))
    search.say("upper bound", 0.2)
    # Re-planning keeps programmes: a plan made afresh can only win where the one kept leaves
    # seats empty, and one placement is enough to find those.
    orders = 1 if kept else enc.rounds
    if kept and search.seats_full():
        orders = 0
    for first in range(orders):
        if search.finished():
            break
        order = [first, *(r for r in range(enc.rounds) if r != first)]
        # Re-planning: target sets from the relaxation with the bonus for kept sessions.
        targets = stages.relaxed_bound(enc).sets if kept else bound.sets
        placed = stages.place_sets(enc, targets, order)
        search.offer(f"target sets placed, round {first + 1} first", placed)
        if not search.finished():
            search.offer("improved round by round", search.improve(placed))
    if not search.finished() and _small(enc):
        search.solve_exactly()
    return _plan(instance, enc, search, kept, limit)


def _previous_rows(
    instance: InfoDayInstance, previous: Mapping[str, Iterable[str | None]] | None
) -> dict[str, tuple[str | None, ...]]:
    present = {p.id for p in instance.pupils}
    rows = {p: tuple(row) for p, row in (previous or {}).items() if p in present}
    return {p: row for p, row in rows.items() if len(row) == instance.rounds}


def _encode(
    instance: InfoDayInstance, kept: Mapping[str, tuple[str | None, ...]]
) -> stages.Encoded:
    index = {s.id: i for i, s in enumerate(instance.sessions)}
    choices = [[index[c] for c in dict.fromkeys(p.choices) if c in index] for p in instance.pupils]
    # The backup as the scorer counts it: in the programme with fewer than 3 choices, even
    # when the pupil also listed it as a choice.
    backups = [index.get(p.backup, -1) if p.backup is not None else -1 for p in instance.pupils]
    keep = None
    if kept:
        empty = (None,) * instance.rounds
        keep = [
            [index.get(s, -1) if s is not None else -1 for s in kept.get(p.id, empty)]
            for p in instance.pupils
        ]
    return stages.encode(
        instance.rounds,
        [s.capacity for s in instance.sessions],
        [s.rounds for s in instance.sessions],
        choices,
        backups,
        keep,
    )


def _sanitised(enc: stages.Encoded) -> np.ndarray:
    """The previous plan made valid for the instance as it is now: sessions that no longer run
    in their round, repeats and seats over a (lowered) capacity are left out."""
    plan = enc.keep.copy()
    plan[(plan >= 0) & ~enc.runs[np.maximum(plan, 0), np.arange(enc.rounds)]] = -1
    for r in range(1, enc.rounds):
        repeated = (plan[:, r : r + 1] == plan[:, :r]).any(axis=1) & (plan[:, r] >= 0)
        plan[repeated, r] = -1
    for r in range(enc.rounds):
        for s in range(enc.sessions):
            holders = np.nonzero(plan[:, r] == s)[0]
            plan[holders[enc.capacity[s] :], r] = -1
    return plan


def _seats_bound(enc: stages.Encoded, relaxed: stages.Relaxed) -> int:
    """The most pupil-rounds any plan seats. Each round seats at most every pupil and at most
    its seats; when the relaxation reaches that, it is the bound. Otherwise (a pupil cannot
    take a session twice, and few sessions run) the relaxation with seats alone decides."""
    simple = int(np.minimum(enc.round_seats(), enc.pupils).sum())
    if relaxed.seats >= simple:
        return simple
    return stages.relaxed_bound(enc, keep=False, seats_only=True).seats


def _small(enc: stages.Encoded) -> bool:
    return enc.pupils * int(enc.runs.sum()) <= EXACT_MAX_VARIABLES


class _Search:
    """The incumbent plan and what is known about it; stages offer plans, better ones stay."""

    def __init__(
        self,
        enc: stages.Encoded,
        deadline: float,
        tolerance: float,
        progress: Progress | None,
    ) -> None:
        self.enc = enc
        self.plain = replace(enc, keep=None)  # scores as the scorer does, without re-planning
        self.tolerance = tolerance
        self.deadline = deadline
        self.started = time.perf_counter()
        self.progress = progress
        self.best: np.ndarray | None = None
        self.best_value = -1
        self.bound: int | None = None
        self.seats_bound: int | None = None
        self.proven = False  # an exact solve proved the incumbent optimal
        self.timed_out = False
        self.log: list[Stage] = []

    def out_of_time(self) -> bool:
        if time.perf_counter() >= self.deadline:
            self.timed_out = True
        return self.timed_out

    def say(self, what: str, fraction: float) -> None:
        if self.progress:
            self.progress(what, fraction)

    def offer(self, name: str, plan: np.ndarray) -> None:
        value = stages.total_value(self.enc, plan)
        if value > self.best_value:
            self.best, self.best_value = plan, value
        objective = self.objective()
        self.log.append(Stage(name, round(time.perf_counter() - self.started, 3), objective))
        self.say(f"{name}: objective {objective}", 0.1 if self.bound is None else 0.5)

    def objective(self) -> int:
        """The incumbent's objective as scored (without the re-planning bonus)."""
        assert self.best is not None
        if self.enc.keep is None:
            return self.best_value
        return stages.total_value(self.plain, self.best)

    def set_bound(self, bound: int, seats_bound: int) -> None:
        self.bound, self.seats_bound = bound, seats_bound

    def wish_gap(self) -> tuple[int, float]:
        """(points, share of the wish bound) between the incumbent and the bound."""
        gap = self.bound - self.objective()
        wish_bound = self.bound - SEAT * self.seats_bound
        return gap, gap / wish_bound if wish_bound > 0 else 0.0

    def seats_full(self) -> bool:
        return int((self.best >= 0).sum()) >= self.seats_bound

    def within_tolerance(self) -> bool:
        """Every seat there can be is taken, and the wishes are within the tolerance."""
        gap, share = self.wish_gap()
        return gap <= 0 or (self.seats_full() and share <= self.tolerance)

    def finished(self) -> bool:
        return self.proven or self.within_tolerance() or self.out_of_time()

    def improve(self, plan: np.ndarray) -> np.ndarray:
        enough = self.bound if self.enc.keep is None else None  # nothing is worth more
        improved, _ = stages.improve(self.enc, plan, self.out_of_time, enough)
        return improved

    def solve_exactly(self) -> None:
        from scheduling.domain import infoday_exact

        left = min(EXACT_TIME_LIMIT_S, max(0.0, self.deadline - time.perf_counter()))
        found = infoday_exact.solve(self.enc, self.best, left)
        if found.plan is not None:
            self.offer("exact (CP-SAT)", found.plan)
        if self.enc.keep is None:  # CP-SAT's bound is one on the objective too
            self.bound = min(self.bound, found.bound)
            self.proven = found.optimal
        self.out_of_time()


def _plan(
    instance: InfoDayInstance,
    enc: stages.Encoded,
    search: _Search,
    kept: Mapping[str, tuple[str | None, ...]],
    limit: float,
) -> InfoDayPlan:
    sessions = [s.id for s in instance.sessions]
    assignments: Assignments = {
        pupil.id: tuple(sessions[s] if s >= 0 else None for s in row)
        for pupil, row in zip(instance.pupils, search.best.tolist(), strict=True)
    }
    metrics = score_plan(instance, assignments)
    moved = sum(1 for p, row in kept.items() if assignments[p] != row)
    gap, _ = search.wish_gap()
    warning = None
    # A re-plan that keeps programmes is below the bound by design (nobody moves for a better
    # wish): only running out of time is worth a warning there.
    stalled = not kept and not search.within_tolerance()
    if gap > 0 and (search.timed_out or stalled):
        short = search.seats_bound - metrics.seated
        wish_bound = search.bound - SEAT * search.seats_bound
        share = metrics.wish_utility / wish_bound if wish_bound > 0 else 1.0
        where = (
            f"{short} pupil-round(s) fewer seated than the seats bound, and the wish utility "
            if short
            else "the wish utility "
        ) + f"at {share:.3%} of its bound"
        if search.timed_out:
            warning = (
                f"time limit of {limit:g} s reached: the plan is {gap} points under the upper "
                f"bound ({where}); a longer time limit may close the gap"
            )
        else:
            warning = (
                f"no stage improved the plan further: it is {gap} points under the upper "
                f"bound ({where}), which may not be reachable"
            )
    search.say("done", 1.0)
    return InfoDayPlan(
        assignments,
        metrics,
        upper_bound=search.bound,
        seats_bound=search.seats_bound,
        moved=moved,
        stages=tuple(search.log),
        warning=warning,
    )
