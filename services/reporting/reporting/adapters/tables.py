"""Participation facts: who took part in what, without names.

`person_id`/`registration_id` are kept only to apply later events (cancellation, attendance,
erasure). Erasure removes that link; the anonymous fact stays, so the published counts stay exact.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lob_common.db import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class Participation(Base):
    __tablename__ = "participation"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    registration_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    person_id: Mapped[str | None] = mapped_column(String(36))
    activity_id: Mapped[str] = mapped_column(String(64))
    activity_kind: Mapped[str] = mapped_column(String(32))
    activity_date: Mapped[date] = mapped_column(Date)
    school_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    age: Mapped[int | None]
    phase: Mapped[str | None] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # signed_up, cancelled
    attended: Mapped[bool | None]
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_participation_activity", "activity_id", "status"),
        Index("ix_participation_person", "person_id"),
    )
