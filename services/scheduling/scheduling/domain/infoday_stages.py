"""The stages of the info-day solver, on the instance in integers (see `infoday.py` for the
problem and for how the stages are put together).

Every stage is a min-cost flow (OR-Tools `SimpleMinCostFlow`) or plain arithmetic over numpy
arrays: no stage can fail to return a plan, and none needs a proof of infeasibility to move on.
- `first_come_first_served`: the naive plan, valid at once (shared/bench/infoday/greedy.py).
- `relaxed_bound`: rounds ignored (but not per-round seat totals): an upper bound on every plan,
  and each pupil's target set of sessions.
- `place_sets`: the target sets put into rounds, one round at a time by flows.
- `improve_rounds`: one round re-optimised exactly with the others fixed, round after round,
  until no round improves: each step keeps every plan it can reach at least as good.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from ortools.graph.python import min_cost_flow

U = (0, 10, 18, 24)
SEAT = 100
BACKUP = 4
KEEP = 50  # re-planning: worth more than any wish gain (<= 10), less than a seat (100)
FILLERS = 3  # sessions beyond a pupil's wishes offered per round: those with most seats free

_U = np.array(U, dtype=np.int64)
EMPTY = -1


@dataclass(frozen=True)
class Encoded:
    """The instance as arrays: sessions 0..S-1, pupils 0..n-1, rounds 0..R-1, -1 = nothing."""

    rounds: int
    capacity: np.ndarray  # (S,) seats per round
    runs: np.ndarray  # (S, R) bool: the session runs in the round and has seats
    choices: np.ndarray  # (n, C) distinct choices, padded with -1
    backup: np.ndarray  # (n,) the backup as the scorer sees it (-1: none)
    keep: np.ndarray | None  # (n, R) the previous plan, for re-planning

    @property
    def pupils(self) -> int:
        return len(self.backup)

    @property
    def sessions(self) -> int:
        return len(self.capacity)

    def round_seats(self) -> np.ndarray:
        return (self.runs * self.capacity[:, None]).sum(axis=0)


def encode(
    rounds: int,
    capacities: Sequence[int],
    runs: Sequence[Sequence[int]],
    choices: Sequence[Sequence[int]],
    backups: Sequence[int],
    keep: Sequence[Sequence[int]] | None = None,
) -> Encoded:
    """`runs` in 1-based rounds; choices and backups as session indices (-1 for none)."""
    capacity = np.array(capacities, dtype=np.int64).reshape(-1)
    on = np.zeros((len(capacity), rounds), dtype=bool)
    for s, session_rounds in enumerate(runs):
        for r in session_rounds:
            if 1 <= r <= rounds and capacity[s] > 0:
                on[s, r - 1] = True
    width = max((len(c) for c in choices), default=0) or 1
    matrix = np.full((len(choices), width), EMPTY, dtype=np.int64)
    for p, row in enumerate(choices):
        matrix[p, : len(row)] = row
    kept = None
    if keep is not None:
        kept = np.array(keep, dtype=np.int64).reshape(len(choices), rounds)
    return Encoded(rounds, capacity, on, matrix, np.array(backups, dtype=np.int64), kept)


# --- values ------------------------------------------------------------------------------------


def _is_choice(enc: Encoded, sessions: np.ndarray, who: np.ndarray | None = None) -> np.ndarray:
    """(n, K) sessions -> (n, K) bool: the session is one of that pupil's choices (`who`: the
    pupils the rows belong to, when not all)."""
    choices = enc.choices if who is None else enc.choices[who]
    hit = (sessions[:, :, None] == choices[:, None, :]).any(axis=2)
    return hit & (sessions >= 0)


def _wish(k: np.ndarray, backup_in: np.ndarray) -> np.ndarray:
    return _U[np.minimum(k, 3)] + BACKUP * (backup_in & (k < 3))


def pupil_values(enc: Encoded, plan: np.ndarray, who: np.ndarray | None = None) -> np.ndarray:
    """Per pupil: 100 a seat, the wish value, and KEEP per session kept in its round (`who`:
    the pupils the rows of `plan` belong to, when not all)."""
    backup = enc.backup if who is None else enc.backup[who]
    k = _is_choice(enc, plan, who).sum(axis=1)
    backup_in = ((plan == backup[:, None]) & (plan >= 0)).any(axis=1)
    value = SEAT * (plan >= 0).sum(axis=1) + _wish(k, backup_in)
    if enc.keep is not None:
        keep = enc.keep if who is None else enc.keep[who]
        value += KEEP * ((plan == keep) & (plan >= 0)).sum(axis=1)
    return value


def total_value(enc: Encoded, plan: np.ndarray) -> int:
    return int(pupil_values(enc, plan).sum())


# --- stage 0: first come, first served ---------------------------------------------------------


def first_come_first_served(enc: Encoded) -> np.ndarray:
    """Pupils in order: each choice, then the backup, in the first free round with a seat; then
    any free round gets the first session with a seat. Valid at once, never optimal."""
    rounds = enc.rounds
    left = np.where(enc.runs, enc.capacity[:, None], 0).tolist()
    order = range(enc.sessions)
    plan = []
    for choices, backup in zip(enc.choices.tolist(), enc.backup.tolist(), strict=True):
        row = [EMPTY] * rounds
        for s in [c for c in choices if c >= 0] + ([backup] if backup >= 0 else []):
            if s in row:
                continue
            for r in range(rounds):
                if row[r] < 0 and left[s][r] > 0:
                    row[r] = s
                    left[s][r] -= 1
                    break
        for r in range(rounds):
            if row[r] >= 0:
                continue
            for s in order:
                if left[s][r] > 0 and s not in row:
                    row[r] = s
                    left[s][r] -= 1
                    break
        plan.append(row)
    return np.array(plan, dtype=np.int64).reshape(enc.pupils, rounds)


# --- flows -------------------------------------------------------------------------------------


class _Network:
    """Arcs collected as arrays, then solved once; `solve` returns the flow on every arc."""

    def __init__(self) -> None:
        self.tails: list[np.ndarray] = []
        self.heads: list[np.ndarray] = []
        self.caps: list[np.ndarray] = []
        self.costs: list[np.ndarray] = []
        self.count = 0

    def arcs(self, tails, heads, caps, costs) -> np.ndarray:
        """Add arcs (arrays or scalars broadcast to the longest); returns their ids."""
        columns = [np.asarray(v, dtype=np.int64) for v in (tails, heads, caps, costs)]
        (size,) = np.broadcast_shapes(*(c.shape for c in columns), (1,))
        for store, column in zip(
            (self.tails, self.heads, self.caps, self.costs), columns, strict=True
        ):
            store.append(np.broadcast_to(column, (size,)))
        ids = np.arange(self.count, self.count + size)
        self.count += size
        return ids

    def solve(self, supply: int, idle_cost: int = 0) -> tuple[np.ndarray, int]:
        """Send `supply` units from node 0 to node 1 at least cost; a unit may also go straight
        from 0 to 1 at `idle_cost`. Returns (flow per arc, cost)."""
        flow = min_cost_flow.SimpleMinCostFlow()
        if self.count:
            flow.add_arcs_with_capacity_and_unit_cost(
                np.concatenate(self.tails).astype(np.int32),
                np.concatenate(self.heads).astype(np.int32),
                np.concatenate(self.caps),
                np.concatenate(self.costs),
            )
        flow.add_arc_with_capacity_and_unit_cost(0, 1, supply, idle_cost)
        flow.set_node_supply(0, supply)
        flow.set_node_supply(1, -supply)
        status = flow.solve()
        if status != flow.OPTIMAL:  # cannot happen: the arc 0 -> 1 carries any supply
            raise RuntimeError(f"min-cost flow ended with status {status}")
        flows = np.asarray(flow.flows(np.arange(self.count, dtype=np.int32)), dtype=np.int64)
        return flows, -int(flow.optimal_cost())


# --- stage 1: the rounds-relaxed bound and target sets -----------------------------------------


@dataclass(frozen=True)
class Relaxed:
    value: int  # no plan has more (seats x 100 + wishes [+ KEEP per kept session])
    seats: int  # pupil-rounds the optimum of the relaxation seats
    sets: np.ndarray  # (n, R) each pupil's target sessions, padded with -1


def relaxed_bound(
    enc: Encoded, *, keep: bool = True, seats_only: bool = False, shared: bool = True
) -> Relaxed:
    """Each pupil gets up to R distinct sessions, each session capacity x its rounds pupils,
    each round at most n pupils and its seats; rounds otherwise ignored. Every plan is a flow
    here, so the optimum bounds every plan.

    Sessions beyond a pupil's wishes are worth only their seat, so they come from one shared
    node instead of an arc per pupil and session (8 arcs a pupil, not S): a further relaxation,
    as a pupil could take such a session twice. The flow is then split over the pupils, each
    taking distinct sessions. That nearly always succeeds; when it does not (few sessions), the
    flow is solved again with an arc per pupil and session (`shared=False`), which is exact.
    `seats_only`: wishes count nothing, the optimum is the most seats."""
    wishes = 0 if seats_only else 1
    n, n_s, rounds = enc.pupils, enc.sessions, enc.rounds
    usable = enc.runs.any(axis=1)
    pupil = 2 + np.arange(n)
    wish_node = 2 + n + np.arange(n)
    hub = 2 + 2 * n
    session = hub + 1 + np.arange(n_s)
    round_node = hub + 1 + n_s + np.arange(rounds)
    kept = np.zeros((n, n_s), dtype=np.int64)
    if keep and enc.keep is not None:
        rows, cols = np.nonzero(enc.keep >= 0)
        kept[rows, enc.keep[rows, cols]] = KEEP
    net = _Network()
    net.arcs(0, pupil, rounds, 0)
    choice = enc.choices
    good = (choice >= 0) & usable[np.maximum(choice, 0)]
    # Cuts that keep the bound close where wishes cannot all fit into rounds (three choices
    # that all miss round 3 give at most two): a pupil holds at most as many choices, and as
    # many of its wishes (choices and backup), as fit into distinct rounds. The second caps
    # a gate node that all wish arcs of the pupil pass.
    masks = _round_masks(enc)
    backup = enc.backup
    gate = hub + 1 + n_s + rounds + np.arange(n)
    grantable, holdable = [], []
    for row, extra_wish in zip(choice.tolist(), backup.tolist(), strict=True):
        wanted = [masks[c] for c in dict.fromkeys(row) if c >= 0 and masks[c]]
        grantable.append(_matching(tuple(sorted(wanted))))
        if extra_wish >= 0 and extra_wish not in row and masks[extra_wish]:
            wanted.append(masks[extra_wish])
        holdable.append(_matching(tuple(sorted(wanted))))
    grantable = np.array(grantable, dtype=np.int64).reshape(n)
    net.arcs(pupil, gate, np.array(holdable, dtype=np.int64).reshape(n), 0)
    for i in range(3):  # the marginals of U: 10, 8, 6
        who = np.nonzero(grantable > i)[0]
        net.arcs(gate[who], wish_node[who], 1, -(U[i + 1] - U[i]) * wishes)
    extra = np.nonzero(grantable > 3)[0]
    if len(extra):
        net.arcs(gate[extra], wish_node[extra], grantable[extra] - 3, 0)
    p_ch, c_ch = np.nonzero(good)
    s_ch = choice[p_ch, c_ch]
    # A backup that is also a choice earns 4 more in the score when k < 3: counted always,
    # which keeps the bound a bound.
    doubled = (backup[p_ch] == s_ch) * BACKUP * wishes
    choice_arcs = net.arcs(wish_node[p_ch], session[s_ch], 1, -kept[p_ch, s_ch] - doubled)
    is_choice = np.zeros((n, n_s), dtype=bool)
    is_choice[p_ch, s_ch] = True
    p_b = np.nonzero((backup >= 0) & usable[np.maximum(backup, 0)])[0]
    p_b = p_b[~is_choice[p_b, backup[p_b]]]
    s_b = backup[p_b]
    backup_arcs = net.arcs(gate[p_b], session[s_b], 1, -BACKUP * wishes - kept[p_b, s_b])
    wished = is_choice.copy()
    wished[p_b, s_b] = True
    p_k, s_k = np.nonzero((kept > 0) & ~wished & usable[None, :])
    kept_arcs = net.arcs(pupil[p_k], session[s_k], 1, -KEEP)
    if shared:
        hub_in = net.arcs(pupil, hub, rounds, 0)
        usable_ids = np.nonzero(usable)[0]
        hub_out = net.arcs(hub, session[usable_ids], rounds * n, 0)
    else:
        p_o, s_o = np.nonzero(~wished & (kept == 0) & usable[None, :])
        other_arcs = net.arcs(pupil[p_o], session[s_o], 1, 0)
    s_r, r_r = np.nonzero(enc.runs)
    net.arcs(session[s_r], round_node[r_r], enc.capacity[s_r], 0)
    seat_arcs = net.arcs(round_node, 1, n, -SEAT)
    flows, value = net.solve(rounds * n)

    sets = np.full((n, rounds), EMPTY, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)

    def put(pupils: np.ndarray, sessions: np.ndarray) -> None:
        for p, s in zip(pupils.tolist(), sessions.tolist(), strict=True):
            sets[p, size[p]] = s
            size[p] += 1

    given = [(choice_arcs, p_ch, s_ch), (backup_arcs, p_b, s_b), (kept_arcs, p_k, s_k)]
    if not shared:
        given.append((other_arcs, p_o, s_o))
    for arcs, pupils, sessions in given:
        used = flows[arcs] > 0
        put(pupils[used], sessions[used])
    relaxed = Relaxed(value, int(flows[seat_arcs].sum()), sets)
    if not shared:
        return relaxed
    supply = dict(zip(usable_ids.tolist(), flows[hub_out].tolist(), strict=True))
    if _spread_fillers(sets, size, flows[hub_in], supply):
        return relaxed_bound(enc, keep=keep, seats_only=seats_only, shared=False)
    return relaxed


def _round_masks(enc: Encoded) -> list[int]:
    """Per session, its rounds as a bit mask (bit r: runs in round r with seats)."""
    return [sum(1 << r for r in np.nonzero(row)[0].tolist()) for row in enc.runs]


@cache
def _matching(masks: tuple[int, ...]) -> int:
    """The most sessions (rounds as bit masks) that can take distinct rounds."""
    taken: dict[int, int] = {}  # round -> session

    def place(i: int, seen: set[int]) -> bool:
        for r in range(masks[i].bit_length()):
            if masks[i] >> r & 1 and r not in seen:
                seen.add(r)
                if r not in taken or place(taken[r], seen):
                    taken[r] = i
                    return True
        return False

    return sum(place(i, set()) for i in range(len(masks)))


def _spread_fillers(
    sets: np.ndarray, size: np.ndarray, needs: np.ndarray, supply: dict[int, int]
) -> int:
    """Give each pupil its share of the shared sessions, distinct from what it has, the most
    plentiful first. Returns how many could not be given."""
    left = {s: c for s, c in supply.items() if c > 0}
    for p in np.nonzero(needs)[0].tolist():
        has = set(sets[p, : size[p]].tolist())
        for s in sorted(left, key=lambda s: (-left[s], s)):
            if needs[p] == 0:
                break
            if s in has:
                continue
            sets[p, size[p]] = s
            size[p] += 1
            needs[p] -= 1
            left[s] -= 1
            if not left[s]:
                del left[s]
    return int(needs.sum())


# --- stage 2: target sets into rounds ----------------------------------------------------------

_DROP = 10_000  # a session left out of the placement (the improvement stage seats the pupil)


def place_sets(enc: Encoded, sets: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Rounds in `order`: while more than two are left, a flow picks the session each pupil
    takes in the round, so that the rest still fits the later rounds and each session's load
    is spread in proportion to its seats; the last two rounds are an orientation (each pupil's
    pair of sessions one way or the other), exactly a flow. What does not fit is left out."""
    view = _Lists(enc)
    remaining = [[s for s in row if s >= 0] for row in sets.tolist()]
    plan = np.full((enc.pupils, enc.rounds), EMPTY, dtype=np.int64)
    rounds = list(order)
    while len(rounds) > 2:
        _peel(enc, view, remaining, plan, rounds[0], rounds[1:])
        rounds = rounds[1:]
    if len(rounds) == 2:
        _orient(enc, view, remaining, plan, rounds[0], rounds[1])
    elif rounds:
        _peel(enc, view, remaining, plan, rounds[0], [])
    _drop_overflow(enc, plan)
    return plan


