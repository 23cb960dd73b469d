"""Scheduling's database in domain terms: the queries, and rows turned into domain objects
(and back) here and nowhere else. Every method works inside the caller's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lob_common.db import UnitOfWork, json_ready, utcnow
from scheduling.adapters import tables
from scheduling.domain.orientation import AttendanceRecord
from scheduling.domain.plan import (
    Activity,
    NothingToPlan,
    Outcome,
    Placement,
    PlanInForce,
    PlanInput,
    Settings,
    SignUp,
    SignUpStatus,
    Waiting,
    announcements,
)


class PlanStore:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    # --- the copies of what registration publishes ----------------------------------------------

    def save_activity(self, activity: Activity) -> None:
        self.session.merge(
            tables.ActivityCopy(
                id=activity.id,
                kind=activity.kind,
                title=activity.title,
                starts_at=activity.starts_at,
                ends_at=activity.ends_at,
                sign_up_closes_at=activity.sign_up_closes_at,
                capacity=activity.capacity,
                spec=json_ready(dict(activity.spec)),
                updated_at=utcnow(),
            )
        )

    def save_sign_up(self, activity_id: str, sign_up: SignUp, role: str) -> None:
        self.session.merge(
            tables.SignUp(
                registration_id=sign_up.registration_id,
                activity_id=activity_id,
                person_id=sign_up.person_id,
                school_id=sign_up.school_id,
                role=role,
                preferences=json_ready(dict(sign_up.preferences)),
                status=SignUpStatus.ACTIVE,
                signed_up_at=sign_up.signed_up_at,
            )
        )
        self.session.flush()

    def save_sign_ups(self, activity_id: str, sign_ups: list[tuple[SignUp, str]]) -> None:
        """save_sign_up for many sign-ups (with their roles) of one activity, in one statement;
        a sign-up kept before is overwritten, as merge() would, and the last of a
        registration's in the list wins."""
        rows = {
            sign_up.registration_id: {
                "registration_id": sign_up.registration_id,
                "activity_id": activity_id,
                "person_id": sign_up.person_id,
                "school_id": sign_up.school_id,
                "role": role,
                "preferences": json_ready(dict(sign_up.preferences)),
                "status": SignUpStatus.ACTIVE,
                "signed_up_at": sign_up.signed_up_at,
            }
            for sign_up, role in sign_ups
        }
        if not rows:
            return
        table = tables.SignUp.__table__
        dialect = self.session.get_bind().dialect.name
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        statement = statement.on_conflict_do_update(
            index_elements=["registration_id"],
            set_={
                c: statement.excluded[c]
                for c in next(iter(rows.values()))
                if c != "registration_id"
            },
        )
        # In key order, so batches holding the same sign-ups (a redelivery) lock them alike.
        self.session.execute(statement, [rows[k] for k in sorted(rows)])

    def cancel_sign_up(self, registration_id: str) -> None:
        self.session.execute(
            update(tables.SignUp)
            .where(tables.SignUp.registration_id == registration_id)
            .values(status=SignUpStatus.CANCELLED)
        )

    def save_attendance(
        self,
        registration_id: str,
        activity_id: str,
        person_id: str,
        attended: bool,
        recorded_at: datetime,
    ) -> None:
        self.session.merge(
            tables.Attendance(
                registration_id=registration_id,
                activity_id=activity_id,
                person_id=person_id,
                attended=attended,
                recorded_at=recorded_at,
            )
        )

    def erase_person(self, person_id: str) -> None:
        for table in (tables.SignUp, tables.Assignment, tables.Attendance):
            self.session.execute(delete(table).where(table.person_id == person_id))

    # --- reading what plans are made from -------------------------------------------------------

    def activity(self, activity_id: str, *, lock: bool = False) -> Activity | None:
        """`lock`: one update of an activity's plan at a time (PostgreSQL: a row lock until the
        transaction ends; SQLite has one writer anyway)."""
        query = select(tables.ActivityCopy).filter_by(id=activity_id)
        row = self.session.scalar(query.with_for_update() if lock else query)
        return None if row is None else _activity(row)

    def sign_ups(self, activity_id: str) -> list[SignUp]:
        """The active sign-ups of an activity."""
        rows = self.session.scalars(
            select(tables.SignUp).filter_by(activity_id=activity_id, status=SignUpStatus.ACTIVE)
        )
        return [_sign_up(row) for row in rows]

    def sign_up(self, registration_id: str) -> SignUp | None:
        row = self.session.get(tables.SignUp, registration_id)
        return None if row is None else _sign_up(row)

    def plan_in_force(self, activity_id: str) -> PlanInForce | None:
        plan = self._newest_plan(activity_id)
        if plan is None:
            return None
        rows = self.session.scalars(select(tables.Assignment).filter_by(plan_id=plan.id)).all()
        return PlanInForce(
            version=plan.version,
            programmes={
                a.registration_id: a.programme for a in rows if a.status == Placement.ASSIGNED
            },
            waitlist={
                a.registration_id: Waiting(
                    a.waitlist_position,
                    a.programme.get("item_id"),
                    a.programme.get("item_title", ""),
                )
                for a in rows
                if a.status == Placement.WAITLISTED and a.waitlist_position
            },
            details=plan.details,
            metrics=plan.metrics,
        )

    def version_in_force(self, activity_id: str) -> int:
        """The plan in force's version (0: none); cheap, for the superseded check."""
        return (
            self.session.scalar(
                select(func.max(tables.Plan.version)).filter_by(activity_id=activity_id)
            )
            or 0
        )

    def history(self, activity: Activity) -> list[AttendanceRecord]:
        """Orientation days: bookings and attendance per workshop and school at earlier dates.

        A booking counts only where attendance was recorded, so a date nobody registered
        attendance for does not look like a day on which everybody stayed away.
        """
        if activity.kind != "orientation_day":
            return []
        earlier = self.session.scalars(
            select(tables.ActivityCopy.id)
            .where(tables.ActivityCopy.kind == "orientation_day")
            .where(tables.ActivityCopy.starts_at < activity.starts_at)
        ).all()
        booked: dict[tuple[str, str], list[int]] = {}
        for activity_id in earlier:
            plan = self._newest_plan(activity_id)
            if plan is None:
                continue
            rows = self.session.execute(
                select(
                    tables.Assignment.programme,
                    tables.Assignment.school_id,
                    tables.Attendance.attended,
                )
                .join(
                    tables.Attendance,
                    tables.Attendance.registration_id == tables.Assignment.registration_id,
                )
                .where(
                    tables.Assignment.plan_id == plan.id,
                    tables.Assignment.status == Placement.ASSIGNED,
                )
            ).all()
            for programme, school_id, attended in rows:
                workshop = (programme.get("workshop") or {}).get("workshop_id")
                if workshop:
                    counts = booked.setdefault((workshop, school_id or ""), [0, 0])
                    counts[0] += 1
                    counts[1] += int(attended)
        return [AttendanceRecord(w, school, b, a) for (w, school), (b, a) in sorted(booked.items())]

    def plan_input(self, activity_id: str, settings: Settings, *, lock: bool = False) -> PlanInput:
        activity = self.activity(activity_id, lock=lock)
        if activity is None:
            raise NothingToPlan(f"activity {activity_id} is unknown to scheduling")
        return PlanInput(
            activity,
            self.sign_ups(activity_id),
            self.plan_in_force(activity_id),
            settings,
            self.history(activity),
        )

    # --- storing a plan -------------------------------------------------------------------------

    def save_plan(self, inp: PlanInput, outcome: Outcome) -> dict[str, Any]:
        """The outcome as the next plan version, and its events in the outbox (one transaction
        with the caller's other changes). Returns the summary."""
        activity = inp.activity
        version = self.version_in_force(activity.id) + 1
        metrics = json_ready(outcome.metrics)
        plan = tables.Plan(
            activity_id=activity.id,
            version=version,
            kind=activity.kind,
            created_at=utcnow(),
            metrics=metrics,
            details=json_ready(outcome.details),
        )
        self.session.add(plan)
        self.session.flush()
        for sign_up in inp.sign_ups:
            self.session.add(_assignment(plan, sign_up, outcome))
        announced = announcements(inp, version, outcome, metrics)
        for event_type, payload in announced.events:
            self.uow.emit(event_type, json_ready(payload))
        return announced.summary

    # --- reading plans --------------------------------------------------------------------------

    def programmes(self, activity_id: str, school_id: str | None = None) -> dict[str, Any] | None:
        """The plan in force for an activity, optionally only one school's participants."""
        plan = self._newest_plan(activity_id)
        if plan is None:
            return None
        query = select(tables.Assignment).filter_by(plan_id=plan.id)
        if school_id is not None:
            query = query.filter_by(school_id=school_id)
        rows = self.session.scalars(query.order_by(tables.Assignment.registration_id)).all()
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

    def room_lists(self, activity_id: str) -> list[dict[str, Any]] | None:
        plan = self._newest_plan(activity_id)
        return None if plan is None else plan.details.get("room_lists", [])

    def due_activities(self, now: datetime, kinds: Iterable[str]) -> list[str]:
        """Activities without a plan yet that should have one: of `kinds` (those with a
        planner) once sign-up has closed; of any other kind, with a capacity, once someone
        signed up (a sign-up that arrived before its activity, for instance)."""
        activity = tables.ActivityCopy
        planned = select(tables.Plan.activity_id)
        signed_up = select(tables.SignUp.activity_id).filter_by(status=SignUpStatus.ACTIVE)
        closed = (
            activity.kind.in_(list(kinds))
            & activity.sign_up_closes_at.is_not(None)
            & (activity.sign_up_closes_at <= now)
        )
        with_seats = (
            activity.kind.not_in(list(kinds))
            & activity.capacity.is_not(None)
            & activity.id.in_(signed_up)
        )
        return list(
            self.session.scalars(
                select(activity.id).where(closed | with_seats).where(activity.id.not_in(planned))
            )
        )

    def _newest_plan(self, activity_id: str) -> tables.Plan | None:
        return self.session.scalar(
            select(tables.Plan)
            .filter_by(activity_id=activity_id)
            .order_by(tables.Plan.version.desc())
            .limit(1)
        )


