"""The event contracts: one envelope, one marshmallow schema per event type.

Both sides validate against these schemas: the producer before a message enters its outbox, the
consumer before a handler sees it. A consumer accepts a newer *minor* version (unknown fields are
ignored: tolerant reader) and refuses another *major* version as malformed, so a breaking change
needs a new major version and consumers that know it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

ACTIVITY_KINDS = (
    "infoday",  # Voorlichtingsdag MBO-beroepen
    "orientation_day",  # MBO oriëntatiedag
    "career_event",  # Loopbaanevenement
    "bus_tour",  # LOB-bustour
    "network_meeting",  # Lerend Netwerk
    "decanen_meeting",  # Decanenkring / bijeenkomst decanen
    "campaign",  # Week van het Loopbaandossier
    "trajectory",  # Traject Borging LOB
    "other",
)
ROLES = ("pupil", "parent", "professional", "young_adult", "mbo_student")
PHASES = ("vo", "pro_vso", "mbo", "hbo", "working", "neither")
# Who an activity is for (an activity may be for several, e.g. a career event: pupils, parents).
AUDIENCES = ("pupils", "professionals", "parents", "young_adults")
# Who an activity published without an audience (before activity_published 1.2) is for, by
# kind: DOMAIN.md's table of activities.
DEFAULT_AUDIENCE = {
    "infoday": ("pupils",),
    "orientation_day": ("pupils", "young_adults"),
    "career_event": ("pupils", "parents", "young_adults"),
    "bus_tour": ("professionals",),
    "network_meeting": ("professionals",),
    "decanen_meeting": ("professionals",),
    "campaign": ("professionals",),
    "trajectory": ("professionals",),
    "other": ("pupils", "professionals", "parents", "young_adults"),
}


def audience_or_default(kind: str, audience: Iterable[str] | None) -> frozenset[str]:
    """An activity's audience: the one it was published with, else its kind's default."""
    return frozenset(audience or DEFAULT_AUDIENCE.get(kind, ()))


# What kind of school or institution (Tabel 3a rows: vo schools; 3b also mbo and "other").
SCHOOL_KINDS = ("vmbo", "havo_vwo", "pro", "vso", "vavo", "mbo", "hbo", "other")
# Age bands of the 12-27 programme; the only age that travels (never a birth date or exact age).
AGE_BANDS = ("12-15", "16-17", "18-22", "23-27", "other")


class MalformedEvent(ValueError):
    """A message that can never be processed as it is; it is parked, not retried."""


class _Payload(Schema):
    class Meta:
        unknown = EXCLUDE


def _id(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=64), **kwargs)


# --- registration -----------------------------------------------------------------------------


class SessionSpec(_Payload):
    """An info-day session: given in some rounds, with a capacity per round."""

    session_id = _id(required=True)
    title = fields.String(required=True)
    provider = fields.String(load_default="")
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    rounds = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1)), required=True)
    room = fields.String(load_default="")


class RoundSpec(_Payload):
    round = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class WorkshopSpec(_Payload):
    """An orientation-day workshop: one programme at one mbo location."""

    workshop_id = _id(required=True)
    title = fields.String(required=True)
    location = fields.String(load_default="")
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class BusSpec(_Payload):
    bus_id = _id(required=True)
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


_CLOCK = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="use HH:MM (00:00-23:59)")


class StopSpec(_Payload):
    """A location a bus tour visits; opening window as local wall-clock times (HH:MM)."""

    stop_id = _id(required=True)
    name = fields.String(required=True)
    visit_minutes = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    opens = fields.String(load_default=None, allow_none=True, validate=_CLOCK)
    closes = fields.String(load_default=None, allow_none=True, validate=_CLOCK)
    lat = fields.Float(load_default=None, allow_none=True)
    lon = fields.Float(load_default=None, allow_none=True)


class ActivityPublished(_Payload):
    activity_id = _id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    title = fields.String(required=True)
    starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    location = fields.String(load_default="")
    capacity = fields.Integer(load_default=None, allow_none=True, strict=True)
    sign_up_closes_at = fields.AwareDateTime(
        load_default=None, allow_none=True, default_timezone=UTC
    )
    rounds = fields.List(fields.Nested(RoundSpec), load_default=list)
    sessions = fields.List(fields.Nested(SessionSpec), load_default=list)
    workshops = fields.List(fields.Nested(WorkshopSpec), load_default=list)
    buses = fields.List(fields.Nested(BusSpec), load_default=list)
    stops = fields.List(fields.Nested(StopSpec), load_default=list)
    departure = fields.Nested(StopSpec, load_default=None, allow_none=True)
    travel_minutes = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(
            keys=fields.String(), values=fields.Integer(validate=validate.Range(min=0))
        ),
        load_default=None,
        allow_none=True,
    )
    # Orientation days: the most a workshop may be overbooked, as a share of its capacity
    # (None: the scheduling service's default). 1.1
    max_overbooking = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=1)
    )
    # 1.2: who it is for, when sign-up opens, the school or college that hosts it (host keys).
    audience = fields.List(fields.String(validate=validate.OneOf(AUDIENCES)), load_default=list)
    sign_up_opens_at = fields.AwareDateTime(
        load_default=None, allow_none=True, default_timezone=UTC
    )
    host_school_id = _id(load_default=None, allow_none=True)
    # 1.3: a past activity an operator loaded to keep its figures (a finished season): never
    # planned, nobody is mailed about it.
    historical = fields.Boolean(load_default=False)


class ActivityCancelled(_Payload):
    """The region called an activity off; every sign-up of it is void."""

    activity_id = _id(required=True)
    cancelled_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    reason = fields.String(load_default="")


class SchoolRegistered(_Payload):
    """A school or institution of the region, new or changed (consumers upsert by school_id)."""

    school_id = _id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(SCHOOL_KINDS))
    municipality = fields.String(load_default=None, allow_none=True)


# The activity's structure that scheduling plans from (besides its times), in activity_published.
ACTIVITY_SPEC_FIELDS = (
    "rounds",
    "sessions",
    "workshops",
    "buses",
    "stops",
    "departure",
    "travel_minutes",
    "max_overbooking",
)


class Preferences(_Payload):
    """What a participant asked for: info-day choices + backup, or a workshop ranking."""

    choices = fields.List(_id(), load_default=list)
    backup = _id(load_default=None, allow_none=True)
    ranking = fields.List(_id(), load_default=list)


class SignedUp(_Payload):
    """A sign-up. No names or addresses: notifications asks registration for a contact."""

    registration_id = _id(required=True)
    activity_id = _id(required=True)
    activity_kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    activity_starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    person_id = _id(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    school_id = _id(load_default=None, allow_none=True)
    school_year = fields.Integer(load_default=None, allow_none=True, strict=True)
    # 1.1: the age band at the activity's date replaces the exact age (which no longer travels;
    # a 1.0 message's `age` is ignored).
    age_band = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(AGE_BANDS))
    phase = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PHASES))
    municipality = fields.String(load_default=None, allow_none=True)
    consent_required = fields.Boolean(load_default=False)
    preferences = fields.Nested(Preferences, load_default=dict)
    signed_up_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class SignUpCancelled(_Payload):
    registration_id = _id(required=True)
    activity_id = _id(required=True)
    person_id = _id(required=True)
    cancelled_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    reason = fields.String(load_default="")


# A self sign-up of a pupil under 16 waits for a parent (docs/consent.md): registration emits
# consent_requested instead of signed_up, then consent_given + signed_up, or consent_refused.
CONSENT_REFUSAL_REASONS = ("refused", "expired", "withdrawn")


class ConsentRequested(_Payload):
    """A parent is asked (again) to consent; notifications mails the link (contact RPC)."""

    registration_id = _id(required=True)
    activity_id = _id(required=True)
    person_id = _id(required=True)
    requested_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    expires_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class ConsentGiven(_Payload):
    person_id = _id(required=True)
    registration_id = _id(load_default=None, allow_none=True)
    given_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    activity_id = _id(load_default=None, allow_none=True)  # 1.1


class ConsentRefused(_Payload):
    """No consent: refused, expired, or withdrawn later. The sign-up is void and the pupil's
    data is erased after a grace (person_erased follows), so the outcome mail can still go."""

    registration_id = _id(required=True)
    activity_id = _id(required=True)
    person_id = _id(required=True)
    refused_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    reason = fields.String(required=True, validate=validate.OneOf(CONSENT_REFUSAL_REASONS))


class AttendanceRecorded(_Payload):
    registration_id = _id(required=True)
    activity_id = _id(required=True)
    person_id = _id(required=True)
    attended = fields.Boolean(required=True)
    recorded_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class ParticipationImported(_Payload):
    """One participant of a historical activity, as an operator loaded it (POST
    /activities/{id}/history): anonymous (no person, no name), for reporting only. Sent again
    when the operator corrects the record; consumers upsert by `record_id`."""

    record_id = _id(required=True)
    activity_id = _id(required=True)
    activity_kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    activity_starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    school_id = _id(load_default=None, allow_none=True)
    age_band = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(AGE_BANDS))
    phase = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PHASES))
    municipality = fields.String(load_default=None, allow_none=True)
    attended = fields.Boolean(load_default=None, allow_none=True)  # None: not known
    recorded_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class PersonErased(_Payload):
    person_id = _id(required=True)
    erased_at = fields.AwareDateTime(required=True, default_timezone=UTC)


# --- scheduling --------------------------------------------------------------------------------


class AssignedSession(_Payload):
    round = fields.Integer(required=True, strict=True)
    session_id = _id(load_default=None, allow_none=True)
    title = fields.String(load_default="")
    room = fields.String(load_default="")
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)


class AssignedWorkshop(_Payload):
    workshop_id = _id(required=True)
    title = fields.String(load_default="")
    location = fields.String(load_default="")


class AssignedSeat(_Payload):
    bus_id = _id(required=True)
    seat = fields.Integer(required=True, strict=True)


class ItineraryStop(_Payload):
    """One line of a bus tour's timetable: the departure, a visit, or the return."""

    stop_id = _id(required=True)
    name = fields.String(required=True)
    arrive_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)
    visit_starts_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)
    leave_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)


