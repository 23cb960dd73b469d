"""Scheduling's use cases for incoming events. Each is idempotent (claimed by event id)."""

from __future__ import annotations

from sqlalchemy import delete, update

from lob_common.contracts import ACTIVITY_SPEC_FIELDS, Event, payload_json
from lob_common.db import DatabaseHandle, utcnow
from scheduling.adapters.tables import ActivityCopy, Assignment, Attendance, SignUp
from scheduling.planning import Settings, update_plan_in_force


def record_activity(db: DatabaseHandle, event: Event) -> bool:
    p = event.payload
    with db() as uow:
        if not uow.claim(event):
            return False
        activity = uow.session.get(ActivityCopy, p["activity_id"]) or ActivityCopy(
            id=p["activity_id"]
        )
        activity.kind = p["kind"]
        activity.title = p["title"]
        activity.starts_at = p["starts_at"]
        activity.ends_at = p["ends_at"]
        activity.sign_up_closes_at = p["sign_up_closes_at"]
        as_json = payload_json(event)
        activity.spec = {k: as_json[k] for k in ACTIVITY_SPEC_FIELDS}
        activity.updated_at = utcnow()
        uow.session.merge(activity)
        uow.commit()
        return True


def record_sign_up(db: DatabaseHandle, event: Event, settings: Settings) -> bool:
    """Keep the sign-up; a late one joins a published plan at once (orientation, bus tour)."""
    p = event.payload
    with db() as uow:
        if not uow.claim(event):
            return False
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
        uow.commit()
        return True


def record_cancellation(db: DatabaseHandle, event: Event, settings: Settings) -> bool:
    """Mark the sign-up cancelled; in a published plan the freed place goes to the line."""
    p = event.payload
    with db() as uow:
        if not uow.claim(event):
            return False
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
        uow.commit()
        return True


def record_attendance(db: DatabaseHandle, event: Event) -> bool:
    """Who came: the history from which orientation days' no-show rates are taken."""
    p = event.payload
    with db() as uow:
        if not uow.claim(event):
            return False
        uow.session.merge(
            Attendance(
                registration_id=p["registration_id"],
                activity_id=p["activity_id"],
                person_id=p["person_id"],
                attended=p["attended"],
                recorded_at=p["recorded_at"],
            )
        )
        uow.commit()
        return True


def erase_person(db: DatabaseHandle, event: Event) -> bool:
    with db() as uow:
        if not uow.claim(event):
            return False
        person_id = event.payload["person_id"]
        for table in (SignUp, Assignment, Attendance):
            uow.session.execute(delete(table).where(table.person_id == person_id))
        uow.commit()
        return True
