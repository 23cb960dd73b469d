"""Scheduling's use cases: the copies of what registration publishes, and plans.

One line through planning: the store reads a `PlanInput` (domain objects), the kind's planner
turns it into an `Outcome` (domain), and the store saves it as the next plan version with its
events, in one transaction. Event handlers are idempotent (claimed by event id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lob_common import metrics
from lob_common.contracts import ACTIVITY_SPEC_FIELDS, Event, payload_json
from lob_common.db import DatabaseHandle, UnitOfWork, idempotent, idempotent_batch
from scheduling.adapters.metrics import record_plan_quality
from scheduling.adapters.plan_store import PlanStore
from scheduling.domain import kinds
from scheduling.domain.plan import (
    Activity,
    NothingToPlan,
    Outcome,
    PlanSuperseded,
    Progress,
    Settings,
    SignUp,
)

log = logging.getLogger(__name__)

# --- events from registration ------------------------------------------------------------------


@idempotent
def record_activity(uow: UnitOfWork, event: Event, settings: Settings) -> None:
    """Keep the activity; for a kind with seats, a changed capacity reaches the plan at once.
    A historical activity (a past season, loaded for its figures) is not kept: never planned."""
    p = event.payload
    if p["historical"]:
        return
    as_json = payload_json(event)
    store = PlanStore(uow)
    activity = Activity(
        id=p["activity_id"],
        kind=p["kind"],
        title=p["title"],
        starts_at=p["starts_at"],
        ends_at=p["ends_at"],
        sign_up_closes_at=p["sign_up_closes_at"],
        capacity=p["capacity"],
        spec={k: as_json[k] for k in ACTIVITY_SPEC_FIELDS},
    )
    store.save_activity(activity)
    if kinds.has_seats(activity) and store.sign_ups(activity.id):
        update_plan_in_force(store, activity.id, event.occurred_at, settings)


@idempotent_batch
def record_sign_ups(uow: UnitOfWork, events: list[Event], settings: Settings) -> None:
    """Keep the sign-ups (a batch of them, in delivery order); a late one joins a plan in force
    at once (orientation days, bus tours), and for a kind with seats every sign-up takes a seat
    or a place in line, one after the other. The sign-ups of an activity whose plan they do not
    change (no plan in force yet, or a kind without one) are written in one statement."""
    store = PlanStore(uow)
    by_activity: dict[str, list[Event]] = {}
    for event in events:
        by_activity.setdefault(event.payload["activity_id"], []).append(event)
    for activity_id, group in by_activity.items():
        if _changes_plan(store, activity_id):
            for event in group:
                store.save_sign_up(activity_id, _sign_up(event), event.payload["role"])
                update_plan_in_force(store, activity_id, event.payload["signed_up_at"], settings)
        else:
            store.save_sign_ups(activity_id, [(_sign_up(e), e.payload["role"]) for e in group])


def _sign_up(event: Event) -> SignUp:
    p = event.payload
    return SignUp(
        registration_id=p["registration_id"],
        person_id=p["person_id"],
        school_id=p["school_id"],
        preferences=payload_json(event)["preferences"],
        signed_up_at=p["signed_up_at"],
    )


def _changes_plan(store: PlanStore, activity_id: str) -> bool:
    """Whether a sign-up may change the activity's plan (update_plan_in_force decides how). As
    there, the activity is locked before its plan is looked at, until the commit: a plan saved
    meanwhile is either seen here or saved after these sign-ups."""
    activity = store.activity(activity_id)
    if activity is None or kinds.updater_for(activity) is None:
        return False
    if kinds.has_seats(activity):
        return True
    store.activity(activity_id, lock=True)
    return store.plan_in_force(activity_id) is not None


@idempotent
def record_cancellation(uow: UnitOfWork, event: Event, settings: Settings) -> None:
    """Mark the sign-up cancelled; in a plan in force the freed place goes to the line."""
    p = event.payload
    store = PlanStore(uow)
    store.cancel_sign_up(p["registration_id"])
    update_plan_in_force(
        store,
        p["activity_id"],
        p["cancelled_at"],
        settings,
        cancelled_registration=p["registration_id"],
    )


@idempotent
def record_attendance(uow: UnitOfWork, event: Event) -> None:
    """Who came: the history from which orientation days' no-show rates are taken."""
    p = event.payload
    PlanStore(uow).save_attendance(
        p["registration_id"], p["activity_id"], p["person_id"], p["attended"], p["recorded_at"]
    )


