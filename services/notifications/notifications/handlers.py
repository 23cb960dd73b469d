"""Notifications' use cases: queue the messages an event calls for, deliver what is due.

Delivery never holds a transaction open across the network: claim (commit) -> ask registration
for the contact -> send over SMTP -> record the outcome (commit).

Never twice, never lost:
- A claim is fenced: the claimant writes a fresh token and a lease; a heartbeat moves the lease
  on while it works; only the holder of the token records the outcome. A claim whose lease ran
  out belongs to a process that died: the timer takes it over (with a log line saying so) well
  within a minute, and sends with the same Message-ID.
- Once the SMTP server has accepted a message, recording "sent" is retried (tenacity) until the
  database is back; the message is never sent again by this process. Other processes do not take
  over claims while their own database access has just been failing (`RECLAIM_SETTLE`): a claim
  that expired during a database outage belongs to a process that is likely recording it now.
- Just before sending, the current state is checked: a message for a sign-up (or an activity)
  cancelled in the meantime is not sent.
- SMTP 5xx is permanent (failed at once), 4xx and connection trouble retry with back-off; after
  the last attempt the message is failed and `notification_failed` is emitted.
- No address or name reaches a log line or `last_error`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import tenacity
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError, IntegrityError

from lob_common import metrics
from lob_common.contracts import Event, payload_json
from lob_common.db import DatabaseHandle, UnitOfWork, idempotent, idempotent_batch, utcnow
from notifications.adapters.smtp import PermanentFailure, TransientFailure, without_addresses
from notifications.adapters.tables import (
    CalendarEntry,
    DeliveryCount,
    Message,
    SchoolDigest,
    SignUp,
)
from notifications.domain.texts import Email, NoAddress, programme_summary, render

log = logging.getLogger(__name__)

ContactLookup = Callable[..., dict[str, Any] | None]
Sender = Callable[[Email, str], None]
T = TypeVar("T")

# Kinds that are still sent after the sign-up was cancelled (they are about the cancellation).
SENT_AFTER_CANCELLATION = frozenset(
    {
        "sign_up_cancelled",
        "activity_cancelled",
        "consent_refused_parent",
        "consent_refused_pupil",
        "consent_given_parent",
    }
)
# Kinds not about one registration: their contact is looked up from the message's data.
GROUP_KINDS = frozenset({"school_digest", "operator_failures"})
DIGEST_DELAY = timedelta(seconds=60)  # lets the pupils' programme events arrive first
# Kinds that carry a calendar invitation (REQUEST) or its cancellation (CANCEL).
CALENDAR_KINDS = frozenset(
    {
        "sign_up_confirmation",
        "programme_assigned",
        "programme_changed",
        "sign_up_cancelled",
        "activity_cancelled",
        "consent_refused_pupil",
    }
)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    # How long a claim holds without a heartbeat; a dead process's message is taken over after
    # this (plus at most one timer interval).
    lease: timedelta = timedelta(seconds=40)
    # How long to keep trying to record the outcome of a sent message while the database is away.
    record_patience: timedelta = timedelta(hours=6)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeliveryPolicy:
        return cls(
            max_attempts=int(config.get("MAIL_MAX_ATTEMPTS", 8)),
            lease=timedelta(seconds=float(config.get("MAIL_CLAIM_LEASE_SECONDS", 40))),
            record_patience=timedelta(
                seconds=float(config.get("MAIL_RECORD_PATIENCE_SECONDS", 6 * 3600))
            ),
        )


# --- database trouble, as this process saw it ---------------------------------------------------

RECLAIM_SETTLE = 10.0  # seconds of working database access before claims are taken over
_last_db_trouble = [float("-inf")]


def note_db_trouble() -> None:
    _last_db_trouble[0] = time.monotonic()


def reclaims_allowed() -> bool:
    return time.monotonic() - _last_db_trouble[0] >= RECLAIM_SETTLE


def _db_retry(what: str, subject: str, patience: timedelta) -> tenacity.Retrying:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        note_db_trouble()
        error = state.outcome.exception() if state.outcome else None
        if state.attempt_number == 1:
            log.warning(
                "%s: %s waits for the database (%s); retrying until it is back",
                subject,
                what,
                type(error).__name__,
            )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((DBAPIError, OSError)),
        wait=tenacity.wait_exponential_jitter(multiplier=0.2, max=2.0),
        stop=tenacity.stop_after_delay(patience.total_seconds()),
        before_sleep=before_sleep,
        reraise=True,
    )


def _persist(what: str, subject: str, patience: timedelta, action: Callable[[], T]) -> T:
    for attempt in _db_retry(what, subject, patience):
        with attempt:
            result = action()
            if attempt.retry_state.attempt_number > 1:
                log.info("%s: %s done now that the database is back", subject, what)
            return result
    raise AssertionError("unreachable")  # pragma: no cover


# --- queueing ----------------------------------------------------------------------------------


def new_message(
    event: Event,
    template: str,
    data: dict[str, Any] | None = None,
    registration_id: str | None = None,
    person_id: str | None = None,
    activity_id: str | None = None,
) -> Message:
    payload = event.payload
    return pending_message(
        source_event_id=event.event_id,
        template=template,
        registration_id=registration_id or payload["registration_id"],
        person_id=person_id or payload["person_id"],
        activity_id=activity_id or payload.get("activity_id"),
        data=data or {},
    )


def pending_message(
    *,
    source_event_id: str,
    template: str,
    registration_id: str,
    person_id: str,
    data: dict[str, Any],
    activity_id: str | None = None,
) -> Message:
    """A message waiting for its first attempt, due now."""
    now = utcnow()
    return Message(
        id=str(uuid.uuid4()),
        source_event_id=source_event_id,
        template=template,
        registration_id=registration_id,
        person_id=person_id,
        activity_id=activity_id,
        data=data,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def queue_programme_messages(db: DatabaseHandle, events: list[Event], template: str) -> list[str]:
    """`programme_assigned`, `programme_changed` or `waitlisted` in batches (lob_common.batch;
    an info day's publication brings one per pupil at once): each event's message, all in one
    transaction with one claim query; a redelivered event queues nothing. A message keeps its
    event's payload (the text needs it), a change also the programme told before, and a school
    that had its digest hears of it in the next one. The ids of the new messages, to hand to
    the sending loop once committed."""
    ids: list[str] = []
    _store_programme_messages(db, events, template, ids)
    return ids


@idempotent_batch
def _store_programme_messages(
    uow: UnitOfWork, events: list[Event], template: str, ids: list[str]
) -> None:
    for event in events:  # in order: a later change compares with the one before it
        message = new_message(event, template, payload_json(event))
        _remember_sign_up(uow, event.payload, active=False)
        if template == "programme_changed":
            previous = _last_programme(uow, message.registration_id)
            message.data = {**message.data, "previous": previous}
        _digest_due_again(uow, message.registration_id)
        _add(uow, message)
        ids.append(message.id)


def queue_sign_up_confirmations(db: DatabaseHandle, events: list[Event]) -> list[str]:
    """`signed_up` in batches (lob_common.batch): the confirmation of each sign-up not seen
    before, in one transaction with one claim query; a redelivered event queues nothing. The ids
    of the new messages, to hand to the sending loop once committed."""
    ids: list[str] = []
    _store_sign_ups(db, events, ids)
    return ids


@idempotent_batch
def _store_sign_ups(uow: UnitOfWork, events: list[Event], ids: list[str]) -> None:
    """The confirmations of many `signed_up`: the sign-ups and calendar entries they touch
    read in one query each, the new rows written by one flush at the commit."""
    messages = [new_message(event, "sign_up_confirmation") for event in events]
    registrations = sorted({m.registration_id for m in messages})
    sign_ups = {
        row.registration_id: row
        for row in uow.session.scalars(
            select(SignUp).where(SignUp.registration_id.in_(registrations))
        )
    }
    entries: dict[tuple[str, str], CalendarEntry] = {}
    keys = {(m.person_id, m.activity_id) for m in messages if m.activity_id}
    if keys:
        rows = uow.session.scalars(
            select(CalendarEntry).where(
                CalendarEntry.person_id.in_(sorted({p for p, _ in keys})),
                CalendarEntry.activity_id.in_(sorted({a for _, a in keys})),
            )
        )
        entries = {(row.person_id, row.activity_id): row for row in rows}
    for event, message in zip(events, messages, strict=True):
        _remember_sign_up(uow, event.payload, active=True, sign_ups=sign_ups)
        _add(uow, message, entries=entries)
        ids.append(message.id)


def _digest_due_again(uow: UnitOfWork, registration_id: str) -> None:
    """A school that had its digest hears of a later change in the next one."""
    sign_up = uow.session.get(SignUp, registration_id)
    if sign_up is None or not sign_up.school_id:
        return
    digest = uow.session.get(SchoolDigest, (sign_up.school_id, sign_up.activity_id))
    if digest is not None and digest.sent_count and digest.due_at is None:
        digest.due_at = utcnow() + DIGEST_DELAY


@idempotent
def request_digests(uow: UnitOfWork, event: Event, delay: timedelta = DIGEST_DELAY) -> None:
    """An activity's programmes are published (or republished): each school with pupils in it
    gets its digest once the pupils' programme events are in."""
    activity_id = event.payload["activity_id"]
    schools = uow.session.scalars(
        select(SignUp.school_id)
        .where(SignUp.activity_id == activity_id, SignUp.school_id.is_not(None))
        .distinct()
    ).all()
    for school_id in schools:
        digest = uow.session.get(SchoolDigest, (school_id, activity_id))
        if digest is None:
            digest = SchoolDigest(
                school_id=school_id, activity_id=activity_id, snapshot={}, sent_count=0
            )
            uow.session.add(digest)
        digest.due_at = utcnow() + delay


def _where_to(uow: UnitOfWork, registration_id: str) -> str:
    data = uow.session.scalars(
        select(Message.data)
        .where(
            Message.registration_id == registration_id,
            Message.template.in_(("programme_assigned", "programme_changed", "waitlisted")),
        )
        .order_by(Message.created_at.desc())
        .limit(1)
    ).first()
    return programme_summary(data)


def queue_due_digests(db: DatabaseHandle, now: datetime) -> list[str]:
    """One message per school whose digest is due: every pupil of the school in the activity and
    where each goes, and what changed since the last digest (nothing new: no mail)."""
    ids: list[str] = []
    with db() as uow:
        due = uow.session.scalars(
            select(SchoolDigest).where(SchoolDigest.due_at <= now).with_for_update()
        ).all()
        for digest in due:
            digest.due_at = None
            pupils = uow.session.scalars(
                select(SignUp.registration_id).where(
                    SignUp.activity_id == digest.activity_id,
                    SignUp.school_id == digest.school_id,
                    SignUp.status == "active",
                )
            ).all()
            lines = {rid: _where_to(uow, rid) for rid in pupils}
            old = dict(digest.snapshot or {})
            changes = {
                "new": sorted(r for r in lines if r not in old) if digest.sent_count else [],
                "changed": sorted(r for r in lines if r in old and old[r] != lines[r]),
                "gone": sorted(r for r in old if r not in lines),
            }
            if digest.sent_count and not any(changes.values()):
                continue
            key = f"digest/{digest.school_id}/{digest.activity_id}/{digest.sent_count}"
            message = pending_message(
                source_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
                template="school_digest",
                registration_id=str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"{digest.school_id}/{digest.activity_id}")
                ),
                person_id="",
                activity_id=digest.activity_id,
                data={
                    "school_id": digest.school_id,
                    "activity_id": digest.activity_id,
                    "lines": lines,
                    "changes": changes,
                    "previous": {r: old[r] for r in changes["changed"] + changes["gone"]},
                },
            )
            uow.session.add(message)
            ids.append(message.id)
            digest.snapshot = lines
            digest.sent_count += 1
        try:
            uow.commit()
        except IntegrityError:  # another replica did it at the same moment
            return []
    return ids


