"""From an activity and its sign-ups to a plan, per kind of activity. No database, no nameko.

A planner reads a `PlanInput` (the activity as registration published it, the active sign-ups,
the plan in force if any, the settings and, for orientation days, the attendance history) and
returns an `Outcome`: per registration id a programme or a place on a waiting list, metrics for
operators (counts only), and details kept with the plan (room lists, a bus timetable).

Two ways in:
- `PLANNERS[kind]`: a full run, at the close of sign-up or when an operator asks. With a plan in
  force it re-plans with as little change as possible.
- `UPDATERS[kind]`: the plan in force brought up to date when someone cancels (or signs up late),
  without a full run: the first in line takes a freed place (orientation days and bus tours).
  Before the cut-off only; after it a freed place stays empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

from lob_common.timeutil import local
from scheduling.adapters.tables import ActivityCopy, SignUp
from scheduling.domain import bus_tour, infoday, orientation

Progress = Callable[[str, float], None]
log = logging.getLogger(__name__)


class NothingToPlan(LookupError):
    """The activity is unknown here, or of a kind this service does not plan."""


class CannotPlan(ValueError):
    """The activity cannot be planned as published; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    """Planning settings from the service's config (see config.yml)."""

    max_overbooking: float = orientation.DEFAULT_MAX_OVERBOOKING
    min_bookings: int = orientation.DEFAULT_MIN_BOOKINGS
    promotion_cutoff: timedelta = timedelta(hours=48)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        return cls(
            max_overbooking=float(config.get("ORIENTATION_MAX_OVERBOOKING", 0.15)),
            min_bookings=int(config.get("ORIENTATION_MIN_BOOKINGS", 20)),
            promotion_cutoff=timedelta(hours=float(config.get("PROMOTION_CUTOFF_HOURS", 48))),
        )


@dataclass(frozen=True)
class Waiting:
    position: int
    item_id: str | None = None
    item_title: str = ""


@dataclass(frozen=True)
class Previous:
    """The plan in force, as stored."""

    version: int
    programmes: dict[str, dict[str, Any]]
    waitlist: dict[str, Waiting]
    details: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanInput:
    activity: ActivityCopy
    sign_ups: list[SignUp]  # active ones
    previous: Previous | None = None
    settings: Settings = field(default_factory=Settings)
    history: list[orientation.AttendanceRecord] = field(default_factory=list)

    @property
    def spec(self) -> dict[str, Any]:
        return self.activity.spec or {}

    def in_sign_up_order(self) -> list[SignUp]:
        return sorted(self.sign_ups, key=lambda s: (s.signed_up_at, s.registration_id))

    @property
    def cutoff(self) -> datetime:
        """Until this moment a freed place goes to the first in line; after it, it stays empty."""
        return self.activity.starts_at - self.settings.promotion_cutoff

    def promotion_open(self, at: datetime) -> bool:
        return at < self.cutoff


@dataclass
class Outcome:
    """A planner's result, per registration id."""

    programmes: dict[str, dict[str, Any]] = field(default_factory=dict)
    waitlist: dict[str, Waiting] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


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
    plan = infoday.assign_programmes(instance, previous=kept, progress=progress)
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
    outcome.details["room_lists"] = infoday.room_lists(instance, plan)
    return outcome


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
    lists = []
    for workshop_id, workshop in allocation.workshops.items():
        pupils = sorted(seated[workshop_id], key=lambda p: (allocation.requests[p].school_id, p))
        lists.append(
            {
                "session_id": workshop_id,
                "title": workshop.title,
                "provider": workshop.location,
                "round": 1,
                "capacity": allocation.capacities[workshop_id],
                "count": len(pupils),
                "pupils": pupils,
            }
        )
    return lists


# --- bus tours ---------------------------------------------------------------------------------


def plan_bus_tour(inp: PlanInput, progress: Progress | None = None) -> Outcome:
    """Seats first come, first served (keeping every seat of the plan in force) + timetable."""
    return _bus_outcome(inp, fill_free_seats=True)


