"""Scheduling's own copy of the catalogue and of the sign-ups with their preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
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
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: published before 0003
    sign_up_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    capacity: Mapped[int | None]  # seats, for kinds without a planner (None: no limit; 0004)
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
    status: Mapped[str] = mapped_column(String(16))  # a SignUpStatus
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_sign_ups_activity", "activity_id", "status"),
        Index("ix_sign_ups_person", "person_id"),
    )


class Plan(Base):
    """One computed plan of an activity. Versions count up; the newest is the one in force."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    activity_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. a bus tour's timetable

    __table_args__ = (UniqueConstraint("activity_id", "version", name="uq_plans_activity_version"),)


class Assignment(Base):
    """What one participant got in one plan: sessions per round, a workshop, or a seat."""

    __tablename__ = "assignments"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    registration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36))
    school_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # a Placement
    programme: Mapped[dict[str, Any]] = mapped_column(JSON)
    waitlist_position: Mapped[int | None]

    __table_args__ = (Index("ix_assignments_person", "person_id"),)


class Attendance(Base):
    """Who came to an activity they were booked for: the history behind no-show rates."""

    __tablename__ = "attendance"

    registration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(36))
    attended: Mapped[bool]
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_attendance_activity", "activity_id"),
        Index("ix_attendance_person", "person_id"),
    )
