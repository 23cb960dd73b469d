"""Scheduling's own copy of the catalogue and of the sign-ups with their preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lob_common.db import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class ActivityCopy(Base):
    """The activity as registration published it (sessions, workshops, buses, stops)."""

    __tablename__ = "activities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sign_up_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SignUp(Base):
    """A sign-up with what the person asked for; no names (scheduling does not need them)."""

    __tablename__ = "sign_ups"

    registration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(36))
    school_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # active, cancelled
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_sign_ups_activity", "activity_id", "status"),
        Index("ix_sign_ups_person", "person_id"),
    )