class _Lists:
    """The per-pupil data as Python lists: the placement loops over pupils one by one."""

    def __init__(self, enc: Encoded) -> None:
        self.runs = _round_masks(enc)
        self.choices = [set(row) for row in enc.choices.tolist()]
        self.backup = enc.backup.tolist()
        self.keep = enc.keep.tolist() if enc.keep is not None else None

    def fits(self, sessions: Sequence[int], rounds: tuple[int, ...]) -> bool:
        return _fits(tuple(sorted(self.runs[s] for s in sessions)), rounds)

    def runs_in(self, s: int, r: int) -> bool:
        return bool(self.runs[s] >> r & 1)

    def kept(self, p: int, r: int, s: int) -> int:
        return KEEP if self.keep is not None and self.keep[p][r] == s else 0

    def least_valuable(self, p: int, sessions: Sequence[int]) -> int:
        return min(sessions, key=lambda s: (s in self.choices[p], s == self.backup[p], s))


@cache
def _fits(runs: tuple[int, ...], rounds: tuple[int, ...]) -> bool:
    """Can sessions running in the rounds of bitmasks `runs` take distinct rounds of `rounds`?"""
    if len(runs) > len(rounds):
        return False
    return any(
        all(on >> r & 1 for on, r in zip(runs, chosen, strict=True))
        for chosen in itertools.permutations(rounds, len(runs))
    )