@idempotent
def erase_person(uow: UnitOfWork, event: Event) -> None:
    PlanStore(uow).erase_person(event.payload["person_id"])


# --- plans -------------------------------------------------------------------------------------


def run_schedule(
    db: DatabaseHandle,
    activity_id: str,
    settings: Settings,
    progress: Progress | None = None,
    solve: Callable[..., Outcome] | None = None,
) -> dict[str, Any]:
    """Plan an activity now; returns a summary (version, counts, metrics).

    The solve runs outside any transaction (it may take seconds; sign-ups keep arriving and are
    picked up by the next run). `solve` lets the service run it in a worker thread.
    """
    with db() as uow:
        inp = PlanStore(uow).plan_input(activity_id, settings)
    planner = kinds.planner_for(inp.activity)
    if planner is None:
        raise NothingToPlan(f"activities of kind {inp.activity.kind} are not planned")
    started = time.perf_counter()
    outcome = (solve or _call)(planner, inp, progress)
    seconds = time.perf_counter() - started
    metrics.SCHEDULE_RUNS.labels(inp.activity.kind).inc()
    metrics.SCHEDULE_SECONDS.labels(inp.activity.kind).observe(seconds)
    record_plan_quality(inp.activity.kind, outcome.metrics)
    with db() as uow:
        store = PlanStore(uow)
        version_now = store.version_in_force(activity_id)
        if version_now != (inp.previous.version if inp.previous else 0):
            raise PlanSuperseded(
                f"the plan of {activity_id} changed while this one was computed "
                f"(now version {version_now}); run it again"
            )
        summary = store.save_plan(inp, outcome)
        uow.commit()
    summary["seconds"] = round(seconds, 2)
    _log_summary(summary, seconds)
    return summary


def update_plan_in_force(
    store: PlanStore,
    activity_id: str,
    at: datetime,
    settings: Settings,
    cancelled_registration: str | None = None,
) -> dict[str, Any] | None:
    """Bring the plan in force up to date after a cancellation or a sign-up, inside the
    caller's unit of work (the changed plan and its events commit with the incoming event's
    claim). Orientation days and bus tours once a plan exists; a kind with seats from the first
    sign-up on. Otherwise nothing happens and None is returned."""
    activity = store.activity(activity_id)
    if activity is None or (updater := kinds.updater_for(activity)) is None:
        return None
    activity = store.activity(activity_id, lock=True)  # one update at a time, then re-read
    previous = store.plan_in_force(activity_id)
    if previous is None and not kinds.has_seats(activity):
        return None
    cancelled = None
    if cancelled_registration:
        if previous is None or (
            cancelled_registration not in previous.programmes
            and cancelled_registration not in previous.waitlist
        ):
            return None  # not in the plan: nothing is freed
        cancelled = store.sign_up(cancelled_registration)
    inp = store.plan_input(activity_id, settings)
    outcome = updater(inp, cancelled, at)
    summary = store.save_plan(inp, outcome)
    _log_summary(summary, 0.0)
    return summary


def programmes(
    db: DatabaseHandle, activity_id: str, school_id: str | None = None
) -> dict[str, Any] | None:
    with db() as uow:
        return PlanStore(uow).programmes(activity_id, school_id)


def room_lists(db: DatabaseHandle, activity_id: str) -> list[dict[str, Any]] | None:
    with db() as uow:
        return PlanStore(uow).room_lists(activity_id)


def due_activities(db: DatabaseHandle, now: datetime) -> list[str]:
    """Activities to plan now: sign-up closed and no plan yet; or a kind with seats whose
    sign-ups have no plan (normally their first sign-up makes it)."""
    with db() as uow:
        return PlanStore(uow).due_activities(now, kinds.PLANNERS)


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