def queue_operator_summary(db: DatabaseHandle, now: datetime) -> str | None:
    """Once a day: the failed deliveries of the last 24 hours per kind and reason (no
    addresses); nothing when there were none."""
    with db() as uow:
        failed = uow.session.execute(
            select(Message.template, Message.last_error).where(
                Message.status == "failed", Message.updated_at > now - timedelta(days=1)
            )
        ).all()
        if not failed:
            return None
        counts: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for template, error in failed:
            counts[template] = counts.get(template, 0) + 1
            reason = without_addresses(error or "")[:200]
            reasons[reason] = reasons.get(reason, 0) + 1
        day = now.date().isoformat()
        message = pending_message(
            source_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"operator/{day}")),
            template="operator_failures",
            registration_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "operator")),
            person_id="",
            data={"day": day, "total": len(failed), "counts": counts, "reasons": reasons},
        )
        uow.session.add(message)
        try:
            uow.commit()
        except IntegrityError:  # today's summary exists already
            return None
        return message.id


PROGRAMME_FIELDS = ("sessions", "workshop", "seat", "itinerary")


def _last_programme(uow: UnitOfWork, registration_id: str) -> dict[str, Any] | None:
    """The programme the person was last told about (to say what changed)."""
    data = uow.session.scalars(
        select(Message.data)
        .where(
            Message.registration_id == registration_id,
            Message.template.in_(("programme_assigned", "programme_changed")),
        )
        .order_by(Message.created_at.desc())
        .limit(1)
    ).first()
    if not data:
        return None
    return {key: data.get(key) for key in PROGRAMME_FIELDS}


