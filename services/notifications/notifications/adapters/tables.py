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
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # ids and titles only
    status: Mapped[str] = mapped_column(String(16))  # pending, sending, sent, failed, cancelled
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("source_event_id", "template", name="uq_messages_source_template"),
        Index("ix_messages_due", "status", "next_attempt_at"),
        Index("ix_messages_person", "person_id"),
    )
