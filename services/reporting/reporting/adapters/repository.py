"""Reporting's queries: keep the facts, the schools and the activities; read counts back.

Every change to the facts also changes `participation_counts` (how many facts share each
combination of the dimensions the tables count by) in the same transaction. The tables read the
counts for one period and one or two roles: tens of thousands of rows instead of a million facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lob_common.timeutil import local_date
from reporting.adapters.tables import (
    Activity,
    ErasedPerson,
    Participation,
    ParticipationCount,
    School,
)
from reporting.domain import facts as domain
from reporting.domain.facts import Status

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
        recount(session, activity.activity_id)


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
#
# Facts are written with upserts keyed by registration, so the events of one registration give
# the same fact in any order: a cancellation or an attendance that overtakes its sign-up (they
# travel in different queues) leaves a fact the sign-up completes when it comes.

SIGN_UP_FIELDS = (
    "person_id",
    "activity_id",
    "activity_kind",
    "activity_date",
    "school_id",
    "role",
    "age_band",
    "phase",
    "municipality",
)


def activity_dates(session: Session, activity_ids: Iterable[str]) -> dict[str, date]:
    ids = list(set(activity_ids))
    rows = session.execute(
        select(Activity.activity_id, Activity.activity_date).where(
            Activity.activity_id.in_(ids), Activity.activity_date.is_not(None)
        )
    )
    return dict(rows.all())


def erased_among(session: Session, person_ids: Iterable[str]) -> set[str]:
    ids = list(set(person_ids))
    if not ids:
        return set()
    return set(
        session.scalars(select(ErasedPerson.person_id).where(ErasedPerson.person_id.in_(ids)))
    )


def add_sign_ups(session: Session, rows: list[dict[str, Any]]) -> None:
    """Facts from sign-ups; a fact its cancellation or attendance started is completed."""
    if not rows:
        return
    linked = [r for r in rows if r["registration_id"] is not None]
    anonymous = [r for r in rows if r["registration_id"] is None]
    before = _counted(session, [r["registration_id"] for r in linked])
    if linked:
        statement = _insert(session, Participation.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["registration_id"],
            set_={f: statement.excluded[f] for f in SIGN_UP_FIELDS},
        )
        session.execute(statement, sorted(linked, key=lambda r: r["registration_id"]))
    if anonymous:
        session.execute(insert(Participation.__table__), anonymous)
    after = _counted(session, list(before) + [r["registration_id"] for r in linked])
    _count_changes(session, before, after, [_count_key(r) for r in anonymous])


def set_on_facts(session: Session, column: str, rows: list[dict[str, Any]]) -> None:
    """Set `column` (status or attended) on the facts of these registrations; a registration
    whose sign-up has not arrived yet gets a fact holding just this, for the sign-up to fill."""
    if not rows:
        return
    ids = [r["registration_id"] for r in rows]
    before = _counted(session, ids)
    statement = _insert(session, Participation.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["registration_id"], set_={column: statement.excluded[column]}
    )
    defaults = {"status": Status.SIGNED_UP, "attended": None}
    session.execute(statement, [{**defaults, **row} for row in rows])
    _count_changes(session, before, _counted(session, ids))


def forget_person(session: Session, person_id: str, at: datetime) -> None:
    session.execute(
        update(Participation)
        .where(Participation.person_id == person_id)
        .values(person_id=None, registration_id=None)
    )
    statement = _insert(session, ErasedPerson).values(person_id=person_id, erased_at=at)
    session.execute(statement.on_conflict_do_nothing(index_elements=["person_id"]))


# --- counts ---------------------------------------------------------------------------------

COUNTED = (
    "activity_id",
    "activity_kind",
    "activity_date",
    "school_id",
    "role",
    "status",
    "attended",
    "age_band",
    "phase",
    "municipality",
)
_ATTENDED = {True: "y", False: "n", None: ""}
_FROM_ATTENDED = {"y": True, "n": False, "": None}
CountKey = tuple[Any, ...]


def _count_key(fact: Mapping[str, Any]) -> CountKey | None:
    """A fact's place in participation_counts; None while it cannot be counted (a
    cancellation or attendance whose sign-up has not arrived)."""
    if fact["activity_date"] is None or fact["role"] is None:
        return None
    return tuple(
        _ATTENDED[fact[c]]
        if c == "attended"
        else (fact[c] if c == "activity_date" else fact[c] or "")
        for c in COUNTED
    )


def _counted(session: Session, registration_ids: list[str]) -> dict[str, CountKey | None]:
    if not registration_ids:
        return {}
    p = Participation
    rows = session.execute(
        select(p.registration_id, *(getattr(p, c) for c in COUNTED)).where(
            p.registration_id.in_(set(registration_ids))
        )
    )
    return {row[0]: _count_key(dict(zip(COUNTED, row[1:], strict=True))) for row in rows}


def _count_changes(
    session: Session,
    before: dict[str, CountKey | None],
    after: dict[str, CountKey | None],
    added: Iterable[CountKey | None] = (),
) -> None:
    delta: Counter[CountKey] = Counter()
    for registration_id in before.keys() | after.keys():
        old, new = before.get(registration_id), after.get(registration_id)
        if old == new:
            continue
        if old is not None:
            delta[old] -= 1
        if new is not None:
            delta[new] += 1
    for key in added:
        if key is not None:
            delta[key] += 1
    # In key order: two batches committing at once then lock the count rows they share in the
    # same order, where delivery order made PostgreSQL abort one of them as a deadlock (seen in
    # the sign-up benchmark: the batch then went one event at a time).
    rows = [
        {**dict(zip(COUNTED, key, strict=True)), "n": n} for key, n in sorted(delta.items()) if n
    ]
    if not rows:
        return
    counts = ParticipationCount.__table__
    statement = _insert(session, counts)
    statement = statement.on_conflict_do_update(
        index_elements=list(COUNTED), set_={"n": counts.c.n + statement.excluded.n}
    )
    session.execute(statement, rows)
    emptied = [{f"k_{c}": row[c] for c in COUNTED} for row in rows if row["n"] < 0]
    if emptied:
        session.execute(
            delete(counts).where(
                and_(*(counts.c[c] == bindparam(f"k_{c}") for c in COUNTED), counts.c.n <= 0)
            ),
            emptied,
        )


def recount(session: Session, activity_id: str | None = None) -> None:
    """participation_counts from the facts (all, or one activity's)."""
    p, counts = Participation, ParticipationCount.__table__
    keys = [
        p.activity_id,
        func.coalesce(p.activity_kind, ""),
        p.activity_date,
        func.coalesce(p.school_id, ""),
        p.role,
        p.status,
        case((p.attended.is_(True), "y"), (p.attended.is_(False), "n"), else_=""),
        func.coalesce(p.age_band, ""),
        func.coalesce(p.phase, ""),
        func.coalesce(p.municipality, ""),
    ]
    query = (
        select(*keys, func.count())
        .where(p.activity_date.is_not(None), p.role.is_not(None))
        .group_by(*keys)
    )
    clear = delete(counts)
    if activity_id is not None:
        query = query.where(p.activity_id == activity_id)
        clear = clear.where(counts.c.activity_id == activity_id)
    session.execute(clear)
    session.execute(insert(counts).from_select([*COUNTED, "n"], query))


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
    c = ParticipationCount
    keys = [
        c.activity_id,
        c.activity_kind,
        c.activity_date,
        c.role,
        c.status,
        c.attended,
        *(getattr(c, d) for d in dimensions),
    ]
    query = (
        select(*keys, func.sum(c.n))
        .where(c.activity_date >= starts, c.activity_date <= ends)
        .group_by(*keys)
    )
    if roles is not None:
        query = query.where(c.role.in_(roles))
    if school_id is not None:
        query = query.where(c.school_id == school_id)
    out = []
    for row in session.execute(query):
        activity_id, kind, day, role, status, attended, *rest, n = row
        out.append(
            domain.FactCount(
                activity_id=activity_id,
                role=role,
                status=status,
                attended=_FROM_ATTENDED[attended],
                activity_kind=kind or None,
                activity_date=day,
                n=int(n),
                **{d: v or None for d, v in zip(dimensions, rest, strict=True)},
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


def replace_facts(
    session: Session, facts: Iterable[dict[str, Any]], keep_anonymous: bool = False
) -> int:
    """The facts become `facts` (then recounted); `keep_anonymous` keeps the facts that have no
    link any more (erased people) when `facts` cannot hold them."""
    clear = delete(Participation)
    if keep_anonymous:
        clear = clear.where(Participation.registration_id.is_not(None))
    session.execute(clear)
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
    recount(session)
    return n
