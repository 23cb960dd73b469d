"""The message outbox of notifications. No addresses or names are stored: the contact is asked
from registration at the moment of sending, so an erased person cannot be written to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lob_common.db import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_event_id: Mapped[str] = mapped_column(String(36))
    template: Mapped[str] = mapped_column(String(64))
    registration_id: Mapped[str] = mapped_column(String(36))
    person_id: Mapped[str] = mapped_column(String(36))
    activity_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # ids and titles only
    status: Mapped[str] = mapped_column(String(16))  # pending, sending, sent, failed, cancelled
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A fenced claim: the claimant's token, when it claimed, and until when its claim holds (a
    # heartbeat moves it on while the claimant works). Only the holder of the token records the
    # outcome; a claim whose lease ran out belongs to a process that died and is taken over.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(
            "source_event_id", "template", "registration_id", name="uq_messages_source_template"
        ),
        Index("ix_messages_due", "status", "next_attempt_at"),
        Index("ix_messages_person", "person_id"),
    )


class SignUp(Base):
    """Notifications' own minimal copy of a sign-up: whom an activity concerns and whether the
    sign-up still stands (checked just before sending). Ids only, no names or addresses."""

    __tablename__ = "sign_ups"

    registration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    activity_id: Mapped[str] = mapped_column(String(64), index=True)
    school_id: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # for the reminder
    status: Mapped[str] = mapped_column(String(16))  # active, cancelled
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryCount(Base):
    """Anonymous counts per kind and status of the messages of erased persons (the rows go, the
    numbers stay)."""

    __tablename__ = "delivery_counts"

    template: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class CalendarEntry(Base):
    """The SEQUENCE of a person's calendar entry for an activity (its UID is derived from the
    two ids): every invitation or cancellation takes the next number."""

    __tablename__ = "calendar_entries"

    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(default=0)


class SchoolDigest(Base):
    """Per school and activity: what the school's contact was last told (registration id ->
    where the pupil goes, no names) and whether a new digest is due."""

    __tablename__ = "school_digests"

    school_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_count: Mapped[int] = mapped_column(default=0)
