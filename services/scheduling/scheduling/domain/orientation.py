"""Orientation afternoons (oriëntatiedagen): one practical workshop per pupil per date.

Pupils rank up to three workshops of one date; each workshop (a programme at an mbo location)
has a capacity. One call of `allocate_workshops` plans one date, so a pupil gets at most one
workshop per date (a second request of the same pupil is an input error).

The allocation is exact, in this lexicographic order:
1. seats: as many pupils seated as possible (maximum flow);
2. fair shares between schools: the smallest sum over schools of x² / n, where x is the school's
   seated pupils and n the pupils it sent. Seat k of a school costs (2k - 1) / n, so the seats
   go to the schools by the Sainte-Laguë method, in proportion to the pupils each sent: a school
   whose pupils all want the popular workshops still gets its share of seats;
3. rank: the smallest sum of rank costs 0/1/2 for a 1st/2nd/3rd choice (a mean-rank objective:
   one pupil moving from 1st to 2nd choice is worth another moving from 2nd to 1st);
4. fairness per workshop: the smallest sum over all (workshop, school) pairs of x² / d, where x
   is the school's seats at the workshop and d its demand there (its pupils who ranked it, at
   any rank): a contested workshop is shared in proportion to demand, again by Sainte-Laguë,
   without shutting out a small school as D'Hondt would.
Two min-cost max-flows (OR-Tools): the first decides the seats per school (levels 1-3, exact);
the second, with exactly those seats per school, reaches the same rank and then level 4, so
level 4 is optimal among allocations that give each school the same number of seats. Quotients
are scaled by the square of the largest denominator and rounded down, which keeps their order,
and each level's unit exceeds any possible total of the levels below it, so a lower level never
costs a higher one anything. Pupils with the same school and ranking are interchangeable in the
flow; among them the earlier sign-up (then the smaller pupil id) gets the better outcome.
Remaining ties are broken by the solver on inputs in a fixed order, so equal input gives an
equal allocation.

No-shows: a workshop with a no-show history may be overbooked, see `effective_capacity`.
Pupils without a seat wait on the list of every workshop they ranked (ordered by that rank, then
sign-up time, then pupil id); a cancellation before the cut-off promotes the first of them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from ortools.graph.python import min_cost_flow

MAX_RANKS = 3
DEFAULT_MAX_OVERBOOKING = 0.15
DEFAULT_MIN_BOOKINGS = 20
_EPSILON = 1e-9  # absorbs binary float error before rounding down (20 * 0.2 / 0.8 = 4.999...)


class OrientationInputError(ValueError):
    """The input cannot be allocated as given; the message names the bad item."""


@dataclass(frozen=True)
class Workshop:
    id: str
    capacity: int
    title: str = ""
    location: str = ""


@dataclass(frozen=True)
class WorkshopRequest:
    """A pupil's ranked wishes for one date: ranking[0] is the first choice."""

    pupil_id: str
    school_id: str
    ranking: tuple[str, ...]
    signed_up_at: datetime

    def rank_of(self, workshop_id: str) -> int | None:
        """1-based rank of a workshop in this request, None when the pupil did not rank it."""
        if workshop_id not in self.ranking:
            return None
        return self.ranking.index(workshop_id) + 1


@dataclass(frozen=True)
class AttendanceRecord:
    """What happened at an earlier edition: bookings of a school at a workshop and who came."""

    workshop_id: str
    school_id: str
    booked: int
    attended: int


@dataclass(frozen=True)
class SchoolShare:
    requested: int
    seated: int

    @property
    def share(self) -> float:
        """Part of the school's requesting pupils who got a seat (0.0 when none requested)."""
        return self.seated / self.requested if self.requested else 0.0


@dataclass(frozen=True)
class AllocationMetrics:
    """Counts only, no names: safe to log and to show operators."""

    requested: int
    seated: int
    waitlisted: int
    by_rank: Mapping[int, int]
    schools: Mapping[str, SchoolShare]