def _peel(
    enc: Encoded,
    view: _Lists,
    remaining: list[list[int]],
    plan: np.ndarray,
    r: int,
    later: list[int],
) -> None:
    n, n_s = enc.pupils, enc.sessions
    later_t = tuple(later)
    session_node = 2 + n
    skip_node = session_node + n_s
    drop_node = skip_node + 1
    tails, heads, costs, labels = [], [], [], []
    degree = [0] * n_s
    who = []
    for p, wanted in enumerate(remaining):
        if not wanted:
            continue
        who.append(p)
        for s in wanted:
            degree[s] += 1
            if view.runs_in(s, r) and view.fits([x for x in wanted if x != s], later_t):
                tails.append(2 + p)
                heads.append(session_node + s)
                costs.append(-view.kept(p, r, s))
                labels.append((p, s))
        if len(wanted) <= len(later) and view.fits(wanted, later_t):
            tails.append(2 + p)
            heads.append(skip_node)
            costs.append(0)
            labels.append((p, EMPTY))
        tails.append(2 + p)
        heads.append(drop_node)
        costs.append(_DROP)
        labels.append((p, -2))
    net = _Network()
    chosen = net.arcs(np.array(tails), np.array(heads), 1, np.array(costs))
    net.arcs(0, 2 + np.array(who, dtype=np.int64), 1, 0)
    for s in range(n_s):
        if not degree[s] or not view.runs_in(s, r):
            continue
        cap = int(enc.capacity[s])
        later_cap = cap * sum(view.runs_in(s, q) for q in later)
        low = min(cap, max(0, degree[s] - later_cap))  # what later rounds cannot hold
        target = min(cap, max(low, round(degree[s] * cap / (cap + later_cap))))
        if low:
            net.arcs(session_node + s, 1, low, -_DROP)
        if target > low:
            net.arcs(session_node + s, 1, target - low, -1)
        if cap > target:
            net.arcs(session_node + s, 1, cap - target, 1)
    net.arcs(skip_node, 1, len(who), 0)
    net.arcs(drop_node, 1, len(who), 0)
    flows, _ = net.solve(len(who), idle_cost=10 * _DROP)
    for a in np.nonzero(flows[chosen])[0].tolist():
        p, s = labels[a]
        wanted = remaining[p]
        if s >= 0:
            plan[p, r] = s
            wanted.remove(s)
        elif s == -2:
            wanted.remove(view.least_valuable(p, wanted))


