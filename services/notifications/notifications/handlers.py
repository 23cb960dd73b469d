"""Notifications' use cases: queue a message for an event, deliver what is due.

Delivery never holds a transaction open across the network: claim (commit) -> ask registration
for the contact -> send over SMTP -> record the outcome (commit). A message is sent once: only the
claimant sends it, and a crash between sending and recording leaves it `sending`, to be retried
after a grace period with the same Message-ID (the one case where a duplicate is possible).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from lob_common import metrics
from lob_common.contracts import Event
from lob_common.db import DatabaseHandle, UnitOfWork, idempotent, utcnow
from notifications.adapters.smtp import PermanentFailure
from notifications.adapters.tables import Message
from notifications.domain.texts import Email, render

log = logging.getLogger(__name__)

ContactLookup = Callable[[str], dict[str, Any] | None]
Sender = Callable[[Email, str], None]

SENDING_GRACE = timedelta(minutes=10)


def queue_message(
    db: DatabaseHandle, event: Event, template: str, data: dict[str, Any] | None = None
) -> str | None:
    """Create the message an event calls for; None if this event was handled before."""
    now = utcnow()
    message = Message(
        id=str(uuid.uuid4()),
        source_event_id=event.event_id,
        template=template,
        registration_id=event.payload["registration_id"],
        person_id=event.payload["person_id"],
        data=data or {},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    return message.id if _store_message(db, event, message) else None


@idempotent
def _store_message(uow: UnitOfWork, event: Event, message: Message) -> None:
    uow.session.add(message)


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes, at most 2 hours between attempts."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


def due_messages(db: DatabaseHandle, now: datetime, limit: int = 50) -> list[str]:
    with db() as uow:
        return list(
            uow.session.scalars(
                select(Message.id)
                .where(
                    or_(
                        (Message.status == "pending") & (Message.next_attempt_at <= now),
                        (Message.status == "sending") & (Message.updated_at <= now - SENDING_GRACE),
                    )
                )
                .order_by(Message.next_attempt_at)
                .limit(limit)
            )
        )


def deliver_due(
    db: DatabaseHandle,
    contacts: ContactLookup,
    send: Sender,
    max_attempts: int,
    ids: list[str] | None = None,
) -> dict[str, int]:
    """Deliver the given (or all due) messages; returns counts per outcome."""
    outcomes: dict[str, int] = {}
    for message_id in ids if ids is not None else due_messages(db, utcnow()):
        outcome = deliver(db, message_id, contacts, send, max_attempts)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def deliver(
    db: DatabaseHandle, message_id: str, contacts: ContactLookup, send: Sender, max_attempts: int
) -> str:
    claimed = _claim(db, message_id)
    if claimed is None:
        return "skipped"
    template, registration_id, data, attempts = claimed
    try:
        contact = contacts(registration_id)
        if contact is None:
            _finish(db, message_id, "cancelled", "the person or registration no longer exists")
            return "cancelled"
        email = render(template, contact, data)
        send(email, f"<{message_id}@lob-regio-eem>")
    except PermanentFailure as exc:
        _fail(db, message_id, template, str(exc))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - transient: SMTP away, registration busy, ...
        if attempts >= max_attempts:
            _fail(db, message_id, template, f"{type(exc).__name__}: {exc}")
            return "failed"
        _postpone(db, message_id, attempts, f"{type(exc).__name__}: {exc}")
        return "postponed"
    _finish(db, message_id, "sent")
    return "sent"


def _claim(db: DatabaseHandle, message_id: str) -> tuple[str, str, dict, int] | None:
    now = utcnow()
    with db() as uow:
        claimed = uow.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .where(
                or_(
                    (Message.status == "pending") & (Message.next_attempt_at <= now),
                    (Message.status == "sending") & (Message.updated_at <= now - SENDING_GRACE),
                )
            )
            .values(status="sending", attempts=Message.attempts + 1, updated_at=now)
        ).rowcount
        if not claimed:
            return None
        message = uow.session.get(Message, message_id)
        uow.commit()
        return message.template, message.registration_id, message.data, message.attempts


def _postpone(db: DatabaseHandle, message_id: str, attempts: int, error: str) -> None:
    log.warning("message %s not delivered (attempt %d): %s", message_id, attempts, error)
    with db() as uow:
        message = uow.session.get(Message, message_id)
        message.status = "pending"
        message.last_error = error[:1000]
        message.next_attempt_at = utcnow() + retry_delay(attempts)
        message.updated_at = utcnow()
        uow.commit()


def _finish(db: DatabaseHandle, message_id: str, status: str, note: str | None = None) -> None:
    with db() as uow:
        message = uow.session.get(Message, message_id)
        message.status = status
        message.updated_at = utcnow()
        message.last_error = note
        if status == "sent":
            message.sent_at = utcnow()
            uow.emit(
                "notification_sent",
                {
                    "notification_id": message.id,
                    "template": message.template,
                    "person_id": message.person_id,
                    "sent_at": message.sent_at.isoformat(),
                },
            )
        uow.commit()
        metrics.NOTIFICATIONS.labels(message.template, status).inc()


def _fail(db: DatabaseHandle, message_id: str, template: str, reason: str) -> None:
    log.error("message %s (%s) failed for good: %s", message_id, template, reason)
    with db() as uow:
        message = uow.session.get(Message, message_id)
        message.status = "failed"
        message.last_error = reason[:1000]
        message.updated_at = utcnow()
        uow.emit(
            "notification_failed",
            {
                "notification_id": message.id,
                "template": message.template,
                "person_id": message.person_id,
                "reason": reason[:500],
                "failed_at": utcnow().isoformat(),
            },
        )
        uow.commit()
        metrics.NOTIFICATIONS.labels(template, "failed").inc()


@idempotent
def forget_person(uow: UnitOfWork, event: Event) -> None:
    """Erasure: drop every message about the person (sent ones included)."""
    uow.session.query(Message).filter_by(person_id=event.payload["person_id"]).delete()
