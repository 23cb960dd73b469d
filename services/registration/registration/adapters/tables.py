"""Registration's tables (SQLAlchemy 2 ORM). Personal data lives only in `persons`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lob_common.db import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class School(Base):
    __tablename__ = "schools"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # vmbo, pro, vso, mbo, vavo, other
    municipality: Mapped[str | None] = mapped_column(String(64))
    # The school's contact (the decaan): receives the school's digest of where its pupils go.
    contact_email: Mapped[str | None] = mapped_column(String(254))


class ApiKey(Base):
    """A named, revocable API key; only the SHA-256 of the key itself is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # domain.caller.CallerRole
    school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A name stands for one key at a time; a revoked key keeps its name in the list.
        Index(
            "uq_api_keys_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


class Activity(Base):
    __tablename__ = "activities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(200), default="")
    capacity: Mapped[int | None]
    sign_up_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sign_up_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who it is for (lob_common.contracts.AUDIENCES); a sign-up's role must be among them.
    audience: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The school or mbo college that hosts it: its `host` keys read the activity's lists.
    host_school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"))
    # Counts every update: the ETag, so two operators do not overwrite each other's changes.
    version: Mapped[int] = mapped_column(default=1)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sessions, rounds, workshops, buses, stops: the structure scheduling needs, as published.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A past activity loaded with its participants (POST /activities/{id}/history): nobody
    # signs up, scheduling never plans it, notifications never mails about it.
    historical: Mapped[bool] = mapped_column(default=False)


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # None only for a pupil a school signed up by roster without an address (its legal basis).
    email: Mapped[str | None] = mapped_column(String(254))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"))
    school_year: Mapped[int | None]
    municipality: Mapped[str | None] = mapped_column(String(64))
    phase: Mapped[str | None] = mapped_column(String(16))
    parent_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Who this person is within their school (adapters.repository.identity_key): one record per
    # person per school, so a sign-up from one school never matches another school's pupil,
    # and two identical sign-ups at once cannot make two records.
    identity_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The school's own number for a pupil (Stamnummer), from a class roster: a re-upload finds
    # the same pupil by it (digits without leading zeros, as domain.roster reads it).
    student_number: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_persons_email", "email"),
        Index("ix_persons_school_student_number", "school_id", "student_number"),
    )


# A sign-up that holds a place: signed up, or waiting for a parent's consent.
ACTIVE_STATUSES_SQL = "status IN ('signed_up', 'pending_consent')"


class Registration(Base):
    __tablename__ = "registrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"))
    status: Mapped[str] = mapped_column(String(16))  # domain.model.RegistrationStatus
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    consent: Mapped[str] = mapped_column(String(16))  # domain.model.Consent
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # SHA-256 of the request that used the Idempotency-Key: the same key with another request
    # is refused instead of answered with this registration.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the data may be processed when it is not the person's own sign-up (with a parent's
    # consent under 16): "school" for a pupil the school signed up by class roster
    # (domain.model.LegalBasis); NULL for other sign-ups.
    legal_basis: Mapped[str | None] = mapped_column(String(16))
    # Parental consent (docs/consent.md): until when the parent may answer, when they did, and
    # when the person's data is erased after a refusal (a grace, so the outcome mail can go).
    consent_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erase_after: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Attendance on the day: None until recorded; each change is an attendance_recorded event.
    attended: Mapped[bool | None] = mapped_column(Boolean)
    attendance_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_registrations_idempotency_key"),
        Index("ix_registrations_activity_person", "activity_id", "person_id"),
        # At most one active sign-up per person and activity, also when two arrive at once.
        Index(
            "uq_registrations_active_activity_person",
            "activity_id",
            "person_id",
            unique=True,
            sqlite_where=text(ACTIVE_STATUSES_SQL),
            postgresql_where=text(ACTIVE_STATUSES_SQL),
        ),
        # The lists page through registrations in this order.
        Index("ix_registrations_created_at_id", "created_at", "id"),
    )


class HistoricalParticipant(Base):
    """One participant of a historical activity as an operator loaded it: anonymous (no person,
    no name, no birth date), only what the region's tables count. `import_key` is the caller's
    key for the participant, so loading the same list again changes nothing."""

    __tablename__ = "historical_participants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    import_key: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    school_id: Mapped[str | None] = mapped_column(ForeignKey("schools.id"))
    age_band: Mapped[str | None] = mapped_column(String(8))
    phase: Mapped[str | None] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(64))
    attended: Mapped[bool | None]
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("activity_id", "import_key", name="uq_historical_participants_key"),
    )


class AccessToken(Base):
    """A link a person opens without a key (a parent's consent link, a participant's personal
    link): only the SHA-256 of the random token is stored, with what it is for and until when."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # domain.links.LinkPurpose
    registration_id: Mapped[str] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnonymousRegistration(Base):
    """What stays of a registration when its person is erased: the anonymous facts the counts
    need (no name, contact, birth date or student number), so reports survive an erasure."""

    __tablename__ = "anonymous_registrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the registration's id
    person_id: Mapped[str] = mapped_column(String(36), index=True)  # a random id, now unlinked
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"), index=True)
    school_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    age_band: Mapped[str | None] = mapped_column(String(8))
    phase: Mapped[str | None] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    consent: Mapped[str] = mapped_column(String(16))
    attended: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
