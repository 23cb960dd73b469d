"""Reporting's tables: anonymous participation facts, and the schools and activities they are
counted against.

A fact holds school, activity, date, role, phase, age band, municipality, status and attendance;
no name, contact, birth date, exact age or sign-up time. `person_id` and `registration_id`
are kept only to apply later events (cancellation, attendance, erasure); erasure removes them
and the anonymous fact stays, so the published counts do not change.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lob_common.db import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class Participation(Base):
    __tablename__ = "participation"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    registration_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    person_id: Mapped[str | None] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(String(64))
    # Kind, date and role come with the sign-up; a cancellation or attendance that arrives
    # first (events of different queues cross) leaves a fact without them until it does.
    activity_kind: Mapped[str | None] = mapped_column(String(32))
    activity_date: Mapped[date | None] = mapped_column(Date)  # local date, follows the activity
    school_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    age_band: Mapped[str | None] = mapped_column(String(8))
    phase: Mapped[str | None] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # reporting.domain.facts.Status
    attended: Mapped[bool | None]

    __table_args__ = (
        # The tables read one period for one or two roles.
        Index("ix_participation_period", "activity_date", "role"),
        Index("ix_participation_activity", "activity_id"),
        Index("ix_participation_person", "person_id"),
    )


class ParticipationCount(Base):
    """How many facts share each combination of what the tables count by: the tables read
    these (tens of thousands of rows) instead of a million facts. Kept in step with
    `participation` in the same transaction; `lob report rebuild` recounts it. Unknown values
    are stored as "" (a key column cannot be NULL)."""

    __tablename__ = "participation_counts"

    # Key order: the tables read one period and one or two roles, so the rows are kept in
    # that order (SQLite: a table without rowid, clustered on its key) and a range is read
    # straight off the key.
    activity_date: Mapped[date] = mapped_column(Date, primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    activity_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    school_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    attended: Mapped[str] = mapped_column(String(1), primary_key=True)  # "y", "n" or ""
    age_band: Mapped[str] = mapped_column(String(8), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int]

    __table_args__ = ({"sqlite_with_rowid": False},)


class School(Base):
    """The region's schools and institutions (school_registered), rows of Tabel 3a/3b."""

    __tablename__ = "schools"

    school_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(64))
    # When the applied event happened: an older event arriving late changes nothing.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Activity(Base):
    """The catalogue as announced (activity_published / activity_cancelled): table columns."""

    __tablename__ = "activities"

    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(200))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activity_date: Mapped[date | None] = mapped_column(Date)
    audience: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_school_id: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # event time
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # event time


class ErasedPerson(Base):
    """Persons erased (AVG): a sign-up of theirs that arrives after the erasure is recorded
    without the link. A random id, nothing else."""

    __tablename__ = "erased_persons"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