@dataclass(frozen=True)
class WorkshopAllocation:
    """The plan of one date. Promotions return a new allocation; this one is never changed."""

    workshops: Mapping[str, Workshop]
    capacities: Mapping[str, int]  # effective capacity, overbooking included
    requests: Mapping[str, WorkshopRequest]
    assignments: Mapping[str, str]  # pupil id -> workshop id
    waitlists: Mapping[str, tuple[str, ...]]  # workshop id -> pupil ids, first in line first
    cancelled: frozenset[str] = field(default_factory=frozenset)

    def rank_of(self, pupil_id: str) -> int | None:
        """Rank of the pupil's assigned workshop, None when the pupil has no seat."""
        workshop_id = self.assignments.get(pupil_id)
        return None if workshop_id is None else self.requests[pupil_id].rank_of(workshop_id)

    def waitlist_positions(self, pupil_id: str) -> dict[str, int]:
        """Workshop id -> 1-based place in line, for telling a pupil where they stand."""
        return {
            w: line.index(pupil_id) + 1 for w, line in self.waitlists.items() if pupil_id in line
        }

    def seats_taken(self, workshop_id: str) -> int:
        return sum(1 for w in self.assignments.values() if w == workshop_id)

    def seats_by_school(self, workshop_id: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for pupil_id, w in self.assignments.items():
            if w == workshop_id:
                counts[self.requests[pupil_id].school_id] += 1
        return dict(sorted(counts.items()))

    @property
    def metrics(self) -> AllocationMetrics:
        active = [r for p, r in self.requests.items() if p not in self.cancelled]
        by_rank = {rank: 0 for rank in range(1, MAX_RANKS + 1)}
        requested: dict[str, int] = defaultdict(int)
        seated: dict[str, int] = defaultdict(int)
        for request in active:
            requested[request.school_id] += 1
            rank = self.rank_of(request.pupil_id)
            if rank is not None:
                by_rank[rank] += 1
                seated[request.school_id] += 1
        schools = {s: SchoolShare(requested[s], seated[s]) for s in sorted(requested)}
        total_seated = sum(by_rank.values())
        return AllocationMetrics(
            len(active), total_seated, len(active) - total_seated, by_rank, schools
        )


class PromotionOutcome(Enum):
    PROMOTED = "promoted"
    AFTER_CUTOFF = "after_cutoff"
    WAITLIST_EMPTY = "waitlist_empty"
    NOT_SEATED = "not_seated"


@dataclass(frozen=True)
class Promotion:
    """What a cancellation changed; `promoted_pupil_id` is the pupil to notify, if any."""

    allocation: WorkshopAllocation
    cancelled_pupil_id: str
    freed_workshop_id: str | None
    promoted_pupil_id: str | None
    outcome: PromotionOutcome
    message: str


def no_show_rates(
    records: Iterable[AttendanceRecord], *, min_bookings: int = DEFAULT_MIN_BOOKINGS
) -> dict[str, float]:
    """No-show rate per workshop, pooled over schools.

    A workshop with fewer than `min_bookings` past bookings gets no rate (so no overbooking):
    a handful of bookings says too little to risk a seat on.
    """
    booked: dict[str, int] = defaultdict(int)
    attended: dict[str, int] = defaultdict(int)
    for record in records:
        if record.booked < 0 or not 0 <= record.attended <= record.booked:
            raise OrientationInputError(
                f"attendance of workshop {record.workshop_id!r} for school "
                f"{record.school_id!r}: attended must be between 0 and booked ({record.booked})"
            )
        booked[record.workshop_id] += record.booked
        attended[record.workshop_id] += record.attended
    return {
        w: (booked[w] - attended[w]) / booked[w]
        for w in sorted(booked)
        if booked[w] >= max(min_bookings, 1)
    }


def effective_capacity(
    capacity: int, no_show_rate: float | None, max_overbooking: float = DEFAULT_MAX_OVERBOOKING
) -> int:
    """Seats to hand out so that the expected attendance does not exceed the capacity.

    With no-show rate r, n booked pupils are expected to bring n(1 - r); n = c / (1 - r) fills c
    seats, so the extra is floor(c * r / (1 - r)). It is capped at floor(max_overbooking * c)
    because a rate from history is an estimate; no history means no overbooking.
    """
    if capacity < 0:
        raise OrientationInputError(f"capacity must be 0 or more, got {capacity}")
    if not 0 <= max_overbooking <= 1:
        raise OrientationInputError(
            f"max_overbooking must be between 0 and 1, got {max_overbooking}"
        )
    if no_show_rate is None or no_show_rate == 0:
        return capacity
    if not 0 <= no_show_rate <= 1:
        raise OrientationInputError(f"no-show rate must be between 0 and 1, got {no_show_rate}")
    cap = math.floor(max_overbooking * capacity + _EPSILON)
    if no_show_rate == 1:
        return capacity + cap
    expected_gap = math.floor(capacity * no_show_rate / (1 - no_show_rate) + _EPSILON)
    return capacity + min(cap, expected_gap)


def allocate_workshops(
    workshops: Sequence[Workshop],
    requests: Sequence[WorkshopRequest],
    *,
    no_show_rates: Mapping[str, float] | None = None,
    max_overbooking: float = DEFAULT_MAX_OVERBOOKING,
    keep: Mapping[str, str] | None = None,
) -> WorkshopAllocation:
    """Seat the pupils of one date: most seats, then best ranks, then fair between schools.

    `keep` (pupil id -> workshop id) re-plans around an earlier allocation: a pupil who holds a
    seat keeps it (a confirmed seat is never moved), and only the others are allocated, to the
    seats that are left. A kept seat at a workshop that no longer exists, or that the pupil did
    not rank, is not kept.
    """
    by_id = _validate(workshops, requests)
    rates = no_show_rates or {}
    for workshop_id in rates:
        if workshop_id not in by_id:
            raise OrientationInputError(f"no-show rate given for unknown workshop {workshop_id!r}")
    capacities = {
        w.id: effective_capacity(w.capacity, rates.get(w.id), max_overbooking) for w in workshops
    }
    ordered = sorted(requests, key=lambda r: (r.signed_up_at, r.pupil_id))
    kept = {
        r.pupil_id: keep[r.pupil_id]
        for r in ordered
        if keep and r.rank_of(keep.get(r.pupil_id, "")) is not None
    }
    left = dict(capacities)
    for workshop_id in kept.values():
        left[workshop_id] = max(left[workshop_id] - 1, 0)
    free = [r for r in ordered if r.pupil_id not in kept]
    return restore_allocation(workshops, capacities, ordered, {**kept, **_solve_flow(left, free)})


def restore_allocation(
    workshops: Sequence[Workshop],
    capacities: Mapping[str, int],
    requests: Sequence[WorkshopRequest],
    assignments: Mapping[str, str],
) -> WorkshopAllocation:
    """An allocation as it was decided earlier (stored plan), without solving anything.

    Waiting lists follow from the requests of those without a seat, so they come out as they
    were. Capacities are the effective ones of that plan, overbooking included.
    """
    by_id = {w.id: w for w in workshops}
    ordered = sorted(requests, key=lambda r: (r.signed_up_at, r.pupil_id))
    unseated = [r for r in ordered if r.pupil_id not in assignments]
    return WorkshopAllocation(
        workshops=by_id,
        capacities={w.id: capacities.get(w.id, w.capacity) for w in workshops},
        requests={r.pupil_id: r for r in ordered},
        assignments=dict(sorted(assignments.items())),
        waitlists=_waitlists(by_id, unseated),
    )


def promote_after_cancellation(
    allocation: WorkshopAllocation, cancelled_pupil_id: str, *, now: datetime, cutoff: datetime
) -> Promotion:
    """Cancel a pupil and, before the cut-off, give the freed seat to the first in line.

    After the cut-off the seat stays empty: the pupil promoted so late could not arrange to
    come (school hours, transport), and a no-show is what the region wants to avoid.
    """
    if cancelled_pupil_id not in allocation.requests:
        raise OrientationInputError(f"unknown pupil {cancelled_pupil_id!r}")
    if cancelled_pupil_id in allocation.cancelled:
        raise OrientationInputError(f"pupil {cancelled_pupil_id!r} has already cancelled")
    freed = allocation.assignments.get(cancelled_pupil_id)
    after = _without(allocation, cancelled_pupil_id)
    after = replace(after, cancelled=allocation.cancelled | {cancelled_pupil_id})

    def result(
        promoted: str | None,
        outcome: PromotionOutcome,
        message: str,
        plan: WorkshopAllocation = after,
    ) -> Promotion:
        return Promotion(plan, cancelled_pupil_id, freed, promoted, outcome, message)

    if freed is None:
        return result(
            None,
            PromotionOutcome.NOT_SEATED,
            f"pupil {cancelled_pupil_id} had no seat; removed from the waiting lists",
        )
    if now >= cutoff:
        return result(
            None,
            PromotionOutcome.AFTER_CUTOFF,
            f"cancelled at {now:%Y-%m-%d %H:%M}, after the cut-off "
            f"{cutoff:%Y-%m-%d %H:%M}: the seat at {freed} stays empty",
        )
    line = after.waitlists.get(freed, ())
    if not line or after.seats_taken(freed) >= after.capacities[freed]:
        return result(
            None,
            PromotionOutcome.WAITLIST_EMPTY,
            f"nobody is waiting for {freed}; the seat stays free",
        )
    promoted = line[0]
    plan = _without(after, promoted)
    plan = replace(plan, assignments={**plan.assignments, promoted: freed})
    return result(
        promoted,
        PromotionOutcome.PROMOTED,
        f"pupil {promoted} moved from the waiting list to {freed}",
        plan,
    )


def _validate(
    workshops: Sequence[Workshop], requests: Sequence[WorkshopRequest]
) -> dict[str, Workshop]:
    by_id: dict[str, Workshop] = {}
    for workshop in workshops:
        if workshop.id in by_id:
            raise OrientationInputError(f"workshop {workshop.id!r} is listed twice")
        if workshop.capacity < 0:
            raise OrientationInputError(
                f"workshop {workshop.id!r} has a negative capacity ({workshop.capacity})"
            )
        by_id[workshop.id] = workshop
    pupils: set[str] = set()
    for request in requests:
        _validate_request(request, by_id)
        if request.pupil_id in pupils:
            raise OrientationInputError(
                f"pupil {request.pupil_id!r} has more than one request for this date"
            )
        pupils.add(request.pupil_id)
    return by_id


def _validate_request(request: WorkshopRequest, known: Mapping[str, Workshop]) -> None:
    pupil = request.pupil_id
    if not request.ranking:
        raise OrientationInputError(f"pupil {pupil!r} ranked no workshop")
    if len(request.ranking) > MAX_RANKS:
        raise OrientationInputError(
            f"pupil {pupil!r} ranked {len(request.ranking)} workshops; at most {MAX_RANKS}"
        )
    seen: set[str] = set()
    for workshop_id in request.ranking:
        if workshop_id not in known:
            raise OrientationInputError(f"pupil {pupil!r} ranked unknown workshop {workshop_id!r}")
        if workshop_id in seen:
            raise OrientationInputError(
                f"pupil {pupil!r} ranked workshop {workshop_id!r} more than once"
            )
        seen.add(workshop_id)


def _solve_flow(
    capacities: Mapping[str, int], ordered: Sequence[WorkshopRequest]
) -> dict[str, str]:
    """Two min-cost max-flows: first each school's number of seats, then who sits where.

    Stage 1 fixes how many pupils of each school get a seat: the most seats in all, shared by
    the Sainte-Laguë method in proportion to how many pupils each school sent, ties broken by
    the best total rank. Stage 2, with exactly those numbers, reaches that rank again and then
    shares every workshop fairly:
    source -> school -> (school, ranking) group -> (workshop, school) -> workshop -> sink.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[WorkshopRequest]] = defaultdict(list)
    for request in ordered:  # sign-up order, so each group is in sign-up order too
        groups[(request.school_id, request.ranking)].append(request)
    if not groups:
        return {}
    quotas = _school_quotas(capacities, groups)
    return _assign_within_quotas(capacities, groups, quotas, len(ordered))


class _Network:
    """An OR-Tools min-cost flow with named nodes."""

    def __init__(self) -> None:
        self.flow = min_cost_flow.SimpleMinCostFlow()
        self.nodes: dict[object, int] = {"source": 0, "sink": 1}

    def node(self, key: object) -> int:
        return self.nodes.setdefault(key, len(self.nodes))

    def arc(self, tail: object, head: object, capacity: int, cost: int = 0) -> int:
        return self.flow.add_arc_with_capacity_and_unit_cost(
            self.node(tail), self.node(head), capacity, cost
        )

    def solve(self, supply: int) -> None:
        self.flow.set_node_supply(0, supply)
        self.flow.set_node_supply(1, -supply)
        if self.flow.solve_max_flow_with_min_cost() != self.flow.OPTIMAL:
            raise RuntimeError("the orientation allocation flow did not solve")


def _school_quotas(
    capacities: Mapping[str, int], groups: Mapping[tuple[str, tuple[str, ...]], list]
) -> dict[str, int]:
    """Seats per school: maximum in all, then fair shares between schools, then best ranks.

    Seat k of a school that sent n pupils costs (2k - 1) / n (the smallest sum of x² / n over
    schools), scaled by S² (S the largest n) and rounded down, which keeps the order of the
    quotients; that unit exceeds any total rank cost, so rank decides only between equally fair
    shares. A school whose pupils only want what everybody wants still gets its share.
    """
    sizes: dict[str, int] = defaultdict(int)
    for (school, _), members in groups.items():
        sizes[school] += len(members)
    pupils = sum(sizes.values())
    scale = max(sizes.values()) ** 2
    share_unit = 2 * pupils + 1  # > any total rank cost (at most 2 per pupil)
    net = _Network()
    school_arcs: dict[str, list[int]] = {}
    for school, n in sorted(sizes.items()):
        school_arcs[school] = [
            net.arc("source", ("s", school), 1, share_unit * (scale * (2 * k - 1) // n))
            for k in range(1, n + 1)
        ]
    for key in sorted(groups):
        net.arc(("s", key[0]), ("g", key), len(groups[key]))
        for rank, workshop_id in enumerate(key[1]):
            net.arc(("g", key), ("w", workshop_id), len(groups[key]), rank)
    for workshop_id, capacity in sorted(capacities.items()):
        net.arc(("w", workshop_id), "sink", capacity)
    net.solve(pupils)
    return {s: sum(net.flow.flow(a) for a in arcs) for s, arcs in school_arcs.items()}


def _assign_within_quotas(
    capacities: Mapping[str, int],
    groups: Mapping[tuple[str, tuple[str, ...]], list[WorkshopRequest]],
    quotas: Mapping[str, int],
    pupils: int,
) -> dict[str, str]:
    demand: dict[tuple[str, str], int] = defaultdict(int)
    for (school, ranking), members in groups.items():
        for workshop_id in ranking:
            demand[(workshop_id, school)] += len(members)
    scale = max(demand.values()) ** 2
    rank_unit = 2 * scale * pupils + 1  # > any total fairness cost (< 2 * scale per seat)
    net = _Network()
    for school, quota in sorted(quotas.items()):
        net.arc("source", ("s", school), quota)
    for workshop_id, capacity in sorted(capacities.items()):
        net.arc(("w", workshop_id), "sink", capacity)
    for (workshop_id, school), d in sorted(demand.items()):
        for k in range(1, min(d, capacities[workshop_id]) + 1):
            net.arc(("ws", workshop_id, school), ("w", workshop_id), 1, scale * (2 * k - 1) // d)
    group_arcs: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for key in sorted(groups):
        size = len(groups[key])
        net.arc(("s", key[0]), ("g", key), size)
        group_arcs[key] = [
            net.arc(("g", key), ("ws", workshop_id, key[0]), size, rank_unit * rank)
            for rank, workshop_id in enumerate(key[1])
        ]
    net.solve(pupils)
    return _seat_groups(groups, group_arcs, net.flow)


def _seat_groups(
    groups: Mapping[tuple[str, tuple[str, ...]], list[WorkshopRequest]],
    group_arcs: Mapping[tuple[str, tuple[str, ...]], list[int]],
    flow: min_cost_flow.SimpleMinCostFlow,
) -> dict[str, str]:
    """Within a group the earliest sign-ups take the best-ranked seats the flow granted."""
    assignments: dict[str, str] = {}
    for key, members in groups.items():
        pupils = iter(members)
        for workshop_id, arc in zip(key[1], group_arcs[key], strict=True):
            for _ in range(flow.flow(arc)):
                assignments[next(pupils).pupil_id] = workshop_id
    return assignments


def _waitlists(
    workshops: Mapping[str, Workshop], unseated: Iterable[WorkshopRequest]
) -> dict[str, tuple[str, ...]]:
    lines: dict[str, list[tuple[int, datetime, str]]] = {w: [] for w in workshops}
    for request in unseated:
        for rank, workshop_id in enumerate(request.ranking, start=1):
            lines[workshop_id].append((rank, request.signed_up_at, request.pupil_id))
    return {w: tuple(p for _, _, p in sorted(line)) for w, line in lines.items()}


def _without(allocation: WorkshopAllocation, pupil_id: str) -> WorkshopAllocation:
    """The allocation with the pupil neither seated nor waiting anywhere."""
    assignments = {p: w for p, w in allocation.assignments.items() if p != pupil_id}
    waitlists = {
        w: tuple(p for p in line if p != pupil_id) for w, line in allocation.waitlists.items()
    }
    return replace(allocation, assignments=assignments, waitlists=waitlists)
