"""Reporting's use cases: record facts from events, answer participation queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select, update

from lob_common.contracts import Event
from lob_common.db import DatabaseHandle, UnitOfWork, idempotent
from lob_common.timeutil import local_date
from reporting.adapters.tables import Participation


@idempotent
def record_sign_up(uow: UnitOfWork, event: Event) -> None:
    p = event.payload
    exists = uow.session.scalar(
        select(Participation.id).filter_by(registration_id=p["registration_id"])
    )
    if exists is not None:
        return
    uow.session.add(
        Participation(
            registration_id=p["registration_id"],
            person_id=p["person_id"],
            activity_id=p["activity_id"],
            activity_kind=p["activity_kind"],
            activity_date=local_date(p["activity_starts_at"]),
            school_id=p["school_id"],
            role=p["role"],
            age=None,  # the exact age no longer travels (signed_up 1.1 carries age_band)
            phase=p["phase"],
            municipality=p["municipality"],
            status="signed_up",
            attended=None,
            signed_up_at=p["signed_up_at"],
        )
    )


@idempotent
def record_cancellation(uow: UnitOfWork, event: Event) -> None:
    _update_fact(uow, event, status="cancelled")


@idempotent
def record_attendance(uow: UnitOfWork, event: Event) -> None:
    _update_fact(uow, event, attended=event.payload["attended"])


def _update_fact(uow: UnitOfWork, event: Event, **values: Any) -> None:
    uow.session.execute(
        update(Participation)
        .where(Participation.registration_id == event.payload["registration_id"])
        .values(**values)
    )


@idempotent
def forget_person(uow: UnitOfWork, event: Event) -> None:
    """Erasure: cut the link to the person; the anonymous count remains."""
    uow.session.execute(
        update(Participation)
        .where(Participation.person_id == event.payload["person_id"])
        .values(person_id=None, registration_id=None)
    )


def participation(db: DatabaseHandle, activity_id: str | None = None) -> dict[str, Any]:
    """Per activity: participants (current sign-ups), cancelled, attended."""
    signed_up = case((Participation.status == "signed_up", 1), else_=0)
    cancelled = case((Participation.status == "cancelled", 1), else_=0)
    attended = case((Participation.attended.is_(True), 1), else_=0)
    query = (
        select(
            Participation.activity_id,
            Participation.activity_kind,
            Participation.activity_date,
            func.sum(signed_up),
            func.sum(cancelled),
            func.sum(attended),
        )
        .group_by(
            Participation.activity_id, Participation.activity_kind, Participation.activity_date
        )
        .order_by(Participation.activity_date, Participation.activity_id)
    )
    if activity_id:
        query = query.where(Participation.activity_id == activity_id)
    with db() as uow:
        rows = uow.session.execute(query).all()
    activities = [
        {
            "activity_id": a,
            "kind": k,
            "date": d.isoformat(),
            "participants": int(s or 0),
            "cancelled": int(c or 0),
            "attended": int(t or 0),
        }
        for a, k, d, s, c, t in rows
    ]
    return {
        "activities": activities,
        "total_participants": sum(a["participants"] for a in activities),
    }
