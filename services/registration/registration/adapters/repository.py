"""Every query registration makes, in one place, on one unit of work's session.

What the rules decide on is returned as domain values (registration.domain.model); rows are
returned where a use case changes them.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from registration.adapters.tables import Activity, ApiKey, Person, Registration, School
from registration.domain import model
from registration.domain.roster_sign_up import KnownPupil
from registration.domain.sign_up import SignUp


def activity_of(row: Activity) -> model.Activity:
    return model.Activity(
        id=row.id,
        kind=row.kind,
        title=row.title,
        starts_at=row.starts_at,
        sign_up_closes_at=row.sign_up_closes_at,
        session_ids=frozenset(s["session_id"] for s in row.details.get("sessions", [])),
        workshop_ids=frozenset(w["workshop_id"] for w in row.details.get("workshops", [])),
        audience=frozenset(row.audience or ()),
        sign_up_opens_at=row.sign_up_opens_at,
        cancelled_at=row.cancelled_at,
    )


def identity_key(
    school_id: str | None, email: str, first_name: str, last_name: str, date_of_birth: date | None
) -> str:
    """Who a person is within their school: the same school, address, names and birth date.

    Another school's sign-up of someone with the same details is another person record, so it
    never finds, changes or reveals the first school's pupil. Stored unique, so two identical
    sign-ups at once cannot make two records.
    """
    parts = (
        school_id or "",
        (email or "").lower(),
        first_name,
        last_name,
        str(date_of_birth or ""),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def student_identity_key(school_id: str, student_number: str) -> str:
    """Who a pupil with a student number is: that number within their school (a roster's
    pupil keeps it when their name or address is corrected)."""
    parts = ("student-number", school_id, student_number.upper())
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class RegistrationFilter:
    """What a list asks for; `visible_schools`/`host_school_id` narrow it to the caller's."""

    activity_id: str | None = None
    school_id: str | None = None
    status: str | None = None
    role: str | None = None
    only_school_id: str | None = None  # a school key: its own people only
    only_host_school_id: str | None = None  # a host key: its own activities only


def school_of(row: School) -> model.School:
    return model.School(id=row.id, name=row.name, kind=row.kind, municipality=row.municipality)


def _describe(person: Person, sign_up: SignUp) -> None:
    """What a sign-up says about its person (new or found): role, year, where, parent."""
    person.role = sign_up.role
    person.school_year = sign_up.school_year
    person.municipality = sign_up.municipality
    person.phase = sign_up.phase
    person.parent_email = sign_up.parent_email or person.parent_email


def _prefixed(table: Table, prefix: str) -> list[Any]:
    return [column.label(f"{prefix}__{column.name}") for column in table.columns]


# SignUpFacts' statement, built once. A NULL parameter matches nothing (NULL = NULL is not true).
_SIGN_UP_FACTS = (
    select(
        *_prefixed(Activity.__table__, "activity"),
        *_prefixed(School.__table__, "school"),
        *_prefixed(Person.__table__, "person"),
        *_prefixed(Registration.__table__, "earlier"),
    )
    .select_from(select(literal(1).label("one")).subquery())
    .outerjoin(
        Activity.__table__,
        and_(
            Activity.__table__.c.id == bindparam("activity_id"),
            Activity.__table__.c.published_at.is_not(None),
        ),
    )
    .outerjoin(School.__table__, School.__table__.c.id == bindparam("school_id"))
    .outerjoin(Person.__table__, Person.__table__.c.identity_key == bindparam("identity_key"))
    .outerjoin(
        Registration.__table__,
        Registration.__table__.c.idempotency_key == bindparam("idempotency_key"),
    )
)


def _columns(row: Mapping[str, Any], prefix: str, table: Table) -> dict[str, Any] | None:
    """One table's part of a _SIGN_UP_FACTS row, by attribute; None if it matched nothing."""
    if row[f"{prefix}__id"] is None:
        return None
    return {column.name: row[f"{prefix}__{column.name}"] for column in table.columns}


@functools.cache
def _insert_into(table: Table) -> Any:
    """One INSERT statement per table, built once: a new one per row costs its cache key."""
    return insert(table)


# What a sign-up says about a person it found (_describe), written back in one UPDATE.
_DESCRIBED = ("role", "school_year", "municipality", "phase", "parent_email")
_DESCRIBE_PERSON = (
    update(Person.__table__)
    .where(Person.__table__.c.id == bindparam("person_id"))
    .values({column: bindparam(column) for column in _DESCRIBED})
)