def _orient(
    enc: Encoded,
    view: _Lists,
    remaining: list[list[int]],
    plan: np.ndarray,
    first: int,
    second: int,
) -> None:
    """Each pupil's last one or two sessions into rounds `first` and `second`: the flow picks
    the session that goes first; a session's load in `second` is what it does not take in
    `first`, so its seats there are a lower bound on its `first` load."""
    n, n_s = enc.pupils, enc.sessions
    both = (first, second)
    session_node = 2 + n
    second_node = session_node + n_s
    tails, heads, costs, labels = [], [], [], []
    degree = [0] * n_s
    who = []
    for p, wanted in enumerate(remaining):
        while wanted and not view.fits(wanted, both):
            wanted.remove(view.least_valuable(p, wanted))
        if not wanted:
            continue
        who.append(p)
        for s in wanted:
            degree[s] += 1
        if len(wanted) == 1:
            (s,) = wanted
            if view.runs_in(s, first):
                tails.append(2 + p)
                heads.append(session_node + s)
                costs.append(-view.kept(p, first, s))
                labels.append((p, s, EMPTY))
            if view.runs_in(s, second):
                tails.append(2 + p)
                heads.append(second_node)
                costs.append(-view.kept(p, second, s))
                labels.append((p, EMPTY, s))
            continue
        a, b = wanted
        for s, t in ((a, b), (b, a)):
            if view.runs_in(s, first) and view.runs_in(t, second):
                tails.append(2 + p)
                heads.append(session_node + s)
                costs.append(-view.kept(p, first, s) - view.kept(p, second, t))
                labels.append((p, s, t))
    net = _Network()
    chosen = net.arcs(np.array(tails), np.array(heads), 1, np.array(costs))
    net.arcs(0, 2 + np.array(who, dtype=np.int64), 1, 0)
    for s in range(n_s):
        if not degree[s] or not view.runs_in(s, first):
            continue
        cap = int(enc.capacity[s])
        low = min(cap, max(0, degree[s] - cap * view.runs_in(s, second)))
        if low:
            net.arcs(session_node + s, 1, low, -_DROP)
        if cap > low:
            net.arcs(session_node + s, 1, cap - low, 0)
    net.arcs(second_node, 1, len(who), 0)
    flows, _ = net.solve(len(who), idle_cost=10 * _DROP)
    for a in np.nonzero(flows[chosen])[0].tolist():
        p, s, t = labels[a]
        plan[p, first] = s
        plan[p, second] = t
        remaining[p] = []