def queue_many(
    db: DatabaseHandle, event: Event, templates: list[str], void_sign_up: bool = False
) -> list[str]:
    """Several messages from one event (e.g. to the parent and to the pupil), at most once."""
    ids: list[str] = []
    _store_many(db, event, templates, void_sign_up, ids)
    return ids


@idempotent
def _store_many(
    uow: UnitOfWork, event: Event, templates: list[str], void_sign_up: bool, ids: list[str]
) -> None:
    payload = event.payload
    if not payload.get("registration_id"):
        return  # nothing to write about (a consent without a registration)
    known = uow.session.get(SignUp, payload["registration_id"])
    if payload.get("activity_id"):
        _remember_sign_up(uow, payload, active=False)
        known = uow.session.get(SignUp, payload["registration_id"])
    if void_sign_up and known is not None:
        known.status = "cancelled"
        known.updated_at = utcnow()
        _cancel_pending(
            uow,
            Message.registration_id == payload["registration_id"],
            "the sign-up is void: no consent",
        )
    data = {key: str(value) for key, value in payload.items() if key.endswith("_at")}
    if payload.get("reason"):
        data["reason"] = payload["reason"]
    for template in templates:
        message = new_message(
            event,
            template,
            dict(data),
            activity_id=payload.get("activity_id") or (known.activity_id if known else None),
        )
        _add(uow, message)
        ids.append(message.id)


def _add(
    uow: UnitOfWork,
    message: Message,
    entries: dict[tuple[str, str], CalendarEntry] | None = None,
) -> None:
    """Queue a message; one with a calendar entry takes the entry's next SEQUENCE now, in the
    transaction of the event, so every later invitation for the person and activity is higher.
    `entries`: a batch's calendar entries, read beforehand (kept up to date here)."""
    if message.template in CALENDAR_KINDS and message.activity_id:
        key = (message.person_id, message.activity_id)
        entry = uow.session.get(CalendarEntry, key) if entries is None else entries.get(key)
        if entry is None:
            entry = CalendarEntry(person_id=key[0], activity_id=key[1], sequence=-1)
            uow.session.add(entry)
            if entries is not None:
                entries[key] = entry
        entry.sequence += 1
        message.data = {**(message.data or {}), "sequence": entry.sequence}
    uow.session.add(message)


def _remember_sign_up(
    uow: UnitOfWork,
    payload: dict[str, Any],
    active: bool,
    sign_ups: dict[str, SignUp] | None = None,
) -> None:
    """Keep notifications' minimal copy of the sign-up (a later event never revives a
    cancelled one; a `signed_up` is the sign-up itself). `sign_ups`: a batch's copies, read
    beforehand (kept up to date here)."""
    if not payload.get("registration_id") or not payload.get("activity_id"):
        return
    registration_id = payload["registration_id"]
    known = (
        uow.session.get(SignUp, registration_id)
        if sign_ups is None
        else sign_ups.get(registration_id)
    )
    if known is None:
        known = SignUp(
            registration_id=registration_id,
            person_id=payload["person_id"],
            activity_id=payload["activity_id"],
            school_id=payload.get("school_id"),
            starts_at=payload.get("activity_starts_at"),
            status="active",
            updated_at=utcnow(),
        )
        uow.session.add(known)
        if sign_ups is not None:
            sign_ups[registration_id] = known
    elif active:
        known.school_id = payload.get("school_id") or known.school_id
        known.starts_at = payload.get("activity_starts_at") or known.starts_at


def _cancel_pending(uow: UnitOfWork, condition: Any, reason: str) -> int:
    """Messages not yet claimed that the cancellation makes pointless are not sent."""
    return uow.session.execute(
        update(Message)
        .where(condition)
        .where(Message.status == "pending")
        .where(Message.template.not_in(SENT_AFTER_CANCELLATION))
        .values(status="cancelled", last_error=reason, updated_at=utcnow())
    ).rowcount


def queue_sign_up_cancelled(db: DatabaseHandle, event: Event) -> list[str]:
    """The sign-up is void: nothing still queued for it goes out; the person gets one
    confirmation of the cancellation."""
    ids: list[str] = []
    _store_cancellation(db, event, ids)
    return ids