def update_bus_tour(inp: PlanInput, cancelled: SignUp | None, at: datetime) -> Outcome:
    """After a cancellation or late sign-up: free seats go to the line until the cut-off."""
    return _bus_outcome(inp, fill_free_seats=inp.promotion_open(at))


def _bus_outcome(inp: PlanInput, fill_free_seats: bool) -> Outcome:
    buses = [bus_tour.Bus(b["bus_id"], b["seats"]) for b in inp.spec.get("buses", [])]
    if not buses:
        raise CannotPlan(
            f"bus tour {inp.activity.id} has no buses: publish it with buses (bus_id, seats)"
        )
    signups = [
        bus_tour.TourSignup(s.registration_id, s.signed_up_at) for s in inp.in_sign_up_order()
    ]
    seats: dict[str, bus_tour.SeatRef] = {}
    waitlist: list[str] = []
    if inp.previous:
        seats = {
            reg: bus_tour.SeatRef(p["seat"]["bus_id"], p["seat"]["seat"])
            for reg, p in inp.previous.programmes.items()
            if p.get("seat")
        }
        waitlist = sorted(inp.previous.waitlist, key=lambda r: inp.previous.waitlist[r].position)
    allocation = bus_tour.reconcile_seats(
        buses, signups, seats, waitlist, fill_free_seats=fill_free_seats
    )
    times = timetable(inp.activity)
    outcome = Outcome()
    for person, seat in allocation.seats.items():
        outcome.programmes[person] = {
            "seat": {"bus_id": seat.bus_id, "seat": seat.seat_no},
            "itinerary": times.rows,
        }
    for position, person in enumerate(allocation.waitlist, start=1):
        outcome.waitlist[person] = Waiting(position)
    outcome.metrics = {
        "seats": sum(b.seats for b in buses),
        "seated": len(allocation.seats),
        "waitlisted": len(allocation.waitlist),
        "stops": len(inp.spec.get("stops", [])),
        "travel_minutes": times.travel_minutes,
        "itinerary_problem": times.problem,
    }
    outcome.details = {
        "itinerary": times.rows,
        "itinerary_problem": times.problem,
        "room_lists": _seat_lists(buses, allocation),
    }
    return outcome


def _seat_lists(
    buses: list[bus_tour.Bus], allocation: bus_tour.SeatAllocation
) -> list[dict[str, Any]]:
    """Per bus, who sits there in seat order: the tour's room list."""
    on_bus: dict[str, list[str]] = {bus.id: [] for bus in buses}
    for person, seat in sorted(allocation.seats.items(), key=lambda kv: kv[1]):
        on_bus[seat.bus_id].append(person)
    return [
        {
            "session_id": bus.id,
            "title": f"Bus {bus.id}",
            "provider": "",
            "round": 1,
            "capacity": bus.seats,
            "count": len(on_bus[bus.id]),
            "pupils": on_bus[bus.id],
        }
        for bus in buses
    ]


@dataclass(frozen=True)
class Timetable:
    rows: list[dict[str, Any]]  # departure, visits, return; times ISO 8601 (Amsterdam)
    travel_minutes: int | None = None
    problem: str | None = None  # why there is no timetable, for the operator to fix


def timetable(activity: ActivityCopy) -> Timetable:
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
        itinerary = bus_tour.plan_itinerary(depot, departure, [_stop(s) for s in stops], matrix)
    except bus_tour.BusTourError as exc:
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
        for visit in itinerary.visits
    ]
    rows.append(
        {"stop_id": depot.id, "name": depot.name, "arrive_at": itinerary.ends_at.isoformat()}
    )
    return Timetable(rows, itinerary.total_travel_minutes)


def _stop(spec: dict[str, Any]) -> bus_tour.Stop:
    return bus_tour.Stop(
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


PLANNERS: dict[str, Callable[[PlanInput, Progress | None], Outcome]] = {
    "infoday": plan_infoday,
    "orientation_day": plan_orientation,
    "bus_tour": plan_bus_tour,
}
UPDATERS: dict[str, Callable[[PlanInput, SignUp | None, datetime], Outcome]] = {
    "orientation_day": update_orientation,
    "bus_tour": update_bus_tour,
}