class ProgrammeAssigned(_Payload):
    activity_id = _id(required=True)
    registration_id = _id(required=True)
    person_id = _id(required=True)
    plan_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    sessions = fields.List(fields.Nested(AssignedSession), load_default=list)
    workshop = fields.Nested(AssignedWorkshop, load_default=None, allow_none=True)
    seat = fields.Nested(AssignedSeat, load_default=None, allow_none=True)
    # 1.1: a bus tour's timetable, and whether the place came from the waiting list.
    itinerary = fields.List(fields.Nested(ItineraryStop), load_default=list)
    from_waitlist = fields.Boolean(load_default=False)


class ProgrammeChanged(ProgrammeAssigned):
    previous_plan_version = fields.Integer(required=True, strict=True)


class Waitlisted(_Payload):
    activity_id = _id(required=True)
    registration_id = _id(required=True)
    person_id = _id(required=True)
    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    item_id = _id(load_default=None, allow_none=True)
    item_title = fields.String(load_default="")  # 1.1: e.g. the workshop the pupil waits for


class SchedulePublished(_Payload):
    activity_id = _id(required=True)
    plan_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    assigned = fields.Integer(required=True, strict=True)
    changed = fields.Integer(load_default=0, strict=True)
    waitlisted = fields.Integer(load_default=0, strict=True)
    metrics = fields.Dict(load_default=dict)