@idempotent
def _store_cancellation(uow: UnitOfWork, event: Event, ids: list[str]) -> None:
    payload = event.payload
    _remember_sign_up(uow, payload, active=False)
    uow.session.get(SignUp, payload["registration_id"]).status = "cancelled"
    _cancel_pending(
        uow,
        Message.registration_id == payload["registration_id"],
        "the sign-up was cancelled before sending",
    )
    message = new_message(event, "sign_up_cancelled")
    _add(uow, message)
    ids.append(message.id)


def queue_activity_cancelled(db: DatabaseHandle, event: Event) -> list[str]:
    """The region called the activity off: every participant of it is told, once."""
    ids: list[str] = []
    _store_activity_cancellation(db, event, ids)
    return ids


@idempotent
def _store_activity_cancellation(uow: UnitOfWork, event: Event, ids: list[str]) -> None:
    activity_id = event.payload["activity_id"]
    sign_ups = uow.session.scalars(
        select(SignUp).where(SignUp.activity_id == activity_id, SignUp.status == "active")
    ).all()
    _cancel_pending(
        uow, Message.activity_id == activity_id, "the activity was cancelled before sending"
    )
    for sign_up in sign_ups:
        sign_up.status = "cancelled"
        sign_up.updated_at = utcnow()
        message = new_message(
            event,
            "activity_cancelled",
            {"reason": event.payload.get("reason", "")},
            registration_id=sign_up.registration_id,
            person_id=sign_up.person_id,
            activity_id=activity_id,
        )
        _add(uow, message)
        ids.append(message.id)


def queue_reminders(db: DatabaseHandle, now: datetime, ahead: timedelta) -> list[str]:
    """A reminder for every active sign-up whose activity starts within `ahead`: once per person
    and activity (a re-sign-up does not bring a second one)."""
    ids: list[str] = []
    with db() as uow:
        reminded = select(Message.id).where(
            Message.template == "reminder",
            Message.person_id == SignUp.person_id,
            Message.activity_id == SignUp.activity_id,
        )
        due = uow.session.scalars(
            select(SignUp).where(
                SignUp.status == "active",
                SignUp.starts_at > now,
                SignUp.starts_at <= now + ahead,
                ~reminded.exists(),
            )
        ).all()
        for sign_up in due:
            key = f"reminder/{sign_up.person_id}/{sign_up.activity_id}"
            message = pending_message(
                source_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
                template="reminder",
                registration_id=sign_up.registration_id,
                person_id=sign_up.person_id,
                activity_id=sign_up.activity_id,
                data=_last_programme(uow, sign_up.registration_id) or {},
            )
            uow.session.add(message)
            ids.append(message.id)
        try:
            uow.commit()
        except IntegrityError:  # another replica queued them at the same moment
            return []
    if ids:
        log.info("%d reminder(s) queued", len(ids))
    return ids


# --- delivering --------------------------------------------------------------------------------

_BACKOFF = tenacity.wait_exponential(multiplier=60, max=7200) + tenacity.wait_random(0, 15)


def retry_delay(attempts: int, backoff: Any = _BACKOFF) -> timedelta:
    """About 1, 2, 4, ... minutes (tenacity's exponential back-off), at most 2 hours."""
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = max(attempts, 1)
    return timedelta(seconds=backoff(state))


# A failed contact lookup (registration or the broker away, mostly for seconds): 5 s, 20 s,
# 80 s, ~5 min, ~21 min, ... at most 2 hours, so the attempts still last hours in all.
_LOOKUP_BACKOFF = tenacity.wait_exponential(multiplier=5, exp_base=4, max=7200) + (
    tenacity.wait_random(0, 2)
)


def lookup_retry_delay(attempts: int) -> timedelta:
    """When to try again after the contact lookup failed: seconds at first, then backing off."""
    return retry_delay(attempts, _LOOKUP_BACKOFF)


def _stale_claim(now: datetime, lease: timedelta) -> Any:
    return (Message.status == "sending") & or_(
        Message.lease_until <= now,
        and_(Message.lease_until.is_(None), Message.updated_at <= now - lease),
    )


def _due(now: datetime) -> Any:
    return (Message.status == "pending") & (Message.next_attempt_at <= now)


def due_messages(
    db: DatabaseHandle, now: datetime, policy: DeliveryPolicy | None = None, limit: int = 50
) -> list[str]:
    policy = policy or DeliveryPolicy()
    condition = _due(now)
    if reclaims_allowed():
        condition = or_(condition, _stale_claim(now, policy.lease))
    with db() as uow:
        return list(
            uow.session.scalars(
                select(Message.id).where(condition).order_by(Message.next_attempt_at).limit(limit)
            )
        )


def observe_sending(db: DatabaseHandle) -> tuple[int, float]:
    """Set the gauges of messages in `sending` and the age of the oldest claim."""
    with db() as uow:
        count, oldest = uow.session.execute(
            select(func.count(), func.min(Message.claimed_at)).where(Message.status == "sending")
        ).one()
    age = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:  # SQLite's MIN() bypasses the column type
            from datetime import UTC

            oldest = oldest.replace(tzinfo=UTC)
        age = max((utcnow() - oldest).total_seconds(), 0.0)
    metrics.NOTIFICATIONS_SENDING.set(count)
    metrics.NOTIFICATIONS_SENDING_OLDEST_SECONDS.set(age)
    return count, age


ContactsLookup = Callable[[list[str]], dict[str, dict[str, Any] | None]]
# Per registration: its contact, None (erased), or why the lookup failed.
Found = dict[str, dict[str, Any] | Exception | None]

