"""Running a schedule: sign-ups in, a stored plan version and events out.

The solve runs outside any transaction (it may take seconds; sign-ups keep arriving and are
picked up by the next run). The result is stored as a new plan version in one transaction with
its events: `programme_assigned` for people new to the plan, `programme_changed` only for those
whose programme changed, `waitlisted` for those without a place, and one `schedule_published`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from lob_common import metrics
from lob_common.db import DatabaseHandle, UnitOfWork, utcnow
from scheduling.adapters.tables import ActivityCopy, Assignment, Plan, SignUp
from scheduling.domain import infoday

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


class NothingToPlan(LookupError):
    """The activity is unknown here, or of a kind this service does not plan."""


@dataclass
class Outcome:
    """A planner's result, per registration id."""

    programmes: dict[str, dict[str, Any]] = field(default_factory=dict)
    waitlist: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Previous:
    version: int
    programmes: dict[str, dict[str, Any]]
    waitlist: dict[str, tuple[int, str | None]]


# --- info day ----------------------------------------------------------------------------------


def infoday_instance(activity: ActivityCopy, sign_ups: list[SignUp]) -> infoday.InfoDayInstance:
    rounds = max((r["round"] for r in activity.spec.get("rounds", [])), default=0) or max(
        (max(s["rounds"]) for s in activity.spec.get("sessions", []) if s["rounds"]), default=3
    )
    sessions = tuple(
        infoday.Session(
            id=s["session_id"],
            capacity=s["capacity"],
            rounds=tuple(s["rounds"]),
            title=s.get("title", ""),
            provider=s.get("provider", ""),
        )
        for s in activity.spec.get("sessions", [])
    )
    pupils = tuple(
        infoday.PupilRequest(
            id=s.registration_id,
            school=s.school_id or "",
            choices=tuple(s.preferences.get("choices") or ()),
            backup=s.preferences.get("backup"),
        )
        for s in sorted(sign_ups, key=lambda s: (s.signed_up_at, s.registration_id))
    )
    return infoday.InfoDayInstance(
        rounds=rounds, sessions=sessions, pupils=pupils, name=activity.id
    )


def plan_infoday(
    activity: ActivityCopy,
    sign_ups: list[SignUp],
    previous: Previous | None,
    progress: Progress | None,
) -> Outcome:
    instance = infoday_instance(activity, sign_ups)
    kept = None
    if previous:
        kept = {
            reg: tuple(item["session_id"] for item in programme["sessions"])
            for reg, programme in previous.programmes.items()
        }
    plan = infoday.assign_programmes(instance, previous=kept, progress=progress)
    by_id = {s["session_id"]: s for s in activity.spec.get("sessions", [])}
    times = {r["round"]: r for r in activity.spec.get("rounds", [])}
    outcome = Outcome(
        metrics={**_as_dict(plan.metrics), "upper_bound": plan.upper_bound, "moved": plan.moved}
    )
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


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return dict(vars(value))


PLANNERS: dict[str, Callable[..., Outcome]] = {"infoday": plan_infoday}


# --- the use case ------------------------------------------------------------------------------


def run_schedule(
    db: DatabaseHandle,
    activity_id: str,
    progress: Progress | None = None,
    solve: Callable[..., Outcome] | None = None,
) -> dict[str, Any]:
    """Plan an activity now; returns a summary (version, counts, metrics).

    `solve` lets the service run the planner in a worker thread (eventlet's tpool).
    """
    activity, sign_ups, previous = _load(db, activity_id)
    planner = PLANNERS.get(activity.kind)
    if planner is None:
        raise NothingToPlan(f"activities of kind {activity.kind} are not planned")
    started = time.perf_counter()
    outcome = (solve or _call)(planner, activity, sign_ups, previous, progress)
    seconds = time.perf_counter() - started
    metrics.SCHEDULE_RUNS.labels(activity.kind).inc()
    metrics.SCHEDULE_SECONDS.labels(activity.kind).observe(seconds)
    with db() as uow:
        summary = _store(uow, activity, sign_ups, previous, outcome)
        uow.commit()
    summary["seconds"] = round(seconds, 2)
    log.info(
        "planned %s version %d: %d assigned, %d changed, %d waitlisted in %.1fs",
        activity_id,
        summary["version"],
        summary["assigned"],
        summary["changed"],
        summary["waitlisted"],
        seconds,
    )
    return summary


def _call(planner: Callable[..., Outcome], *args: Any) -> Outcome:
    return planner(*args)


def _load(
    db: DatabaseHandle, activity_id: str
) -> tuple[ActivityCopy, list[SignUp], Previous | None]:
    with db() as uow:
        activity = uow.session.get(ActivityCopy, activity_id)
        if activity is None:
            raise NothingToPlan(f"activity {activity_id} is unknown to scheduling")
        sign_ups = list(
            uow.session.scalars(select(SignUp).filter_by(activity_id=activity_id, status="active"))
        )
        return activity, sign_ups, latest_plan(uow, activity_id)


def latest_plan(uow: UnitOfWork, activity_id: str) -> Previous | None:
    plan = uow.session.scalar(
        select(Plan).filter_by(activity_id=activity_id).order_by(Plan.version.desc()).limit(1)
    )
    if plan is None:
        return None
    rows = uow.session.scalars(select(Assignment).filter_by(plan_id=plan.id)).all()
    return Previous(
        version=plan.version,
        programmes={a.registration_id: a.programme for a in rows if a.status == "assigned"},
        waitlist={
            a.registration_id: (a.waitlist_position, a.programme.get("item_id"))
            for a in rows
            if a.status == "waitlisted"
        },
    )