# --- notifications -----------------------------------------------------------------------------


class NotificationSent(_Payload):
    notification_id = _id(required=True)
    template = fields.String(required=True)
    person_id = _id(load_default=None, allow_none=True)
    sent_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class NotificationFailed(_Payload):
    notification_id = _id(required=True)
    template = fields.String(required=True)
    person_id = _id(load_default=None, allow_none=True)
    reason = fields.String(required=True)
    failed_at = fields.AwareDateTime(required=True, default_timezone=UTC)


@dataclass(frozen=True)
class Contract:
    producer: str
    event_type: str
    schema: type[Schema]
    version: str = "1.0"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


CONTRACTS: dict[str, Contract] = {
    c.event_type: c
    for c in (
        Contract("registration", "activity_published", ActivityPublished, "1.3"),
        Contract("registration", "activity_cancelled", ActivityCancelled),
        Contract("registration", "school_registered", SchoolRegistered),
        Contract("registration", "signed_up", SignedUp, "1.1"),
        Contract("registration", "sign_up_cancelled", SignUpCancelled),
        Contract("registration", "consent_requested", ConsentRequested),
        Contract("registration", "consent_given", ConsentGiven, "1.1"),
        Contract("registration", "consent_refused", ConsentRefused),
        Contract("registration", "attendance_recorded", AttendanceRecorded),
        Contract("registration", "person_erased", PersonErased),
        Contract("registration", "participation_imported", ParticipationImported),
        Contract("scheduling", "programme_assigned", ProgrammeAssigned, "1.1"),
        Contract("scheduling", "programme_changed", ProgrammeChanged, "1.1"),
        Contract("scheduling", "waitlisted", Waitlisted, "1.1"),
        Contract("scheduling", "schedule_published", SchedulePublished),
        Contract("notifications", "notification_sent", NotificationSent),
        Contract("notifications", "notification_failed", NotificationFailed),
    )
}