BATCH_SIZE = 50  # messages claimed in one statement and sent over one SMTP connection
# The outcomes of a batch are committed together: before the next send once the oldest has
# waited this long, and at the end of the batch. A crash between the SMTP server's 250 and that
# commit sends again (same Message-ID), so the window stays short even when the sending-rate
# limit spreads a batch over seconds.
RECORD_WITHIN = 0.1  # seconds
# A batch reads its sign-ups again before sending when this long has passed since the last
# read, so a cancellation that arrives while the batch is under way still stops its mail.
RECHECK_AFTER = 0.5  # seconds


def deliver_due(
    db: DatabaseHandle,
    contacts: ContactLookup,
    send: Sender,
    policy: DeliveryPolicy | int,
    ids: list[str] | None = None,
    contacts_many: ContactsLookup | None = None,
    pace: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Deliver the given (or all due) messages in batches; returns counts per outcome.
    `pace` (the sending-rate limit's wait) is called before each send."""
    if isinstance(policy, int):
        policy = DeliveryPolicy(max_attempts=policy)
    outcomes: dict[str, int] = {}
    if ids is None:
        try:
            ids = due_messages(db, utcnow(), policy, limit=BATCH_SIZE)
        except DBAPIError:
            note_db_trouble()
            raise
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        delivered = deliver_batch(db, chunk, contacts, send, policy, contacts_many, pace)
        for outcome in delivered.values():
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def deliver(
    db: DatabaseHandle,
    message_id: str,
    contacts: ContactLookup,
    send: Sender,
    policy: DeliveryPolicy | int,
) -> str:
    """One message (a batch of one): sent, postponed, failed, cancelled or skipped."""
    if isinstance(policy, int):
        policy = DeliveryPolicy(max_attempts=policy)
    return deliver_batch(db, [message_id], contacts, send, policy)[message_id]


@dataclass(frozen=True)
class Claim:
    message_id: str
    token: str
    template: str
    registration_id: str
    person_id: str
    data: dict[str, Any]
    attempts: int
    cancelled_because: str | None


def deliver_batch(
    db: DatabaseHandle,
    ids: list[str],
    contacts: ContactLookup,
    send: Sender,
    policy: DeliveryPolicy,
    contacts_many: ContactsLookup | None = None,
    pace: Callable[[], None] | None = None,
) -> dict[str, str]:
    """Claim the messages in one statement (a fencing token and a lease per message), ask for
    their contacts at once, render and send each (one SMTP connection: `send`'s), and record the
    outcomes a few at a time. Returns the outcome per message id ('skipped': not ours)."""
    outcomes = dict.fromkeys(ids, "skipped")
    claims = _claim_batch(db, ids, policy.lease)
    if not claims:
        return outcomes
    batch = _Batch(db, claims, policy, pace)
    with batch.heartbeat():
        found = _contacts_of(claims, contacts, contacts_many)
        for claim in claims:
            outcomes[claim.message_id] = _deliver_claim(batch, claim, found, contacts, send)
            if batch.stopped:
                break
        batch.record_now()
    return outcomes


def _contacts_of(
    claims: list[Claim], contacts: ContactLookup, contacts_many: ContactsLookup | None
) -> Found:
    """The contact of every registration of the batch (one question when `contacts_many` is
    given); a lookup that failed is the exception, for each of its messages."""
    wanted = sorted(
        {
            claim.registration_id
            for claim in claims
            if claim.template not in GROUP_KINDS and not claim.cancelled_because
        }
    )
    if not wanted:
        return {}
    if contacts_many is None:
        found: Found = {}
        for registration_id in wanted:
            try:
                found[registration_id] = contacts(registration_id)
            except Exception as exc:  # noqa: BLE001 - recorded per message as transient
                found[registration_id] = exc
        return found
    try:
        many = contacts_many(wanted)
    except Exception as exc:  # noqa: BLE001 - registration busy or away: every message waits
        return dict.fromkeys(wanted, exc)
    return {registration_id: many.get(registration_id) for registration_id in wanted}


def _deliver_claim(
    batch: _Batch,
    claim: Claim,
    found: Found,
    contacts: ContactLookup,
    send: Sender,
) -> str:
    if claim.cancelled_because:
        return batch.record(claim, "cancelled", claim.cancelled_because)
    message_id = claim.message_id
    sending = False
    try:
        if claim.template in GROUP_KINDS:
            contact = contacts(claim.registration_id, claim.template, claim.data)
        else:
            contact = found.get(claim.registration_id)
            if isinstance(contact, Exception):
                raise contact
        if contact is None:
            return batch.record(claim, "cancelled", "the person or registration no longer exists")
        if contact.get("status") == "cancelled" and claim.template not in SENT_AFTER_CANCELLATION:
            return batch.record(claim, "cancelled", "the sign-up was cancelled before sending")
        try:
            email = render(claim.template, contact, claim.data)
        except NoAddress:
            return batch.record(claim, "cancelled", "no address for this kind of mail")
        if batch.pace is not None:
            batch.pace()  # the rate limit's wait first: what was sent meanwhile gets committed
        batch.record_if_due()
        # Just before sending: the claim is still ours, the sign-up still stands.
        if not batch.still_ours(claim):
            return "skipped"
        reason = batch.cancelled_now(claim)
        if reason:
            return batch.record(claim, "cancelled", reason)
        sending = True
        send(email, f"<{message_id}@lob-regio-eem>")
    except PermanentFailure as exc:
        return batch.record(claim, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - transient: SMTP away, registration busy, ...
        if isinstance(exc, DBAPIError):
            note_db_trouble()
            batch.stopped = True
        error = str(exc) if isinstance(exc, TransientFailure) else f"{type(exc).__name__}: {exc}"
        if claim.attempts >= batch.policy.max_attempts:
            return batch.record(claim, "failed", error)
        # Registration or the broker away (the lookup before sending): back in seconds.
        retry_in = None if sending else lookup_retry_delay(claim.attempts)
        return batch.record(claim, "postponed", error, retry_in)
    # The SMTP server has the message: from here on it is never sent again by this process;
    # recording it waits for the database as long as it takes.
    return batch.record(claim, "sent")


def _claim_batch(db: DatabaseHandle, ids: list[str], lease: timedelta) -> list[Claim]:
    """One UPDATE claims whichever of the messages are due (or whose claim went stale): each
    gets its own token and a lease; the sign-ups are read in the same transaction."""
    if not ids:
        return []
    now = utcnow()
    tokens = {message_id: str(uuid.uuid4()) for message_id in ids}
    with db() as uow:
        before = {
            row.id: row
            for row in uow.session.execute(
                select(
                    Message.id,
                    Message.status,
                    Message.lease_until,
                    Message.updated_at,
                    Message.attempts,
                ).where(Message.id.in_(ids))
            )
        }
        if not before:
            return []
        # The rows this UPDATE wrote are the ones claimed, each with our token.
        rows = uow.session.execute(
            update(Message)
            .where(Message.id.in_(list(before)))
            .where(or_(_due(now), _stale_claim(now, lease)))
            .values(
                status="sending",
                attempts=Message.attempts + 1,
                claim_token=case(tokens, value=Message.id),
                claimed_at=now,
                lease_until=now + lease,
                updated_at=now,
            )
            .returning(
                Message.id,
                Message.template,
                Message.registration_id,
                Message.person_id,
                Message.data,
                Message.attempts,
                Message.claim_token,
            )
            .execution_options(synchronize_session=False)
        ).all()
        if not rows:
            return []
        mine = [row for row in rows if row.claim_token == tokens[row.id]]
        cancelled = _cancelled_sign_ups(uow, {row.registration_id for row in mine})
        uow.commit()
    order = {message_id: n for n, message_id in enumerate(ids)}
    claims = []
    for row in sorted(mine, key=lambda r: order[r.id]):
        previous = before[row.id]
        if previous.status == "sending":
            _log_takeover(row.id, row.template, previous, now)
        claims.append(
            Claim(
                message_id=row.id,
                token=row.claim_token,
                template=row.template,
                registration_id=row.registration_id,
                person_id=row.person_id,
                data=dict(row.data or {}),
                attempts=row.attempts,
                cancelled_because=(
                    "the sign-up was cancelled before sending"
                    if row.registration_id in cancelled
                    and row.template not in SENT_AFTER_CANCELLATION
                    else None
                ),
            )
        )
    return claims


def _claim(db: DatabaseHandle, message_id: str, lease: timedelta) -> Claim | None:
    claims = _claim_batch(db, [message_id], lease)
    return claims[0] if claims else None


def _log_takeover(message_id: str, template: str, previous: Any, now: datetime) -> None:
    metrics.NOTIFICATIONS_RECLAIMED.inc()
    expired = previous.lease_until or previous.updated_at
    log.warning(
        "message %s (%s): attempt %d was claimed but its claim expired %.0f s ago with no "
        "outcome recorded (the process stopped or lost the database); taking it over and "
        "sending with the same Message-ID",
        message_id,
        template,
        previous.attempts,
        (now - expired).total_seconds(),
    )


def _cancelled_sign_ups(uow: UnitOfWork, registration_ids: set[str]) -> set[str]:
    if not registration_ids:
        return set()
    return set(
        uow.session.scalars(
            select(SignUp.registration_id).where(
                SignUp.registration_id.in_(sorted(registration_ids)),
                SignUp.status == "cancelled",
            )
        )
    )


@dataclass
class _Record:
    claim: Claim
    status: str  # sent, cancelled, postponed, failed
    note: str | None
    retry_in: timedelta | None = None  # postponed: when to try again (None: retry_delay)


class _Batch:
    """A claimed batch at work: its leases (one heartbeat for all), which claims are still
    ours, the sign-ups' current state, and the outcomes waiting to be committed."""

    def __init__(
        self,
        db: DatabaseHandle,
        claims: list[Claim],
        policy: DeliveryPolicy,
        pace: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.policy = policy
        self.pace = pace
        self.claims = {claim.message_id: claim for claim in claims}
        self.open = set(self.claims)  # claimed, no outcome recorded yet
        self.lost: set[str] = set()
        self.stopped = False
        now = time.monotonic()
        self._lock = threading.Lock()
        self._held_until = now + policy.lease.total_seconds()  # what our last write set
        self._checked_at = now
        self._cancelled: set[str] = set()
        self._records: list[_Record] = []
        self._oldest_record = 0.0

    # --- the leases ---------------------------------------------------------------------------

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Move the leases of the open claims on while the batch works (contacts, SMTP)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.policy.lease.total_seconds() / 4):
                try:
                    self._renew()
                except DBAPIError:  # the leases simply are not extended; outcomes are fenced
                    note_db_trouble()

        first = next(iter(self.claims))
        thread = threading.Thread(target=beat, name=f"lease-{first}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()

    def _renew(self) -> None:
        """Extend the leases of the claims still ours (fenced by their tokens) and learn which
        ones another process took over."""
        with self._lock:
            ids = sorted(self.open - self.lost)
        if not ids:
            return
        started = time.monotonic()
        tokens = [self.claims[message_id].token for message_id in ids]
        with self.db() as uow:
            uow.session.execute(
                update(Message)
                .where(Message.id.in_(ids), Message.claim_token.in_(tokens))
                .values(lease_until=utcnow() + self.policy.lease)
                .execution_options(synchronize_session=False)
            )
            held = set(
                uow.session.scalars(
                    select(Message.id).where(
                        Message.id.in_(ids),
                        Message.claim_token.in_(tokens),
                        Message.status == "sending",
                    )
                )
            )
            uow.commit()
        with self._lock:
            self.lost |= set(ids) - held
            self._held_until = started + self.policy.lease.total_seconds()

    def still_ours(self, claim: Claim) -> bool:
        """False when another process took the claim over (its lease had run out): that one
        sends it. With less than half a lease left (heartbeats failed), renew first."""
        left = self._held_until - time.monotonic()
        if left < self.policy.lease.total_seconds() / 2:
            try:
                self._renew()
            except DBAPIError:
                note_db_trouble()
                self.stopped = True  # the rest stays claimed; the timer takes it over later
                return False
        if claim.message_id in self.lost:
            log.warning(
                "message %s: its claim was taken over by another process; leaving it to that one",
                claim.message_id,
            )
            return False
        return True

    def cancelled_now(self, claim: Claim) -> str | None:
        """Why the message must not go out after all (its sign-up was cancelled since the
        claim), re-read for the whole batch at most every RECHECK_AFTER seconds."""
        if claim.template in SENT_AFTER_CANCELLATION:
            return None
        if time.monotonic() - self._checked_at >= RECHECK_AFTER:
            with self.db() as uow:
                registrations = {self.claims[m].registration_id for m in self.open}
                self._cancelled = _cancelled_sign_ups(uow, registrations)
            self._checked_at = time.monotonic()
        if claim.registration_id in self._cancelled:
            return "the sign-up was cancelled before sending"
        return None

    # --- the outcomes -------------------------------------------------------------------------

    def record(
        self, claim: Claim, status: str, note: str | None = None, retry_in: timedelta | None = None
    ) -> str:
        """Note an outcome; it is committed with the others before the first send that starts
        RECORD_WITHIN seconds or more after it, or when the batch ends. Returns the outcome."""
        if status in ("postponed", "failed"):
            note = without_addresses(note or "")
            if status == "postponed":
                log.warning(
                    "message %s (%s) not delivered (attempt %d): %s",
                    claim.message_id,
                    claim.template,
                    claim.attempts,
                    note,
                )
            else:
                log.error(
                    "message %s (%s) failed for good after %d attempt(s): %s",
                    claim.message_id,
                    claim.template,
                    claim.attempts,
                    note,
                )
        if not self._records:
            self._oldest_record = time.monotonic()
        self._records.append(_Record(claim, status, note, retry_in))
        return status

    def record_if_due(self) -> None:
        """Before the next send: commit what waited RECORD_WITHIN seconds or more."""
        if self._records and time.monotonic() - self._oldest_record >= RECORD_WITHIN:
            self.record_now()

    def record_now(self) -> None:
        """Commit the noted outcomes (each fenced); a database outage is waited out, as long as
        `record_patience`, so a sent message is recorded 'sent' and never sent again."""
        records, self._records = self._records, []
        if not records:
            return
        subject = (
            f"message {records[0].claim.message_id}"
            if len(records) == 1
            else f"{len(records)} messages ({records[0].claim.message_id}, ...)"
        )
        what = "recording the outcome" if len(records) == 1 else "recording the outcomes"
        started = time.monotonic()
        try:
            _persist(what, subject, self.policy.record_patience, lambda: _record(self.db, records))
        except (DBAPIError, OSError):
            if any(r.status == "sent" for r in records):
                log.error(
                    "%s sent but could not be recorded within %s; the database stayed away",
                    subject,
                    self.policy.record_patience,
                )
            raise
        with self._lock:
            self.open -= {r.claim.message_id for r in records}
        if _last_db_trouble[0] >= started:
            # The leases of the rest may have run out meanwhile: check before sending more.
            self._held_until = float("-inf")


# Outcomes written by one fenced UPDATE per (status, note): the same values for every message of
# the group. Postponed and failed ones (rare, each with its own retry time or event) are written
# one by one through the ORM.
_PLAIN_OUTCOMES = ("sent", "cancelled")


def _record(db: DatabaseHandle, records: list[_Record]) -> None:
    """The outcomes of a batch in one transaction, each only if its claim is still ours."""
    applied: list[_Record] = []
    events: dict[str, list[dict[str, Any]]] = {}
    plain: dict[tuple[str, str | None], list[_Record]] = {}
    others: list[_Record] = []
    for record in records:
        if record.status in _PLAIN_OUTCOMES:
            plain.setdefault((record.status, record.note), []).append(record)
        else:
            others.append(record)
    with db() as uow:
        now = utcnow()
        for (status, note), group in plain.items():
            held = _record_plain(uow, group, status, note, now)
            for record in group:
                if record.claim.message_id not in held:
                    _log_taken_over(record.claim)
                    continue
                if status == "sent":
                    events.setdefault("notification_sent", []).append(
                        _sent_event(record.claim.message_id, record.claim, now)
                    )
                applied.append(record)
        ids = [r.claim.message_id for r in others]
        rows = (
            {m.id: m for m in uow.session.scalars(select(Message).where(Message.id.in_(ids)))}
            if ids
            else {}
        )
        for record in others:
            message = rows.get(record.claim.message_id)
            if not _holds(message, record.claim):
                continue
            event = _apply(message, record, now)
            if event is not None:
                events.setdefault(event[0], []).append(event[1])
            applied.append(record)
        for event_type, payloads in events.items():
            uow.emit_many(event_type, payloads)  # one INSERT per kind of event
        uow.commit()
    for record in applied:
        status = "pending" if record.status == "postponed" else record.status
        if status == "cancelled":
            log.info(
                "message %s (%s) not sent: %s",
                record.claim.message_id,
                record.claim.template,
                record.note,
            )
        if status != "pending":
            metrics.NOTIFICATIONS.labels(record.claim.template, status).inc()


def _record_plain(
    uow: UnitOfWork, group: list[_Record], status: str, note: str | None, now: datetime
) -> set[str]:
    """One outcome for a group of messages in one UPDATE, fenced per message: a row is written
    only while it is `sending` under its own claim's token (the tokens are unique, so matching
    any of the group's tokens is matching its own). The ids written."""
    values: dict[str, Any] = {
        "status": status,
        "claim_token": None,
        "lease_until": None,
        "updated_at": now,
        "last_error": note,
    }
    if status == "sent":
        values["sent_at"] = now
    return set(
        uow.session.scalars(
            update(Message)
            .where(
                Message.id.in_([r.claim.message_id for r in group]),
                Message.claim_token.in_([r.claim.token for r in group]),
                Message.status == "sending",
            )
            .values(**values)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
    )


def _log_taken_over(claim: Claim) -> None:
    log.warning(
        "message %s: its claim was taken over by another process; leaving it to that one",
        claim.message_id,
    )


def _sent_event(message_id: str, claim: Claim, now: datetime) -> dict[str, Any]:
    return {
        "notification_id": message_id,
        "template": claim.template,
        "person_id": claim.person_id or None,
        "sent_at": now.isoformat(),
    }


def _holds(message: Message | None, claim: Claim) -> bool:
    """The claim still holds the message; False when another process took it over."""
    if message is None or message.claim_token != claim.token or message.status != "sending":
        _log_taken_over(claim)
        return False
    return True


def _apply(message: Message, record: _Record, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """Write an outcome on its message; the event to emit with it, if any."""
    message.claim_token = None
    message.lease_until = None
    message.updated_at = now
    if record.status == "postponed":
        message.status = "pending"
        message.last_error = (record.note or "")[:1000]
        message.next_attempt_at = now + (record.retry_in or retry_delay(record.claim.attempts))
        return None
    message.status = record.status
    if record.status == "failed":
        reason = record.note or ""
        message.last_error = reason[:1000]
        return "notification_failed", {
            "notification_id": message.id,
            "template": message.template,
            "person_id": message.person_id or None,
            "reason": reason[:500],
            "failed_at": now.isoformat(),
        }
    message.last_error = record.note
    if record.status != "sent":
        return None
    message.sent_at = now
    return "notification_sent", {
        "notification_id": message.id,
        "template": message.template,
        "person_id": message.person_id or None,
        "sent_at": now.isoformat(),
    }


# A message in one of these has its outcome; any other is still to be sent.
FINAL_STATUSES = frozenset({"sent", "failed", "cancelled"})


def _say_unsent_on_commit(uow: UnitOfWork, unsent: dict[tuple[str, str], int]) -> None:
    """An erasure that drops mails not yet sent (e.g. a consent refusal's outcome mails when
    notifications was away longer than registration's erasure grace) is not silent: once the
    erasure commits, a warning without personal data and `lob_notifications_total{status=
    "erased_unsent"}` say how many of which kind will never go out."""
    if not unsent:
        return

    def say(_session: Any) -> None:
        kinds = sorted({template for template, _ in unsent})
        log.warning(
            "a person was erased before %d message(s) could be sent (%s); they will not be sent",
            sum(unsent.values()),
            ", ".join(kinds),
        )
        for (template, _status), count in unsent.items():
            metrics.NOTIFICATIONS.labels(template, "erased_unsent").inc(count)

    sa_event.listen(uow.session, "after_commit", say, once=True)


@idempotent
def forget_person(uow: UnitOfWork, event: Event) -> None:
    """Erasure: drop every message about the person (sent ones included) and the copy of their
    sign-ups; only anonymous counts per kind and status stay."""
    person_id = event.payload["person_id"]
    registrations = set(
        uow.session.scalars(select(SignUp.registration_id).where(SignUp.person_id == person_id))
    )
    if registrations:
        for digest in uow.session.scalars(select(SchoolDigest)).all():
            if registrations & set(digest.snapshot or {}):
                digest.snapshot = {
                    r: v for r, v in digest.snapshot.items() if r not in registrations
                }
        for message in uow.session.scalars(
            select(Message).where(Message.template == "school_digest")
        ).all():
            data = message.data or {}
            if registrations & set(data.get("lines", {})) or registrations & set(
                data.get("previous", {})
            ):
                message.data = _without(data, registrations)
    counts = uow.session.execute(
        select(Message.template, Message.status, func.count())
        .where(Message.person_id == person_id)
        .group_by(Message.template, Message.status)
    ).all()
    for template, status, count in counts:
        row = uow.session.get(DeliveryCount, (template, status))
        if row is None:
            uow.session.add(DeliveryCount(template=template, status=status, count=count))
        else:
            row.count += count
    _say_unsent_on_commit(uow, {(t, s): c for t, s, c in counts if s not in FINAL_STATUSES})
    uow.session.query(Message).filter_by(person_id=person_id).delete()
    uow.session.query(SignUp).filter_by(person_id=person_id).delete()
    uow.session.query(CalendarEntry).filter_by(person_id=person_id).delete()


# --- operators ---------------------------------------------------------------------------------


def failed_messages(db: DatabaseHandle, limit: int = 500) -> list[dict[str, Any]]:
    """Failed deliveries, newest first: id, kind, when, the reason (never an address)."""
    with db() as uow:
        rows = uow.session.scalars(
            select(Message)
            .where(Message.status == "failed")
            .order_by(Message.updated_at.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": m.id,
                "kind": m.template,
                "failed_at": m.updated_at,
                "attempts": m.attempts,
                "reason": without_addresses(m.last_error or ""),
            }
            for m in rows
        ]


def resend(db: DatabaseHandle, ids: list[str] | None) -> int:
    """Put failed messages (the given ones, or all) back in the queue for a fresh series of
    attempts; the delivery timer sends them (same Message-ID). Returns how many."""
    with db() as uow:
        query = update(Message).where(Message.status == "failed")
        if ids is not None:
            query = query.where(Message.id.in_(ids))
        count = uow.session.execute(
            query.values(
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
                updated_at=utcnow(),
                claim_token=None,
                lease_until=None,
            )
        ).rowcount
        uow.commit()
    if count:
        log.info("%d failed message(s) queued again by an operator", count)
    return count


def _without(data: dict[str, Any], registrations: set[str]) -> dict[str, Any]:
    return {
        **data,
        "lines": {r: v for r, v in data.get("lines", {}).items() if r not in registrations},
        "previous": {r: v for r, v in data.get("previous", {}).items() if r not in registrations},
        "changes": {
            k: [r for r in v if r not in registrations] for k, v in data.get("changes", {}).items()
        },
    }
