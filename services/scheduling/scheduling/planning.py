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
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from lob_common import metrics
from lob_common.db import DatabaseHandle, UnitOfWork, json_ready, utcnow
from scheduling.adapters.tables import ActivityCopy, Assignment, Attendance, Plan, SignUp
from scheduling.domain.orientation import AttendanceRecord
from scheduling.planners import (
    PLANNERS,
    UPDATERS,
    CannotPlan,
    NothingToPlan,
    Outcome,
    PlanInput,
    Previous,
    Progress,
    Settings,
    Waiting,
)

log = logging.getLogger(__name__)

__all__ = [
    "CannotPlan",
    "NothingToPlan",
    "PlanSuperseded",
    "Settings",
    "run_schedule",
    "update_plan_in_force",
]


class PlanSuperseded(RuntimeError):
    """The plan in force changed while this one was being computed; nothing was stored."""


# --- the use cases -----------------------------------------------------------------------------


def run_schedule(
    db: DatabaseHandle,
    activity_id: str,
    progress: Progress | None = None,
    solve: Callable[..., Outcome] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Plan an activity now; returns a summary (version, counts, metrics).

    `solve` lets the service run the planner in a worker thread (eventlet's tpool).
    """
    with db() as uow:
        inp = load_input(uow, activity_id, settings or Settings())
    planner = PLANNERS.get(inp.activity.kind)
    if planner is None:
        raise NothingToPlan(f"activities of kind {inp.activity.kind} are not planned")
    started = time.perf_counter()
    outcome = (solve or _call)(planner, inp, progress)
    seconds = time.perf_counter() - started
    metrics.SCHEDULE_RUNS.labels(inp.activity.kind).inc()
    metrics.SCHEDULE_SECONDS.labels(inp.activity.kind).observe(seconds)
    with db() as uow:
        in_force = _plan_in_force(uow, activity_id)
        version_now = in_force.version if in_force else 0
        if version_now != (inp.previous.version if inp.previous else 0):
            raise PlanSuperseded(
                f"the plan of {activity_id} changed while this one was computed "
                f"(now version {version_now}); run it again"
            )
        summary = _store(uow, inp, outcome)
        uow.commit()
    summary["seconds"] = round(seconds, 2)
    _log_summary(summary, seconds)
    return summary


def update_plan_in_force(
    uow: UnitOfWork,
    activity_id: str,
    at: datetime,
    settings: Settings,
    cancelled_registration: str | None = None,
) -> dict[str, Any] | None:
    """Bring a published plan up to date after a cancellation or a late sign-up.

    Runs inside the caller's unit of work, so the changed plan and its events commit with the
    incoming event's claim. Only kinds with an updater (orientation days, bus tours) and only
    once a plan exists; otherwise nothing happens and None is returned.
    """
    kind = uow.session.scalar(select(ActivityCopy.kind).filter_by(id=activity_id))
    if kind not in UPDATERS or _plan_in_force(uow, activity_id) is None:
        return None
    # One update of an activity's plan at a time (PostgreSQL: row lock; SQLite: one writer).
    activity = uow.session.scalar(select(ActivityCopy).filter_by(id=activity_id).with_for_update())
    previous = latest_plan(uow, activity_id)
    cancelled = None
    if cancelled_registration:
        if (
            cancelled_registration not in previous.programmes
            and cancelled_registration not in previous.waitlist
        ):
            return None  # not in the plan: nothing is freed
        cancelled = uow.session.get(SignUp, cancelled_registration)
    inp = PlanInput(
        activity, _active(uow, activity_id), previous, settings, _history(uow, activity)
    )
    outcome = UPDATERS[activity.kind](inp, cancelled, at)
    summary = _store(uow, inp, outcome)
    _log_summary(summary, 0.0)
    return summary


def _call(planner: Callable[..., Outcome], *args: Any) -> Outcome:
    return planner(*args)


def _log_summary(summary: dict[str, Any], seconds: float) -> None:
    log.info(
        "planned %s version %d: %d assigned, %d changed, %d waitlisted in %.1fs",
        summary["activity_id"],
        summary["version"],
        summary["assigned"],
        summary["changed"],
        summary["waitlisted"],
        seconds,
    )


def load_input(uow: UnitOfWork, activity_id: str, settings: Settings) -> PlanInput:
    activity = uow.session.get(ActivityCopy, activity_id)
    if activity is None:
        raise NothingToPlan(f"activity {activity_id} is unknown to scheduling")
    return PlanInput(
        activity,
        _active(uow, activity_id),
        latest_plan(uow, activity_id),
        settings,
        _history(uow, activity),
    )


def _active(uow: UnitOfWork, activity_id: str) -> list[SignUp]:
    return list(
        uow.session.scalars(select(SignUp).filter_by(activity_id=activity_id, status="active"))
    )


def _history(uow: UnitOfWork, activity: ActivityCopy) -> list[AttendanceRecord]:
    """Orientation days: bookings and attendance per workshop and school at earlier dates.

    A booking counts only where attendance was recorded, so a date nobody registered attendance
    for does not look like a day on which everybody stayed away.
    """
    if activity.kind != "orientation_day":
        return []
    earlier = uow.session.scalars(
        select(ActivityCopy.id)
        .where(ActivityCopy.kind == "orientation_day")
        .where(ActivityCopy.starts_at < activity.starts_at)
    ).all()
    booked: dict[tuple[str, str], list[int]] = {}
    for activity_id in earlier:
        plan_id = uow.session.scalar(
            select(Plan.id).filter_by(activity_id=activity_id).order_by(Plan.version.desc())
        )
        if plan_id is None:
            continue
        rows = uow.session.execute(
            select(Assignment.programme, Assignment.school_id, Attendance.attended)
            .join(Attendance, Attendance.registration_id == Assignment.registration_id)
            .where(Assignment.plan_id == plan_id, Assignment.status == "assigned")
        ).all()
        for programme, school_id, attended in rows:
            workshop = (programme.get("workshop") or {}).get("workshop_id")
            if workshop:
                counts = booked.setdefault((workshop, school_id or ""), [0, 0])
                counts[0] += 1
                counts[1] += int(attended)
    return [AttendanceRecord(w, school, b, a) for (w, school), (b, a) in sorted(booked.items())]


def latest_plan(uow: UnitOfWork, activity_id: str) -> Previous | None:
    plan = _plan_in_force(uow, activity_id)
    if plan is None:
        return None
    rows = uow.session.scalars(select(Assignment).filter_by(plan_id=plan.id)).all()
    return Previous(
        version=plan.version,
        programmes={a.registration_id: a.programme for a in rows if a.status == "assigned"},
        waitlist={
            a.registration_id: Waiting(
                a.waitlist_position, a.programme.get("item_id"), a.programme.get("item_title", "")
            )
            for a in rows
            if a.status == "waitlisted" and a.waitlist_position
        },
        details=plan.details,
        metrics=plan.metrics,
    )


def _plan_in_force(uow: UnitOfWork, activity_id: str) -> Plan | None:
    return uow.session.scalar(
        select(Plan).filter_by(activity_id=activity_id).order_by(Plan.version.desc()).limit(1)
    )


def _store(uow: UnitOfWork, inp: PlanInput, outcome: Outcome) -> dict[str, Any]:
    activity, previous = inp.activity, inp.previous
    version = (
        uow.session.scalar(select(func.max(Plan.version)).filter_by(activity_id=activity.id)) or 0
    ) + 1
    plan = Plan(
        activity_id=activity.id,
        version=version,
        kind=activity.kind,
        created_at=utcnow(),
        metrics=json_ready(outcome.metrics),
        details=json_ready(outcome.details),
    )
    uow.session.add(plan)
    uow.session.flush()
    counts = {"programme_assigned": 0, "programme_changed": 0, "waitlisted": 0}
    for sign_up in inp.sign_ups:
        programme = outcome.programmes.get(sign_up.registration_id)
        waiting = outcome.waitlist.get(sign_up.registration_id)
        uow.session.add(_assignment(plan, sign_up, programme, waiting))
        event = _event_for(activity.id, version, sign_up, programme, waiting, previous)
        if event:
            uow.emit(*event)
            counts[event[0]] += 1
    uow.emit(
        "schedule_published",
        {
            "activity_id": activity.id,
            "plan_version": version,
            "assigned": len(outcome.programmes),
            "changed": counts["programme_changed"],
            "waitlisted": len(outcome.waitlist),
            "metrics": json_ready(outcome.metrics),
        },
    )
    return {
        "activity_id": activity.id,
        "version": version,
        "people": len(inp.sign_ups),
        "assigned": len(outcome.programmes),
        "changed": counts["programme_changed"],
        "newly_assigned": counts["programme_assigned"],
        "waitlisted": len(outcome.waitlist),
        "newly_waitlisted": counts["waitlisted"],
        "metrics": json_ready(outcome.metrics),
    }


def _assignment(
    plan: Plan, sign_up: SignUp, programme: dict[str, Any] | None, waiting: Waiting | None
) -> Assignment:
    if programme is not None:
        status, content = "assigned", programme
    elif waiting is not None:
        status = "waitlisted"
        content = {"item_id": waiting.item_id, "item_title": waiting.item_title}
    else:
        status, content = "unplaced", {}  # no choice that can be given; counted in the metrics
    return Assignment(
        plan_id=plan.id,
        registration_id=sign_up.registration_id,
        person_id=sign_up.person_id,
        school_id=sign_up.school_id,
        status=status,
        programme=json_ready(content),
        waitlist_position=waiting.position if waiting and programme is None else None,
    )


def _event_for(
    activity_id: str,
    version: int,
    sign_up: SignUp,
    programme: dict[str, Any] | None,
    waiting: Waiting | None,
    previous: Previous | None,
) -> tuple[str, dict[str, Any]] | None:
    """Who hears what: new programmes, changed ones, and new places on a waiting list.

    Moving up a waiting list is not announced (one message per step would be noise); the
    position is in the plan for anyone who asks, and the seat itself is announced.
    """
    registration_id = sign_up.registration_id
    ids = {
        "activity_id": activity_id,
        "registration_id": registration_id,
        "person_id": sign_up.person_id,
    }
    if programme is not None:
        before = previous.programmes.get(registration_id) if previous else None
        payload = {**ids, "plan_version": version, **json_ready(programme)}
        if before is None:
            waited = previous is not None and registration_id in previous.waitlist
            return "programme_assigned", {**payload, "from_waitlist": waited}
        if json_ready(before) == json_ready(programme):
            return None
        return "programme_changed", {**payload, "previous_plan_version": previous.version}
    if waiting is None or (previous and registration_id in previous.waitlist):
        return None
    return "waitlisted", {
        **ids,
        "position": waiting.position,
        "item_id": waiting.item_id,
        "item_title": waiting.item_title,
    }


# --- reading plans -----------------------------------------------------------------------------


def programmes(
    db: DatabaseHandle, activity_id: str, school_id: str | None = None
) -> dict[str, Any] | None:
    """The plan in force for an activity, optionally only one school's participants."""
    with db() as uow:
        plan = _plan_in_force(uow, activity_id)
        if plan is None:
            return None
        query = select(Assignment).filter_by(plan_id=plan.id)
        if school_id is not None:
            query = query.filter_by(school_id=school_id)
        rows = uow.session.scalars(query.order_by(Assignment.registration_id)).all()
        timetable = {
            k: plan.details[k] for k in ("itinerary", "itinerary_problem") if k in plan.details
        }
        return {
            "activity_id": activity_id,
            "kind": plan.kind,
            "plan_version": plan.version,
            "created_at": plan.created_at.isoformat(),
            **timetable,
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
        plan = _plan_in_force(uow, activity_id)
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