# Who listens to what: (producer, event_type) -> consumer handler ids "service.method".
# The producer's outbox relay declares these queues before it publishes anything, so an event
# is never dropped because its consumer has not started yet. A consumer's event handler refuses
# to start if its subscription is missing here, which keeps this table true.
SUBSCRIPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("registration", "activity_published"): (
        "scheduling.handle_activity_published",
        "reporting.handle_activity_published",
    ),
    ("registration", "activity_cancelled"): (
        "notifications.handle_activity_cancelled",
        "reporting.handle_activity_cancelled",
    ),
    ("registration", "school_registered"): ("reporting.handle_school_registered",),
    ("registration", "signed_up"): (
        "scheduling.handle_signed_up",
        "notifications.handle_signed_up",
        "reporting.handle_signed_up",
    ),
    ("registration", "sign_up_cancelled"): (
        "scheduling.handle_sign_up_cancelled",
        "notifications.handle_sign_up_cancelled",
        "reporting.handle_sign_up_cancelled",
    ),
    ("registration", "consent_requested"): ("notifications.handle_consent_requested",),
    ("registration", "consent_given"): ("notifications.handle_consent_given",),
    ("registration", "consent_refused"): ("notifications.handle_consent_refused",),
    ("registration", "attendance_recorded"): (
        "scheduling.handle_attendance_recorded",
        "reporting.handle_attendance_recorded",
    ),
    ("registration", "participation_imported"): ("reporting.handle_participation_imported",),
    ("registration", "person_erased"): (
        "scheduling.handle_person_erased",
        "notifications.handle_person_erased",
        "reporting.handle_person_erased",
    ),
    ("scheduling", "programme_assigned"): ("notifications.handle_programme_assigned",),
    ("scheduling", "programme_changed"): ("notifications.handle_programme_changed",),
    ("scheduling", "waitlisted"): ("notifications.handle_waitlisted",),
    ("scheduling", "schedule_published"): ("notifications.handle_schedule_published",),
}


def queue_name(producer: str, event_type: str, handler_id: str) -> str:
    """The queue nameko's SERVICE_POOL event handler consumes from (same naming as nameko)."""
    return f"evt-{producer}-{event_type}--{handler_id}"


@dataclass(frozen=True)
class Event:
    """A validated event: envelope fields plus the payload as loaded by its contract schema."""

    event_type: str
    payload: dict[str, Any]
    producer: str
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    schema_version: str = "1.0"
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    # Set on delivery (not part of the message): which handler received it, "service.method".
    handler: str | None = None