def _activity(row: tables.ActivityCopy) -> Activity:
    return Activity(
        id=row.id,
        kind=row.kind,
        title=row.title,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        sign_up_closes_at=row.sign_up_closes_at,
        capacity=row.capacity,
        spec=row.spec or {},
    )


def _sign_up(row: tables.SignUp) -> SignUp:
    return SignUp(
        registration_id=row.registration_id,
        person_id=row.person_id,
        school_id=row.school_id,
        preferences=row.preferences or {},
        signed_up_at=row.signed_up_at,
    )


def _assignment(plan: tables.Plan, sign_up: SignUp, outcome: Outcome) -> tables.Assignment:
    placement = outcome.placement(sign_up.registration_id)
    waiting = outcome.waitlist.get(sign_up.registration_id)
    content: dict[str, Any] = {}
    if placement is Placement.ASSIGNED:
        content = outcome.programmes[sign_up.registration_id]
    elif waiting is not None:
        content = {"item_id": waiting.item_id, "item_title": waiting.item_title}
    return tables.Assignment(
        plan_id=plan.id,
        registration_id=sign_up.registration_id,
        person_id=sign_up.person_id,
        school_id=sign_up.school_id,
        status=placement,
        programme=json_ready(content),
        waitlist_position=waiting.position if placement is Placement.WAITLISTED else None,
    )