@dataclass(frozen=True)
class SignUpFacts:
    """What one sign-up is decided on, each None when there is none: the published activity;
    the school; the person this school already knows by the sign-up's details (email, names,
    birth date: one record per person within a school, so a pupil on several activities is one
    participant, and another school's pupil with the same details another); the registration
    an earlier request with the same Idempotency-Key made."""

    activity: model.Activity | None
    school: model.School | None
    person: Person | None
    earlier: Registration | None


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Any) -> None:
        self.session.add(row)
        self.session.flush()

    def insert_new(self, row: Any) -> None:
        """INSERT a new row in one Core statement instead of the ORM's flush (its unit of work
        costs more than the statement). For rows nothing in the transaction changes after:
        the object stays out of the session. Unset attributes get their column defaults."""
        values = {
            attr.columns[0].name: row.__dict__[attr.key]
            for attr in row.__mapper__.column_attrs
            if attr.key in row.__dict__
        }
        self.session.connection().execute(_insert_into(row.__table__), values)

    # --- the catalogue ----------------------------------------------------------------------

    def activity_row(self, activity_id: str) -> Activity | None:
        """Published or not (publishing creates or updates it)."""
        return self.session.get(Activity, activity_id)

    def published_activity(self, activity_id: str) -> model.Activity | None:
        row = self.session.get(Activity, activity_id)
        if row is None or row.published_at is None:
            return None
        return activity_of(row)

    def published_activities(self) -> list[Activity]:
        return list(
            self.session.scalars(
                select(Activity)
                .where(Activity.published_at.is_not(None))
                .order_by(Activity.starts_at)
            )
        )

    def sign_up_counts(self) -> dict[str, int]:
        """Current sign-ups per activity id."""
        rows = self.session.execute(
            select(Registration.activity_id, func.count())
            .where(Registration.status == model.RegistrationStatus.SIGNED_UP)
            .group_by(Registration.activity_id)
        )
        return {activity_id: count for activity_id, count in rows}

    def activity_ids(self) -> set[str]:
        return set(self.session.scalars(select(Activity.id)))

    # --- schools ----------------------------------------------------------------------------

    def school_row(self, school_id: str) -> School | None:
        return self.session.get(School, school_id)

    def school(self, school_id: str | None) -> model.School | None:
        row = self.session.get(School, school_id) if school_id else None
        return school_of(row) if row else None

    def schools(self) -> list[model.School]:
        return [school_of(r) for r in self.session.scalars(select(School).order_by(School.name))]

    def school_names(self) -> dict[str, str]:
        return {
            school_id: name
            for school_id, name in self.session.execute(select(School.id, School.name))
        }

    # --- API keys ---------------------------------------------------------------------------

    def active_key(self, key_hash: str) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )

    def key_named(self, name: str) -> ApiKey | None:
        """The key of this name that still works."""
        return self.session.scalar(
            select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        )

    def api_keys(self) -> list[ApiKey]:
        return list(self.session.scalars(select(ApiKey).order_by(ApiKey.name, ApiKey.created_at)))

    # --- persons and registrations ----------------------------------------------------------

    def sign_up_facts(
        self,
        activity_id: str | None,
        school_id: str | None,
        person: tuple[str, str, str, date | None] | None,
        idempotency_key: str | None = None,
    ) -> SignUpFacts:
        """What a sign-up is decided on (SignUpFacts), in one Core statement instead of four
        ORM queries: the outer joins hang off one constant row, so each part is found or NULL
        on its own."""
        row = (
            self.session.connection()
            .execute(
                _SIGN_UP_FACTS,
                {
                    "activity_id": activity_id,
                    "school_id": school_id,
                    "identity_key": identity_key(school_id, *person) if person else None,
                    "idempotency_key": idempotency_key,
                },
            )
            .one()
            ._mapping
        )
        activity = _columns(row, "activity", Activity.__table__)
        school = _columns(row, "school", School.__table__)
        found = _columns(row, "person", Person.__table__)
        earlier = _columns(row, "earlier", Registration.__table__)
        return SignUpFacts(
            activity_of(SimpleNamespace(**activity)) if activity else None,  # type: ignore[arg-type]
            school_of(SimpleNamespace(**school)) if school else None,  # type: ignore[arg-type]
            Person(**found) if found else None,
            Registration(**earlier) if earlier else None,
        )

    def prior_registrations(self, person_id: str) -> list[model.PriorRegistration]:
        rows = self.session.execute(
            select(Registration.activity_id, Registration.status).filter_by(person_id=person_id)
        )
        return [
            model.PriorRegistration(activity_id, model.RegistrationStatus(status))
            for activity_id, status in rows
        ]

    def save_person(self, person: Person | None, sign_up: SignUp, now: datetime) -> Person:
        """The person as this sign-up describes them: new (inserted), or the one SignUpFacts
        found (updated). Either way not in the session: the sign-up changes nothing more."""
        if person is None:
            person = Person(
                id=str(uuid.uuid4()),
                created_at=now,
                email=sign_up.email.lower() if sign_up.email else None,
                first_name=sign_up.first_name,
                last_name=sign_up.last_name,
                date_of_birth=sign_up.date_of_birth,
                school_id=sign_up.school.id if sign_up.school else None,
            )
            person.identity_key = identity_key(
                person.school_id,
                person.email,
                person.first_name,
                person.last_name,
                person.date_of_birth,
            )
            _describe(person, sign_up)
            self.insert_new(person)
            return person
        _describe(person, sign_up)
        self.session.connection().execute(
            _DESCRIBE_PERSON,
            {
                "person_id": person.id,
                **{column: getattr(person, column) for column in _DESCRIBED},
            },
        )
        return person

    def registration(self, registration_id: str) -> Registration | None:
        return self.session.get(Registration, registration_id)

    def registration_with_host(
        self, registration_id: str
    ) -> tuple[Registration, str | None] | None:
        """A registration and the school hosting its activity (who may see it)."""
        row = self.session.execute(
            select(Registration, Activity.host_school_id)
            .join(Activity, Activity.id == Registration.activity_id)
            .where(Registration.id == registration_id)
        ).first()
        return (row[0], row[1]) if row else None

    def active_registration(self, activity_id: str, person_id: str) -> Registration | None:
        return self.session.scalar(
            select(Registration).where(
                Registration.activity_id == activity_id,
                Registration.person_id == person_id,
                Registration.status.in_(model.ACTIVE_STATUSES),
            )
        )

    def registrations(
        self, where: RegistrationFilter, after: tuple[datetime, str] | None, limit: int | None
    ) -> list[tuple[Registration, Person]]:
        """Registrations with their person, oldest first (created_at, then id: a stable order
        to page through); `after` is the last (created_at, id) of the previous page."""
        query = (
            select(Registration, Person)
            .join(Person, Person.id == Registration.person_id)
            .join(Activity, Activity.id == Registration.activity_id)
            .order_by(Registration.created_at, Registration.id)
        )
        for column, value in (
            (Registration.activity_id, where.activity_id),
            (Registration.school_id, where.school_id),
            (Registration.status, where.status),
            (Person.role, where.role),
            (Registration.school_id, where.only_school_id),
            (Activity.host_school_id, where.only_host_school_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            created_at, registration_id = after
            query = query.where(
                or_(
                    Registration.created_at > created_at,
                    and_(Registration.created_at == created_at, Registration.id > registration_id),
                )
            )
        if limit is not None:
            query = query.limit(limit)
        return [(r, p) for r, p in self.session.execute(query).all()]

    def active_sign_ups(self, activity_id: str) -> list[Registration]:
        return list(
            self.session.scalars(
                select(Registration).where(
                    Registration.activity_id == activity_id,
                    Registration.status.in_(model.ACTIVE_STATUSES),
                )
            )
        )

    def erase_person(self, person_id: str) -> bool:
        """Delete a person and every registration of theirs; False if there was no such person."""
        person = self.session.get(Person, person_id)
        if person is None:
            return False
        self.session.query(Registration).filter_by(person_id=person_id).delete()
        self.session.delete(person)
        return True

    def participation(self) -> Iterable[tuple[Any, ...]]:
        """Every registration with the anonymous facts of its person and activity (for
        reporting's rebuild): ids, status, role, birth date, phase, municipality, the
        activity's kind and start. Streamed: a season can hold a million."""
        return self.session.execute(
            select(
                Registration.id,
                Registration.person_id,
                Registration.activity_id,
                Registration.school_id,
                Registration.status,
                Person.role,
                Person.date_of_birth,
                Person.phase,
                Person.municipality,
                Activity.kind,
                Activity.starts_at,
                Registration.attended,
            )
            .join(Person, Person.id == Registration.person_id)
            .join(Activity, Activity.id == Registration.activity_id)
            # What never reached reporting (waiting for, or refused, a parent's consent) is no fact.
            .where(Registration.status.in_(model.REPORTED_STATUSES))
            .order_by(Registration.created_at, Registration.id)
            .execution_options(yield_per=5000)
        )

    def school_pupils(
        self, school_id: str, registration_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """Of the given registrations, those of the school: the pupil's name and whether they
        have an e-mail address (for the school digest)."""
        ids = list(registration_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(Registration.id, Person.first_name, Person.last_name, Person.email)
            .join(Person, Person.id == Registration.person_id)
            .where(Registration.id.in_(ids), Registration.school_id == school_id)
        ).all()
        return {
            r.id: {"name": f"{r.first_name} {r.last_name}".strip(), "has_email": bool(r.email)}
            for r in rows
        }

    def names(self, registration_ids: Iterable[str]) -> dict[str, tuple[str, str, str]]:
        """Per registration: first name, last name, school id ('' for none)."""
        rows = self.session.execute(
            select(Registration.id, Person.first_name, Person.last_name, Registration.school_id)
            .join(Person, Person.id == Registration.person_id)
            .where(Registration.id.in_(list(registration_ids)))
        ).all()
        return {r.id: (r.first_name, r.last_name, r.school_id or "") for r in rows}

    def add_registration(
        self,
        sign_up: SignUp,
        person: Person,
        idempotency_key: str | None,
        now: datetime,
        request_hash: str | None = None,
        consent_expires_at: datetime | None = None,
    ) -> Registration:
        """The new registration, inserted (not in the session: the sign-up changes nothing of
        it afterwards; a parent's round starts with its `consent_expires_at`)."""
        registration = Registration(
            id=str(uuid.uuid4()),
            activity_id=sign_up.activity.id,
            person_id=person.id,
            school_id=person.school_id,
            status=model.RegistrationStatus.PENDING_CONSENT
            if sign_up.consent is model.Consent.PENDING
            else model.RegistrationStatus.SIGNED_UP,
            preferences=sign_up.preferences.as_dict(),
            consent=sign_up.consent,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at=now,
            consent_expires_at=consent_expires_at,
        )
        self.insert_new(registration)
        return registration

    # --- class rosters (bulk: one query to read, one statement per table to write) -----------

    def known_pupils(self, school_id: str, activity_id: str) -> list[KnownPupil]:
        """Every person of the school, with their registration for the activity (an active
        one before a cancelled one): what a roster's rows are matched against."""
        rows = self.session.execute(
            select(
                Person.id,
                Person.student_number,
                Person.first_name,
                Person.last_name,
                Person.date_of_birth,
                Person.email,
                Person.parent_email,
                Person.school_year,
                Registration.id,
                Registration.status,
                Registration.preferences,
            )
            .outerjoin(
                Registration,
                and_(
                    Registration.person_id == Person.id,
                    Registration.activity_id == activity_id,
                ),
            )
            .where(Person.school_id == school_id)
            .order_by(Person.created_at, Person.id)
        )
        pupils: dict[str, KnownPupil] = {}
        for pid, number, first, last, born, email, parent, year, rid, status, wishes in rows:
            earlier = pupils.get(pid)
            if earlier is not None and earlier.status in model.ACTIVE_STATUSES:
                continue
            pupils[pid] = KnownPupil(
                person_id=pid,
                student_number=number,
                first_name=first,
                last_name=last,
                date_of_birth=born,
                email=email,
                parent_email=parent,
                school_year=year,
                registration_id=rid,
                status=status,
                preferences=_preferences_of(wishes or {}),
            )
        return list(pupils.values())

    def insert_persons(self, persons: list[dict[str, Any]]) -> None:
        """One executemany of the table itself (the ORM's bulk insert runs per row batch)."""
        if persons:
            self.session.execute(insert(Person.__table__), persons)

    def update_persons(self, changes: list[dict[str, Any]]) -> None:
        """Bulk UPDATE by primary key: each dict has `id` and the columns to set."""
        for group in _by_columns(changes).values():
            self.session.execute(update(Person), group)

    def insert_registrations(self, registrations: list[dict[str, Any]]) -> None:
        if registrations:
            self.session.execute(insert(Registration.__table__), registrations)


def _preferences_of(stored: dict[str, Any]) -> model.Preferences:
    return model.Preferences(
        tuple(stored.get("choices") or ()), stored.get("backup"), tuple(stored.get("ranking") or ())
    )


def _by_columns(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows grouped by the columns they set: one executemany per shape."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return groups