def _drop_overflow(enc: Encoded, plan: np.ndarray) -> None:
    """Seats over a session's capacity are taken from pupils to whom it is worth least."""
    for r in range(enc.rounds):
        column = plan[:, r]
        load = np.bincount(column[column >= 0], minlength=enc.sessions)
        for s in np.nonzero(load > enc.capacity)[0].tolist():
            holders = np.nonzero(column == s)[0].tolist()
            holders.sort(key=lambda p: (s in enc.choices[p], s == enc.backup[p], p))
            for p in holders[: int(load[s] - enc.capacity[s])]:
                plan[p, r] = EMPTY


# --- stage 3: one round at a time, exactly ------------------------------------------------------


def improve_round(enc: Encoded, plan: np.ndarray, r: int) -> tuple[np.ndarray, int]:
    """Round r re-assigned for everyone with the other rounds fixed: a pupil's value for a
    session is exact given its other rounds, so the flow optimum is the best round r there is
    among the sessions offered (the pupil's wishes, its current and previous session, and the
    FILLERS sessions with most seats free). The current round r is among them, so the result
    is never worse. Returns the new plan and its gain."""
    n, rounds = enc.pupils, enc.rounds
    others = np.delete(plan, r, axis=1)
    k_others = _is_choice(enc, others).sum(axis=1)
    backup_others = ((others == enc.backup[:, None]) & (others >= 0)).any(axis=1)
    base = _wish(k_others, backup_others)
    column = plan[:, r]
    load = np.bincount(column[column >= 0], minlength=enc.sessions)
    running = np.nonzero(enc.runs[:, r])[0]
    free = enc.capacity[running] - load[running]
    spare = running[np.lexsort((running, -free))][: FILLERS + rounds - 1]
    keep_r = enc.keep[:, r] if enc.keep is not None else np.full(n, EMPTY, dtype=np.int64)
    offered = np.concatenate(
        [
            enc.choices,
            enc.backup[:, None],
            column[:, None],
            keep_r[:, None],
            np.broadcast_to(spare, (n, len(spare))),
        ],
        axis=1,
    )
    ok = (offered >= 0) & enc.runs[np.maximum(offered, 0), r]
    ok &= ~(offered[:, :, None] == others[:, None, :]).any(axis=2)
    for j in range(1, offered.shape[1]):  # each session once per pupil
        ok[:, j] &= ~(offered[:, j : j + 1] == offered[:, :j]).any(axis=1)
    filler = offered.shape[1] - len(spare)
    if len(spare) > FILLERS:  # at most FILLERS sessions from the spare list per pupil
        ok[:, filler:] &= np.cumsum(ok[:, filler:], axis=1) <= FILLERS
    k_new = k_others[:, None] + _is_choice(enc, offered)
    backup_new = backup_others[:, None] | ((offered == enc.backup[:, None]) & (offered >= 0))
    gain = SEAT + _wish(k_new, backup_new) - base[:, None]
    gain += KEEP * ((offered == keep_r[:, None]) & (offered >= 0))
    pupils, slots = np.nonzero(ok)
    sessions = offered[pupils, slots]
    net = _Network()
    net.arcs(0, 2 + np.arange(n), 1, 0)
    chosen = net.arcs(2 + pupils, 2 + n + sessions, 1, -gain[pupils, slots])
    net.arcs(2 + n + running, 1, enc.capacity[running], 0)
    flows, _ = net.solve(n)
    new = plan.copy()
    new[:, r] = EMPTY
    used = flows[chosen] > 0
    new[pupils[used], r] = sessions[used]
    changed = np.nonzero((new != plan).any(axis=1))[0]
    gained = int(
        pupil_values(enc, new[changed], changed).sum()
        - pupil_values(enc, plan[changed], changed).sum()
    )
    return new, gained


def improve(
    enc: Encoded,
    plan: np.ndarray,
    out_of_time: Callable[[], bool],
    enough: int | None = None,
) -> tuple[np.ndarray, int]:
    """`improve_round` round after round until R rounds in a row gain nothing, the plan is
    worth `enough`, or time is up. Returns the plan and the number of round flows solved."""
    idle = steps = 0
    r = 0
    value = total_value(enc, plan)
    while idle < enc.rounds and not out_of_time() and (enough is None or value < enough):
        new, gained = improve_round(enc, plan, r)
        steps += 1
        idle = 0 if gained > 0 else idle + 1
        if gained >= 0:
            plan, value = new, value + gained
        r = (r + 1) % enc.rounds
    return plan, steps
