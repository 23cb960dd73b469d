"""The notifications service: queues a message per event and delivers it over SMTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from nameko.exceptions import MethodNotFound
from nameko.timer import timer

from lob_common.batch import batch_event_handler
from lob_common.contracts import Event
from lob_common.db import utcnow
from lob_common.messaging import RpcProxy, event_handler
from lob_common.providers import Database, ServiceBase, call_with_timeout
from lob_common.timeutil import local
from notifications import handlers
from notifications.adapters.smtp import Mailer, RateLimiter
from notifications.adapters.tables import Base
from notifications.sending import HandOver, sending_loop

MIGRATIONS = Path(__file__).parent / "migrations"


_LIMITERS: dict[float, RateLimiter] = {}


def _limiter(config: dict[str, Any]) -> RateLimiter:
    """One sending-rate limit per process, shared by every worker (MAIL_RATE_PER_SECOND)."""
    rate = float(config.get("MAIL_RATE_PER_SECOND", 10) or 0)
    return _LIMITERS.setdefault(rate, RateLimiter(rate))


class NotificationsService(ServiceBase):
    name = "notifications"
    db = Database(Base.metadata, MIGRATIONS)
    registration = RpcProxy("registration")
    hand_over = HandOver()

    def _contact(
        self, registration_id: str, template: str = "", data: dict | None = None
    ) -> dict[str, Any] | None:
        if template == "school_digest":
            return self._school_contact(data or {})
        if template == "operator_failures":
            email = self.config.get("OPERATOR_EMAIL") or None
            return {"email": email} if email else None
        return call_with_timeout(self.registration.contact, registration_id)

    def _contacts(self, registration_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """The contacts of a batch in one call (a registration without `contacts`, during a
        rolling update: one call each)."""
        try:
            return call_with_timeout(self.registration.contacts, registration_ids)
        except MethodNotFound:
            return {rid: self._contact(rid) for rid in registration_ids}

    def _school_contact(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The school's decaan and, fresh from registration, the names of its pupils in the
        digest (notifications stores none) and the activity."""
        ids = sorted({*data.get("lines", {}), *data.get("changes", {}).get("gone", [])})
        school = call_with_timeout(self.registration.school_contact, data["school_id"], ids)
        if school is None:
            return None
        activity = None
        for registration_id in ids:
            found = call_with_timeout(self.registration.contact, registration_id)
            if found:
                activity = found["activity"]
                break
        if activity is None:
            return None
        return {
            "email": school.get("email"),
            "school": school["name"],
            "pupils": school.get("pupils") or {},
            "activity": activity,
        }

    def _deliver(self, ids: list[str] | None = None) -> dict[str, int]:
        mailer = Mailer(self.config)
        limiter = _limiter(self.config)
        policy = handlers.DeliveryPolicy.from_config(self.config)
        try:
            return handlers.deliver_due(
                self.db,
                self._contact,
                mailer.send,
                policy,
                ids,
                contacts_many=self._contacts,
                pace=limiter.wait,
            )
        finally:
            mailer.close()

    @sending_loop(lanes=2)
    def send_handed_over(self, ids: list[str]) -> None:
        """The messages the event handlers queued, in batches (notifications/sending.py)."""
        self._deliver(ids)

    @batch_event_handler("registration", "signed_up")
    def handle_signed_up(self, events: list[Event]) -> int:
        """The confirmations of a batch of sign-ups (lob_common.batch): one transaction, then
        all new messages to the sending loop."""
        ids = handlers.queue_sign_up_confirmations(self.db, events)
        self.hand_over(ids)
        return len(ids)

    def _queue_programmes(self, events: list[Event], template: str) -> int:
        """Store the messages of a batch of programme events with their payloads (the text
        needs them), in one transaction; the sending loop sends them."""
        ids = handlers.queue_programme_messages(self.db, events, template)
        self.hand_over(ids)
        return len(ids)

    @batch_event_handler("scheduling", "programme_assigned")
    def handle_programme_assigned(self, events: list[Event]) -> int:
        return self._queue_programmes(events, "programme_assigned")

    @batch_event_handler("scheduling", "programme_changed")
    def handle_programme_changed(self, events: list[Event]) -> int:
        return self._queue_programmes(events, "programme_changed")

    @batch_event_handler("scheduling", "waitlisted")
    def handle_waitlisted(self, events: list[Event]) -> int:
        return self._queue_programmes(events, "waitlisted")

    @event_handler("registration", "sign_up_cancelled")
    def handle_sign_up_cancelled(self, event: Event) -> bool:
        """Nothing still queued for the sign-up goes out; one confirmation of the cancellation."""
        ids = handlers.queue_sign_up_cancelled(self.db, event)
        self.hand_over(ids)
        return bool(ids)

    @event_handler("registration", "activity_cancelled")
    def handle_activity_cancelled(self, event: Event) -> bool:
        """Every participant of the activity is told; queued mails about it are not sent."""
        ids = handlers.queue_activity_cancelled(self.db, event)
        self.hand_over(ids)
        return bool(ids)

    def _queue_many(self, event: Event, templates: list[str], void: bool = False) -> bool:
        ids = handlers.queue_many(self.db, event, templates, void_sign_up=void)
        self.hand_over(ids)
        return bool(ids)

    @event_handler("registration", "consent_requested")
    def handle_consent_requested(self, event: Event) -> bool:
        """The parent gets the consent link and the deadline; the pupil hears the parent was
        asked."""
        return self._queue_many(event, ["consent_requested_parent", "consent_requested_pupil"])

    @event_handler("registration", "consent_given")
    def handle_consent_given(self, event: Event) -> bool:
        """The parent hears it is recorded (the pupil's confirmation follows from signed_up)."""
        return self._queue_many(event, ["consent_given_parent"])

    @event_handler("registration", "consent_refused")
    def handle_consent_refused(self, event: Event) -> bool:
        """No consent (refused, expired, withdrawn): the outcome to the pupil and the parent;
        nothing still queued for the sign-up goes out."""
        return self._queue_many(
            event, ["consent_refused_pupil", "consent_refused_parent"], void=True
        )

    @event_handler("scheduling", "schedule_published")
    def handle_schedule_published(self, event: Event) -> bool:
        """Each school with pupils in the activity gets one digest (once their programme events
        are in: the digest timer sends it)."""
        delay = float(self.config.get("MAIL_DIGEST_DELAY_SECONDS", 60))
        return handlers.request_digests(self.db, event, timedelta(seconds=delay))

    @event_handler("registration", "person_erased")
    def handle_person_erased(self, event: Event) -> bool:
        return handlers.forget_person(self.db, event)

    @timer(interval=10)
    def deliver_due(self) -> None:
        """Retries what could not be delivered at once (SMTP or registration away) and takes
        over messages whose claimant died (its lease ran out); shows what is in `sending`."""
        self._deliver()
        handlers.observe_sending(self.db)

    @timer(interval=15)
    def send_digests(self) -> None:
        """The school digests that are due (after a publication or a later change)."""
        ids = handlers.queue_due_digests(self.db, utcnow())
        self.hand_over(ids)

    @timer(interval=3600)
    def send_operator_summary(self) -> None:
        """Once a day (after MAIL_OPERATOR_SUMMARY_HOUR, Amsterdam time) the failed deliveries
        of the last 24 hours to OPERATOR_EMAIL; nothing when there were none."""
        if not self.config.get("OPERATOR_EMAIL"):
            return
        if local(utcnow()).hour < int(self.config.get("MAIL_OPERATOR_SUMMARY_HOUR", 7)):
            return
        message_id = handlers.queue_operator_summary(self.db, utcnow())
        if message_id:
            self.hand_over([message_id])

    @timer(interval=300)
    def send_reminders(self) -> None:
        """A reminder before each activity (MAIL_REMINDER_DAYS ahead), once per person and
        activity; they leave at the sending rate."""
        days = float(self.config.get("MAIL_REMINDER_DAYS", 2))
        ids = handlers.queue_reminders(self.db, utcnow(), timedelta(days=days))
        self.hand_over(ids)