class _Envelope(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    schema_version = fields.String(required=True, validate=validate.Regexp(r"^\d+\.\d+$"))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    producer = fields.String(required=True)
    correlation_id = fields.String(load_default=None, allow_none=True)
    payload = fields.Dict(required=True)

    @validates_schema
    def _known_type(self, data: dict, **kwargs: Any) -> None:
        if data.get("event_type") not in CONTRACTS:
            raise ValidationError(f"unknown event type {data.get('event_type')!r}", "event_type")


def new_event(event_type: str, payload: dict[str, Any], correlation_id: str | None = None) -> Event:
    """Validate a payload against its contract and wrap it in an envelope (producer side)."""
    contract = _contract(event_type)
    loaded = _load_payload(contract, payload)
    return Event(
        event_type=event_type,
        payload=loaded,
        producer=contract.producer,
        schema_version=contract.version,
        correlation_id=correlation_id,
    )


def dump_event(event: Event) -> dict[str, Any]:
    """The JSON-ready message body of an event."""
    contract = _contract(event.event_type)
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "producer": event.producer,
        "correlation_id": event.correlation_id,
        "payload": _schema(contract.event_type).dump(event.payload),
    }


def payload_json(event: Event) -> dict[str, Any]:
    """The payload in its JSON form (ISO strings for times), e.g. to store in a JSON column."""
    return _schema(event.event_type).dump(event.payload)


_ENVELOPE = _Envelope()  # one instance, as _schema's: building one costs more than a load


def parse_event(body: Any, expected_type: str | None = None) -> Event:
    """Validate a received message body; raise MalformedEvent saying exactly what is wrong."""
    if not isinstance(body, dict):
        raise MalformedEvent(f"message body is a {type(body).__name__}, not a JSON object")
    try:
        envelope = _ENVELOPE.load(body)
    except ValidationError as exc:
        raise MalformedEvent(f"invalid envelope: {_flatten(exc.messages)}") from exc
    contract = CONTRACTS[envelope["event_type"]]
    if expected_type and envelope["event_type"] != expected_type:
        raise MalformedEvent(f"expected {expected_type}, got {envelope['event_type']}")
    major = int(envelope["schema_version"].split(".")[0])
    if major != contract.major:
        raise MalformedEvent(
            f"{contract.event_type} schema version {envelope['schema_version']} is not "
            f"compatible with {contract.version} (different major version)"
        )
    return Event(
        event_type=envelope["event_type"],
        payload=_load_payload(contract, envelope["payload"]),
        producer=envelope["producer"],
        event_id=str(envelope["event_id"]),
        schema_version=envelope["schema_version"],
        occurred_at=envelope["occurred_at"],
        correlation_id=envelope["correlation_id"],
    )


def _contract(event_type: str) -> Contract:
    try:
        return CONTRACTS[event_type]
    except KeyError:
        raise MalformedEvent(f"unknown event type {event_type!r}") from None


@functools.cache
def _schema(event_type: str) -> Schema:
    """One schema instance per contract: building one (fields deep-copied, nested schemas made)
    costs more than loading a payload, and a roster emits thousands of events at once.
    Loading and dumping keep no state on the instance."""
    return _contract(event_type).schema()


def _load_payload(contract: Contract, payload: Any) -> dict[str, Any]:
    try:
        return _schema(contract.event_type).load(payload)
    except ValidationError as exc:
        raise MalformedEvent(
            f"invalid {contract.event_type} payload: {_flatten(exc.messages)}"
        ) from exc


def _flatten(messages: Any, prefix: str = "") -> str:
    """marshmallow's nested error dict as one readable line: 'a.b: msg; c: msg'."""
    if isinstance(messages, dict):
        parts = [
            _flatten(v, f"{prefix}{k}." if prefix or k != "_schema" else "")
            for k, v in messages.items()
        ]
        return "; ".join(p for p in parts if p)
    if isinstance(messages, list):
        text = ", ".join(str(m) for m in messages if not isinstance(m, (dict, list)))
        nested = "; ".join(_flatten(m, prefix) for m in messages if isinstance(m, (dict, list)))
        label = prefix.rstrip(".")
        own = f"{label}: {text}" if label and text else text
        return "; ".join(p for p in (own, nested) if p)
    return f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages)
