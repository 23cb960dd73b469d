"""Scheduling's use cases for incoming events. Each is idempotent (claimed by event id)."""

from __future__ import annotations

from sqlalchemy import delete, update

from lob_common.contracts import ACTIVITY_SPEC_FIELDS, Event, payload_json
from lob_common.db import UnitOfWork, idempotent, utcnow
from scheduling.adapters.tables import ActivityCopy, Assignment, Attendance, SignUp
from scheduling.planning import Settings, update_plan_in_force


@idempotent
def record_activity(uow: UnitOfWork, event: Event) -> None:
    p = event.payload
    activity = uow.session.get(ActivityCopy, p["activity_id"]) or ActivityCopy(id=p["activity_id"])
    activity.kind = p["kind"]
    activity.title = p["title"]
    activity.starts_at = p["starts_at"]
    activity.ends_at = p["ends_at"]
    activity.sign_up_closes_at = p["sign_up_closes_at"]
    as_json = payload_json(event)
    activity.spec = {k: as_json[k] for k in ACTIVITY_SPEC_FIELDS}
    activity.updated_at = utcnow()
    uow.session.merge(activity)


@idempotent
def record_sign_up(uow: UnitOfWork, event: Event, settings: Settings) -> None:
    """Keep the sign-up; a late one joins a published plan at once (orientation, bus tour)."""
    p = event.payload
    uow.session.merge(
        SignUp(
            registration_id=p["registration_id"],
            activity_id=p["activity_id"],
            person_id=p["person_id"],
            school_id=p["school_id"],
            role=p["role"],
            preferences=payload_json(event)["preferences"],
            status="active",
            signed_up_at=p["signed_up_at"],
        )
    )
    uow.session.flush()
    update_plan_in_force(uow, p["activity_id"], p["signed_up_at"], settings)


@idempotent
def record_cancellation(uow: UnitOfWork, event: Event, settings: Settings) -> None:
    """Mark the sign-up cancelled; in a published plan the freed place goes to the line."""
    p = event.payload
    uow.session.execute(
        update(SignUp)
        .where(SignUp.registration_id == p["registration_id"])
        .values(status="cancelled")
    )
    update_plan_in_force(
        uow,
        p["activity_id"],
        p["cancelled_at"],
        settings,
        cancelled_registration=p["registration_id"],
    )


@idempotent
def record_attendance(uow: UnitOfWork, event: Event) -> None:
    """Who came: the history from which orientation days' no-show rates are taken."""
    p = event.payload
    uow.session.merge(
        Attendance(
            registration_id=p["registration_id"],
            activity_id=p["activity_id"],
            person_id=p["person_id"],
            attended=p["attended"],
            recorded_at=p["recorded_at"],
        )
    )


@idempotent
def erase_person(uow: UnitOfWork, event: Event) -> None:
    person_id = event.payload["person_id"]
    for table in (SignUp, Assignment, Attendance):
        uow.session.execute(delete(table).where(table.person_id == person_id))