def _store(
    uow: UnitOfWork,
    activity: ActivityCopy,
    sign_ups: list[SignUp],
    previous: Previous | None,
    outcome: Outcome,
) -> dict[str, Any]:
    version = (
        uow.session.scalar(select(func.max(Plan.version)).filter_by(activity_id=activity.id)) or 0
    ) + 1
    plan = Plan(
        activity_id=activity.id,
        version=version,
        kind=activity.kind,
        created_at=utcnow(),
        metrics=_jsonable(outcome.metrics),
        details=_jsonable(outcome.details),
    )
    uow.session.add(plan)
    uow.session.flush()
    people = {s.registration_id: s for s in sign_ups}
    counts = {"assigned": 0, "changed": 0, "waitlisted": 0}
    for registration_id, sign_up in people.items():
        programme = outcome.programmes.get(registration_id)
        waiting = outcome.waitlist.get(registration_id)
        _add_assignment(uow, plan, sign_up, programme, waiting)
        event = _event_for(activity.id, version, sign_up, programme, waiting, previous)
        if event:
            uow.emit(*event)
            counts[
                {
                    "programme_assigned": "assigned",
                    "programme_changed": "changed",
                    "waitlisted": "waitlisted",
                }[event[0]]
            ] += 1
    uow.emit(
        "schedule_published",
        {
            "activity_id": activity.id,
            "plan_version": version,
            "assigned": len(outcome.programmes),
            "changed": counts["changed"],
            "waitlisted": len(outcome.waitlist),
            "metrics": _jsonable(outcome.metrics),
        },
    )
    return {
        "activity_id": activity.id,
        "version": version,
        "people": len(people),
        "assigned": len(outcome.programmes),
        "changed": counts["changed"],
        "newly_assigned": counts["assigned"],
        "waitlisted": len(outcome.waitlist),
        "metrics": _jsonable(outcome.metrics),
    }


def _add_assignment(
    uow: UnitOfWork,
    plan: Plan,
    sign_up: SignUp,
    programme: dict[str, Any] | None,
    waiting: tuple[int, str | None] | None,
) -> None:
    uow.session.add(
        Assignment(
            plan_id=plan.id,
            registration_id=sign_up.registration_id,
            person_id=sign_up.person_id,
            school_id=sign_up.school_id,
            status="assigned" if programme is not None else "waitlisted",
            programme=_jsonable(programme or {"item_id": waiting[1] if waiting else None}),
            waitlist_position=waiting[0] if waiting else None,
        )
    )


def _event_for(
    activity_id: str,
    version: int,
    sign_up: SignUp,
    programme: dict[str, Any] | None,
    waiting: tuple[int, str | None] | None,
    previous: Previous | None,
) -> tuple[str, dict[str, Any]] | None:
    ids = {
        "activity_id": activity_id,
        "registration_id": sign_up.registration_id,
        "person_id": sign_up.person_id,
    }
    if programme is not None:
        before = previous.programmes.get(sign_up.registration_id) if previous else None
        payload = {**ids, "plan_version": version, **_jsonable(programme)}
        if before is None:
            return "programme_assigned", payload
        if _jsonable(before) == _jsonable(programme):
            return None
        return "programme_changed", {**payload, "previous_plan_version": previous.version}
    if waiting is None:
        return None
    if previous and previous.waitlist.get(sign_up.registration_id) == waiting:
        return None
    return "waitlisted", {**ids, "position": waiting[0], "item_id": waiting[1]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# --- reading plans -----------------------------------------------------------------------------


def programmes(
    db: DatabaseHandle, activity_id: str, school_id: str | None = None
) -> dict[str, Any] | None:
    """The plan in force for an activity, optionally only one school's participants."""
    with db() as uow:
        plan = uow.session.scalar(
            select(Plan).filter_by(activity_id=activity_id).order_by(Plan.version.desc()).limit(1)
        )
        if plan is None:
            return None
        query = select(Assignment).filter_by(plan_id=plan.id)
        if school_id is not None:
            query = query.filter_by(school_id=school_id)
        rows = uow.session.scalars(query.order_by(Assignment.registration_id)).all()
        return {
            "activity_id": activity_id,
            "plan_version": plan.version,
            "created_at": plan.created_at.isoformat(),
            "programmes": [
                {
                    "registration_id": a.registration_id,
                    "school_id": a.school_id,
                    "status": a.status,
                    "waitlist_position": a.waitlist_position,
                    **a.programme,
                }
                for a in rows
            ],
        }


def room_lists(db: DatabaseHandle, activity_id: str) -> list[dict[str, Any]] | None:
    with db() as uow:
        plan = uow.session.scalar(
            select(Plan).filter_by(activity_id=activity_id).order_by(Plan.version.desc()).limit(1)
        )
        return None if plan is None else plan.details.get("room_lists", [])


def due_activities(db: DatabaseHandle, now: datetime) -> list[str]:
    """Activities whose sign-up has closed and that have no plan yet (planned automatically)."""
    with db() as uow:
        planned = select(Plan.activity_id)
        return list(
            uow.session.scalars(
                select(ActivityCopy.id)
                .where(ActivityCopy.kind.in_(list(PLANNERS)))
                .where(ActivityCopy.sign_up_closes_at.is_not(None))
                .where(ActivityCopy.sign_up_closes_at <= now)
                .where(ActivityCopy.id.not_in(planned))
            )
        )
