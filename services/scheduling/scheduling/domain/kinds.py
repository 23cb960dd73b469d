"""How each kind of activity gets its plan: from a `PlanInput` to an `Outcome` (plain Python).

Two ways in, per kind:
- a full run (`planner_for`), at the close of sign-up or when an operator asks. With a plan in
  force it re-plans with as little change as possible;
- an update of the plan in force (`updater_for`) when someone cancels or signs up late, without
  a full run: before the cut-off the first in line takes a freed place; after it a freed place
  stays empty.

| kind | full run | update |
|---|---|---|
| infoday | `assign_programmes` (infoday.py) | - (the operator re-plans) |
| orientation_day | `allocate_workshops` (orientation.py) | promotion, late sign-ups |
| bus_tour | seats (seats.py) and timetable (itinerary.py) | seats |
| any other kind with a capacity | seats, one block of `capacity` | seats, from the first sign-up |
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

from lob_common.timeutil import local
from scheduling.domain import infoday, itinerary, orientation, seats
from scheduling.domain.plan import (
    Activity,
    CannotPlan,
    NothingToPlan,
    Outcome,
    PlanInput,
    Progress,
    SignUp,
    Waiting,
)

log = logging.getLogger(__name__)


def room_list(
    item_id: str, title: str, provider: str, round_no: int, capacity: int, people: Sequence[str]
) -> dict[str, Any]:
    """Who is in one room (a session in a round, a workshop, a bus, an event's hall): the
    list the host ticks off. The one shape of every kind's room lists."""
    return {
        "session_id": item_id,
        "title": title,
        "provider": provider,
        "round": round_no,
        "capacity": capacity,
        "count": len(people),
        "pupils": list(people),
    }


# --- info day ----------------------------------------------------------------------------------


def infoday_instance(inp: PlanInput) -> infoday.InfoDayInstance:
    spec = inp.spec
    rounds = max((r["round"] for r in spec.get("rounds", [])), default=0) or max(
        (max(s["rounds"]) for s in spec.get("sessions", []) if s["rounds"]), default=3
    )
    sessions = tuple(
        infoday.Session(
            id=s["session_id"],
            capacity=s["capacity"],
            rounds=tuple(s["rounds"]),
            title=s.get("title", ""),
            provider=s.get("provider", ""),
        )
        for s in spec.get("sessions", [])
    )
    pupils = tuple(
        infoday.PupilRequest(
            id=s.registration_id,
            school=s.school_id or "",
            choices=tuple(s.preferences.get("choices") or ()),
            backup=s.preferences.get("backup"),
        )
        for s in inp.in_sign_up_order()
    )
    return infoday.InfoDayInstance(
        rounds=rounds, sessions=sessions, pupils=pupils, name=inp.activity.id
    )


def plan_infoday(inp: PlanInput, progress: Progress | None = None) -> Outcome:
    instance = infoday_instance(inp)
    kept = None
    if inp.previous:
        kept = {
            reg: tuple(item["session_id"] for item in programme.get("sessions", []))
            for reg, programme in inp.previous.programmes.items()
        }
    plan = infoday.assign_programmes(
        instance,
        previous=kept,
        time_limit_s=inp.settings.infoday_time_limit_s,
        progress=progress,
    )
    if plan.warning:
        log.warning("info day %s: %s", inp.activity.id, plan.warning)
    by_id = {s["session_id"]: s for s in inp.spec.get("sessions", [])}
    times = {r["round"]: r for r in inp.spec.get("rounds", [])}
    outcome = Outcome(metrics=plan.summary())
    for registration_id, sessions in plan.assignments.items():
        outcome.programmes[registration_id] = {
            "sessions": [
                _session_entry(round_no, session_id, by_id, times)
                for round_no, session_id in enumerate(sessions, start=1)
            ]
        }
    outcome.details["room_lists"] = _session_lists(instance, plan)
    return outcome


def _session_lists(
    instance: infoday.InfoDayInstance, plan: infoday.InfoDayPlan
) -> list[dict[str, Any]]:
    """Per session and round, who is in the room, sorted by school then registration id."""
    schools = {p.id: p.school for p in instance.pupils}
    rooms: dict[tuple[str, int], list[str]] = {}
    for pupil_id, row in plan.assignments.items():
        for r, s in enumerate(row, start=1):
            if s is not None:
                rooms.setdefault((s, r), []).append(pupil_id)
    return [
        room_list(
            session.id,
            session.title,
            session.provider,
            r,
            session.capacity,
            sorted(rooms.get((session.id, r), []), key=lambda p: (schools[p], p)),
        )
        for session in instance.sessions
        for r in session.rounds
    ]


def _session_entry(
    round_no: int, session_id: str | None, by_id: dict[str, dict], times: dict[int, dict]
) -> dict[str, Any]:
    session = by_id.get(session_id or "", {})
    slot = times.get(round_no, {})
    return {
        "round": round_no,
        "session_id": session_id,
        "title": session.get("title", ""),
        "room": session.get("room", ""),
        "starts_at": slot.get("starts_at"),
        "ends_at": slot.get("ends_at"),
    }


# --- orientation afternoons --------------------------------------------------------------------


def _workshops(inp: PlanInput) -> list[orientation.Workshop]:
    return [
        orientation.Workshop(
            w["workshop_id"], w["capacity"], w.get("title", ""), w.get("location", "")
        )
        for w in inp.spec.get("workshops", [])
    ]


def _requests(
    workshops: list[orientation.Workshop], sign_ups: Iterable[SignUp]
) -> tuple[list[orientation.WorkshopRequest], int]:
    """The pupils' rankings, cleaned: registration checks them, but a workshop may have been
    dropped since, or an old message may repeat one. Returns the requests and how many pupils
    were left without any workshop they can be given."""
    known = {w.id for w in workshops}
    requests, without = [], 0
    for sign_up in sign_ups:
        ranking = [w for w in dict.fromkeys(sign_up.preferences.get("ranking") or ()) if w in known]
        if not ranking:
            without += 1
            continue
        requests.append(
            orientation.WorkshopRequest(
                sign_up.registration_id,
                sign_up.school_id or "",
                tuple(ranking[: orientation.MAX_RANKS]),
                sign_up.signed_up_at,
            )
        )
    return requests, without


def plan_orientation(inp: PlanInput, progress: Progress | None = None) -> Outcome:
    workshops = _workshops(inp)
    requests, without = _requests(workshops, inp.in_sign_up_order())
    known = {w.id for w in workshops}
    rates = orientation.no_show_rates(
        (r for r in inp.history if r.workshop_id in known), min_bookings=inp.settings.min_bookings
    )
    max_overbooking = inp.spec.get("max_overbooking")
    if max_overbooking is None:
        max_overbooking = inp.settings.max_overbooking
    keep = None
    if inp.previous:
        keep = {
            reg: programme["workshop"]["workshop_id"]
            for reg, programme in inp.previous.programmes.items()
            if programme.get("workshop")
        }
    allocation = orientation.allocate_workshops(
        workshops, requests, no_show_rates=rates, max_overbooking=max_overbooking, keep=keep
    )
    outcome = _orientation_outcome(allocation)
    outcome.metrics["without_valid_choice"] = without
    outcome.metrics["no_show_rates"] = {w: round(r, 3) for w, r in rates.items()}
    return outcome


def update_orientation(inp: PlanInput, cancelled: SignUp | None, at: datetime) -> Outcome:
    """The plan in force after a cancellation (`cancelled`) or a late sign-up (None).

    Before the cut-off a freed seat goes to the first in line and a late pupil gets a free seat
    if there is one; after it nothing moves: a freed seat stays empty, a late pupil waits.
    """
    previous = inp.previous
    if previous is None:
        raise NothingToPlan(f"{inp.activity.id} has no plan to update")
    if cancelled is None and inp.promotion_open(at):
        return plan_orientation(inp)
    workshops = _workshops(inp)
    people = inp.in_sign_up_order() + ([cancelled] if cancelled else [])
    requests, _ = _requests(workshops, people)
    present = {r.pupil_id for r in requests}
    seated = {
        reg: p["workshop"]["workshop_id"]
        for reg, p in previous.programmes.items()
        if p.get("workshop") and reg in present
    }
    allocation = orientation.restore_allocation(
        workshops, previous.details.get("capacities", {}), requests, seated
    )
    if cancelled is not None and cancelled.registration_id in present:
        allocation = orientation.promote_after_cancellation(
            allocation,
            cancelled.registration_id,
            now=at,
            cutoff=inp.cutoff,
        ).allocation
    outcome = _orientation_outcome(allocation)
    for key in ("without_valid_choice", "no_show_rates"):
        if key in previous.metrics:
            outcome.metrics[key] = previous.metrics[key]
    return outcome


def _orientation_outcome(allocation: orientation.WorkshopAllocation) -> Outcome:
    outcome = Outcome()
    for pupil_id, workshop_id in allocation.assignments.items():
        workshop = allocation.workshops[workshop_id]
        outcome.programmes[pupil_id] = {
            "workshop": {
                "workshop_id": workshop.id,
                "title": workshop.title,
                "location": workshop.location,
            }
        }
    # A waiting pupil is told their best place: the shortest wait, then their higher rank.
    best: dict[str, tuple[int, int, str]] = {}
    for workshop_id, line in allocation.waitlists.items():
        for position, pupil_id in enumerate(line, start=1):
            rank = allocation.requests[pupil_id].rank_of(workshop_id) or 0
            best[pupil_id] = min(
                best.get(pupil_id, (position, rank, workshop_id)), (position, rank, workshop_id)
            )
    for pupil_id, (position, _, workshop_id) in best.items():
        outcome.waitlist[pupil_id] = Waiting(
            position, workshop_id, allocation.workshops[workshop_id].title
        )
    metrics = allocation.metrics
    outcome.metrics = {
        "requested": metrics.requested,
        "seated": metrics.seated,
        "waitlisted": metrics.waitlisted,
        "by_rank": {str(rank): count for rank, count in metrics.by_rank.items()},
        "overbooked": {
            w: allocation.capacities[w] - workshop.capacity
            for w, workshop in allocation.workshops.items()
            if allocation.capacities[w] > workshop.capacity
        },
        "schools": {
            school: {"requested": share.requested, "seated": share.seated}
            for school, share in metrics.schools.items()
        },
    }
    outcome.details = {
        "capacities": dict(allocation.capacities),
        "room_lists": _workshop_lists(allocation),
    }
    return outcome


def _workshop_lists(allocation: orientation.WorkshopAllocation) -> list[dict[str, Any]]:
    """Per workshop, who comes (sorted by school): the list the mbo location ticks off."""
    seated: dict[str, list[str]] = {w: [] for w in allocation.workshops}
    for pupil_id, workshop_id in allocation.assignments.items():
        seated[workshop_id].append(pupil_id)
    return [
        room_list(
            workshop_id,
            workshop.title,
            workshop.location,
            1,
            allocation.capacities[workshop_id],
            sorted(seated[workshop_id], key=lambda p: (allocation.requests[p].school_id, p)),
        )
        for workshop_id, workshop in allocation.workshops.items()
    ]


# --- seats: bus tours, and every other kind with a capacity -------------------------------------


def plan_bus_tour(inp: PlanInput, progress: Progress | None = None) -> Outcome:
    """Seats first come, first served (keeping every seat of the plan in force) + timetable."""
    return _bus_outcome(inp, fill_free_seats=True)


def update_bus_tour(inp: PlanInput, cancelled: SignUp | None, at: datetime) -> Outcome:
    """After a cancellation or late sign-up: free seats go to the line until the cut-off."""
    return _bus_outcome(inp, fill_free_seats=inp.promotion_open(at))


def plan_seats(inp: PlanInput, progress: Progress | None = None) -> Outcome:
    """A kind without a planner of its own: `capacity` seats, first come, first served."""
    return _seats_outcome(inp, fill_free_seats=True)


def update_seats(inp: PlanInput, cancelled: SignUp | None, at: datetime) -> Outcome:
    """Every sign-up and cancellation: a seat or a place in line; until the cut-off a freed
    seat goes to the first in line, after it the seat stays empty."""
    return _seats_outcome(inp, fill_free_seats=inp.promotion_open(at))


def _bus_outcome(inp: PlanInput, fill_free_seats: bool) -> Outcome:
    buses = [seats.SeatBlock(b["bus_id"], b["seats"]) for b in inp.spec.get("buses", [])]
    if not buses:
        raise CannotPlan(
            f"bus tour {inp.activity.id} has no buses: publish it with buses (bus_id, seats)"
        )
    held = {}
    if inp.previous:
        held = {
            reg: seats.SeatRef(p["seat"]["bus_id"], p["seat"]["seat"])
            for reg, p in inp.previous.programmes.items()
            if p.get("seat")
        }
    allocation = _allocation(inp, buses, held, fill_free_seats)
    times = timetable(inp.activity)
    outcome = _seat_outcome(
        allocation,
        lambda seat: {
            "seat": {"bus_id": seat.block_id, "seat": seat.seat_no},
            "itinerary": times.rows,
        },
        [room_list(b.id, f"Bus {b.id}", "", 1, b.seats, on) for b, on in _seated(allocation)],
    )
    outcome.metrics.update(
        stops=len(inp.spec.get("stops", [])),
        travel_minutes=times.travel_minutes,
        itinerary_problem=times.problem,
    )
    outcome.details.update(itinerary=times.rows, itinerary_problem=times.problem)
    return outcome


def _seats_outcome(inp: PlanInput, fill_free_seats: bool) -> Outcome:
    activity = inp.activity
    if activity.capacity is None:
        raise NothingToPlan(f"activity {activity.id} has no capacity: every sign-up has a place")
    hall = seats.SeatBlock(activity.id, activity.capacity)
    held = {}
    if inp.previous:  # seats are alike: number who holds one in sign-up order
        holders = [s.registration_id for s in inp.in_sign_up_order()]
        holders = [r for r in holders if r in inp.previous.programmes]
        held = {r: seats.SeatRef(hall.id, n) for n, r in enumerate(holders, start=1)}
    allocation = _allocation(inp, [hall], held, fill_free_seats)
    lists = [
        room_list(hall.id, activity.title, "", 1, hall.seats, on) for _, on in _seated(allocation)
    ]
    return _seat_outcome(allocation, lambda seat: {}, lists)  # the place is the programme


def _allocation(
    inp: PlanInput,
    blocks: list[seats.SeatBlock],
    held: Mapping[str, seats.SeatRef],
    fill_free_seats: bool,
) -> seats.SeatAllocation:
    """The seats of the plan in force, brought up to date with the sign-ups as they are."""
    order = inp.in_sign_up_order()
    requests = [seats.SeatRequest(s.registration_id, s.signed_up_at) for s in order]
    waitlist: list[str] = []
    if inp.previous:
        line = inp.previous.waitlist
        waitlist = sorted(line, key=lambda r: line[r].position)
    return seats.reconcile_seats(blocks, requests, held, waitlist, fill_free_seats=fill_free_seats)


def _seated(
    allocation: seats.SeatAllocation,
) -> list[tuple[seats.SeatBlock, list[str]]]:
    """Per block, who sits there in seat order."""
    on_block: dict[str, list[str]] = {block.id: [] for block in allocation.blocks}
    for person, seat in sorted(allocation.seats.items(), key=lambda kv: kv[1]):
        on_block[seat.block_id].append(person)
    return [(block, on_block[block.id]) for block in allocation.blocks]


def _seat_outcome(
    allocation: seats.SeatAllocation,
    programme: Callable[[seats.SeatRef], dict[str, Any]],
    lists: list[dict[str, Any]],
) -> Outcome:
    outcome = Outcome()
    for person, seat in allocation.seats.items():
        outcome.programmes[person] = programme(seat)
    for position, person in enumerate(allocation.waitlist, start=1):
        outcome.waitlist[person] = Waiting(position)
    outcome.metrics = {
        "seats": sum(block.seats for block in allocation.blocks),
        "seated": len(allocation.seats),
        "waitlisted": len(allocation.waitlist),
    }
    outcome.details = {"room_lists": lists}
    return outcome


@dataclass(frozen=True)
class Timetable:
    rows: list[dict[str, Any]]  # departure, visits, return; times ISO 8601 (Amsterdam)
    travel_minutes: int | None = None
    problem: str | None = None  # why there is no timetable, for the operator to fix


def timetable(activity: Activity) -> Timetable:
    """The bus tour's timetable, or why there is none.

    The bus leaves the departure point when the activity starts and must be back when it ends
    (or by the departure point's own `closes`). Without stops there is nothing to time; a tour
    that cannot be timed still gets its seats, and the reason goes to the operator.
    """
    spec = activity.spec or {}
    stops = spec.get("stops") or []
    if not stops:
        return Timetable([])
    if not spec.get("departure"):
        return Timetable(
            [], problem="no departure point: publish the tour with a departure (stop_id, name)"
        )
    departure = local(activity.starts_at)
    depot = _stop(spec["departure"])
    if depot.closes is None and activity.ends_at is not None:
        depot = replace(depot, closes=local(activity.ends_at).time())
    matrix = {
        (origin, destination): minutes
        for origin, row in (spec.get("travel_minutes") or {}).items()
        for destination, minutes in row.items()
    }
    try:
        tour = itinerary.plan_itinerary(depot, departure, [_stop(s) for s in stops], matrix)
    except itinerary.ItineraryError as exc:
        return Timetable([], problem=str(exc))
    rows: list[dict[str, Any]] = [
        {"stop_id": depot.id, "name": depot.name, "leave_at": departure.isoformat()}
    ]
    rows += [
        {
            "stop_id": visit.stop_id,
            "name": visit.name,
            "arrive_at": visit.arrive.isoformat(),
            "visit_starts_at": visit.start.isoformat(),
            "leave_at": visit.leave.isoformat(),
        }
        for visit in tour.visits
    ]
    rows.append({"stop_id": depot.id, "name": depot.name, "arrive_at": tour.ends_at.isoformat()})
    return Timetable(rows, tour.total_travel_minutes)


def _stop(spec: Mapping[str, Any]) -> itinerary.Stop:
    return itinerary.Stop(
        spec["stop_id"],
        spec["name"],
        spec.get("visit_minutes") or 0,
        _clock(spec.get("opens")),
        _clock(spec.get("closes")),
        spec.get("lat"),
        spec.get("lon"),
    )


def _clock(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


Planner = Callable[[PlanInput, Progress | None], Outcome]
Updater = Callable[[PlanInput, SignUp | None, datetime], Outcome]

# Kinds with a planner of their own, planned in full when sign-up closes.
PLANNERS: dict[str, Planner] = {
    "infoday": plan_infoday,
    "orientation_day": plan_orientation,
    "bus_tour": plan_bus_tour,
}
UPDATERS: dict[str, Updater] = {
    "orientation_day": update_orientation,
    "bus_tour": update_bus_tour,
}


def has_seats(activity: Activity) -> bool:
    """A kind without a planner of its own that has a capacity: seats from the first sign-up."""
    return activity.kind not in PLANNERS and activity.capacity is not None


def planner_for(activity: Activity) -> Planner | None:
    return plan_seats if has_seats(activity) else PLANNERS.get(activity.kind)


def updater_for(activity: Activity) -> Updater | None:
    return update_seats if has_seats(activity) else UPDATERS.get(activity.kind)
