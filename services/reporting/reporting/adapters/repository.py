"""Reporting's queries: keep the facts, the schools and the activities; read counts back.

The tables read aggregated counts (GROUP BY the dimensions a table needs) for one period and
one or two roles, so a table over a million facts is one indexed scan, not a million objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lob_common.timeutil import local_date
from reporting.adapters.tables import Activity, ErasedPerson, Participation, School
from reporting.domain import facts as domain

# The dimensions a table may group by, besides activity, role, status and attendance.
DIMENSIONS = ("school_id", "phase", "age_band", "municipality")
FACT_FIELDS = (
    "registration_id",
    "person_id",
    "activity_id",
    "activity_kind",
    "activity_date",
    "school_id",
    "role",
    "age_band",
    "phase",
    "municipality",
    "status",
    "attended",
)


def _insert(session: Session, table: Any) -> Any:
    """INSERT with ON CONFLICT support on both backends."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# --- schools and activities --------------------------------------------------------------------


def save_school(session: Session, payload: dict[str, Any], at: datetime) -> None:
    school = session.get(School, payload["school_id"])
    if school is not None and school.updated_at > at:
        return  # a newer registration of this school was applied already
    school = school or School(school_id=payload["school_id"])
    school.name = payload["name"]
    school.kind = payload["kind"]
    school.municipality = payload.get("municipality")
    school.updated_at = at
    session.add(school)


def save_activity(session: Session, payload: dict[str, Any], at: datetime) -> None:
    activity = session.get(Activity, payload["activity_id"])
    if activity is not None and activity.published_at and activity.published_at > at:
        return
    activity = activity or Activity(activity_id=payload["activity_id"], audience=[])
    day = local_date(payload["starts_at"])
    moved = activity.activity_date not in (None, day) or (
        activity.kind is not None and activity.kind != payload["kind"]
    )
    activity.kind = payload["kind"]
    activity.title = payload["title"]
    activity.starts_at = payload["starts_at"]
    activity.activity_date = day
    activity.audience = list(payload.get("audience") or [])
    activity.host_school_id = payload.get("host_school_id")
    activity.published_at = at
    session.add(activity)
    if moved:  # facts follow their activity, so a moved activity counts in its new period
        session.execute(
            update(Participation)
            .where(Participation.activity_id == activity.activity_id)
            .values(activity_date=day, activity_kind=payload["kind"])
        )


def cancel_activity(session: Session, activity_id: str, at: datetime) -> None:
    activity = session.get(Activity, activity_id) or Activity(activity_id=activity_id, audience=[])
    if activity.cancelled_at is None or activity.cancelled_at < at:
        activity.cancelled_at = at
    session.add(activity)


def schools(session: Session) -> list[domain.School]:
    rows = session.scalars(select(School)).all()
    return [domain.School(s.school_id, s.name, s.kind, s.municipality) for s in rows]


def activities(session: Session) -> list[domain.Activity]:
    """Activities announced (with a date); cancelled when the cancellation is the latest word."""
    out = []
    for a in session.scalars(select(Activity).where(Activity.activity_date.is_not(None))):
        cancelled = a.cancelled_at is not None and (
            a.published_at is None or a.cancelled_at >= a.published_at
        )
        out.append(
            domain.Activity(
                a.activity_id,
                a.kind or "other",
                a.title or a.activity_id,
                a.activity_date,
                tuple(a.audience or ()),
                cancelled,
            )
        )
    return out


# --- facts ---------------------------------------------------------------------------------


def activity_date(session: Session, activity_id: str) -> date | None:
    return session.scalar(select(Activity.activity_date).where(Activity.activity_id == activity_id))


def is_erased(session: Session, person_id: str) -> bool:
    return session.get(ErasedPerson, person_id) is not None


def add_fact(session: Session, values: dict[str, Any]) -> None:
    """A new fact; a sign-up that is there already (same registration) changes nothing."""
    statement = _insert(session, Participation).values(**values)
    session.execute(statement.on_conflict_do_nothing(index_elements=["registration_id"]))


def update_fact(session: Session, registration_id: str, **values: Any) -> None:
    session.execute(
        update(Participation)
        .where(Participation.registration_id == registration_id)
        .values(**values)
    )


def forget_person(session: Session, person_id: str, at: datetime) -> None:
    session.execute(
        update(Participation)
        .where(Participation.person_id == person_id)
        .values(person_id=None, registration_id=None)
    )
    statement = _insert(session, ErasedPerson).values(person_id=person_id, erased_at=at)
    session.execute(statement.on_conflict_do_nothing(index_elements=["person_id"]))


def fact_counts(
    session: Session,
    starts: date,
    ends: date,
    roles: Sequence[str] | None = None,
    dimensions: Sequence[str] = ("school_id",),
    school_id: str | None = None,
) -> list[domain.FactCount]:
    """Facts of activities dated in [starts, ends], counted per activity, role, status,
    attendance and the given dimensions."""
    if unknown := set(dimensions) - set(DIMENSIONS):
        raise ValueError(f"unknown dimensions {sorted(unknown)}")
    p = Participation
    keys = [
        p.activity_id,
        p.activity_kind,
        p.activity_date,
        p.role,
        p.status,
        p.attended,
        *(getattr(p, d) for d in dimensions),
    ]
    query = (
        select(*keys, func.count())
        .where(p.activity_date >= starts, p.activity_date <= ends)
        .group_by(*keys)
    )
    if roles is not None:
        query = query.where(p.role.in_(roles))
    if school_id is not None:
        query = query.where(p.school_id == school_id)
    out = []
    for row in session.execute(query):
        activity_id, kind, day, role, status, attended, *rest, n = row
        out.append(
            domain.FactCount(
                activity_id=activity_id,
                role=role,
                status=status,
                attended=attended,
                activity_kind=kind,
                activity_date=day,
                n=n,
                **dict(zip(dimensions, rest, strict=True)),
            )
        )
    return out


def date_range(session: Session) -> tuple[date | None, date | None]:
    return tuple(
        session.execute(
            select(func.min(Participation.activity_date), func.max(Participation.activity_date))
        ).one()
    )


# --- rebuild -------------------------------------------------------------------------------


def lock_facts(session: Session) -> None:
    """Hold event handlers off the facts until this transaction ends (they wait, then apply
    their events on top of the rebuilt facts)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE participation, schools, activities IN EXCLUSIVE MODE"))
    else:  # SQLite: take the write lock now (BEGIN IMMEDIATE's effect inside a transaction)
        session.execute(delete(ErasedPerson).where(ErasedPerson.person_id == ""))


def replace_facts(session: Session, facts: Iterable[dict[str, Any]]) -> int:
    session.execute(delete(Participation))
    n = 0
    batch: list[dict[str, Any]] = []
    for fact in facts:
        batch.append({k: fact.get(k) for k in FACT_FIELDS})
        if len(batch) == 5000:
            session.execute(insert(Participation), batch)
            n += len(batch)
            batch = []
    if batch:
        session.execute(insert(Participation), batch)
        n += len(batch)
    return n
