"""The registration HTTP API's input and output schemas (marshmallow)."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from lob_common.contracts import (
    ACTIVITY_KINDS,
    PHASES,
    SCHOOL_KINDS,
    BusSpec,
    RoundSpec,
    SessionSpec,
    StopSpec,
    WorkshopSpec,
)
from lob_common.timeutil import AMSTERDAM, local
from registration.domain.model import SIGN_UP_ROLES, Consent, RegistrationStatus

_name = validate.Length(min=1, max=100)
_slug = validate.Regexp(
    r"^[a-z0-9][a-z0-9-]{0,63}$",
    error="Gebruik kleine letters, cijfers en streepjes (hoogstens 64).",
)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class SignUpIn(_Strict):
    """A sign-up for one activity, by or for one person."""

    activity_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    role = fields.String(
        load_default="pupil", validate=validate.OneOf([r.value for r in SIGN_UP_ROLES])
    )
    first_name = fields.String(required=True, validate=_name)
    last_name = fields.String(required=True, validate=_name)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    date_of_birth = fields.Date(load_default=None, allow_none=True)
    school_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    school_year = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=6)
    )
    municipality = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=64)
    )
    phase = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PHASES))
    parent_email = fields.Email(load_default=None, allow_none=True)
    choices = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)
    backup = fields.String(load_default=None, allow_none=True)
    ranking = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)

    @validates_schema(skip_on_field_errors=False)
    def _role_fields(self, data: dict[str, Any], **kwargs: Any) -> None:
        role = data.get("role", "pupil")
        errors: dict[str, list[str]] = {}
        if role in ("pupil", "young_adult") and not data.get("date_of_birth"):
            errors["date_of_birth"] = ["Geboortedatum is nodig (voor leeftijd en toestemming)."]
        if errors:
            raise ValidationError(errors)


REQUIRED_BY_KIND = {
    "infoday": (
        "sessions",
        "Een voorlichtingsdag heeft sessies nodig (session_id, capaciteit, rondes).",
    ),
    "orientation_day": (
        "workshops",
        "Een oriëntatiedag heeft workshops nodig (workshop_id, capaciteit).",
    ),
    "bus_tour": ("buses", "Een bustour heeft minstens één bus nodig (bus_id, stoelen)."),
}


class ActivityIn(_Strict):
    """An operator publishes an activity with the structure its scheduling needs."""

    id = fields.String(required=True, validate=_slug)
    kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    starts_at = fields.AwareDateTime(required=True, default_timezone=AMSTERDAM)
    ends_at = fields.AwareDateTime(required=True, default_timezone=AMSTERDAM)
    location = fields.String(load_default="", validate=validate.Length(max=200))
    capacity = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0)
    )
    sign_up_closes_at = fields.AwareDateTime(
        load_default=None, allow_none=True, default_timezone=AMSTERDAM
    )
    rounds = fields.List(fields.Nested(RoundSpec), load_default=list)
    sessions = fields.List(fields.Nested(SessionSpec), load_default=list)
    workshops = fields.List(fields.Nested(WorkshopSpec), load_default=list)
    buses = fields.List(fields.Nested(BusSpec), load_default=list)
    stops = fields.List(fields.Nested(StopSpec), load_default=list)
    departure = fields.Nested(
        StopSpec,
        load_default=None,
        allow_none=True,
        metadata={"description": "Bus tours: where the bus leaves (at starts_at) and returns."},
    )
    travel_minutes = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(
            keys=fields.String(), values=fields.Integer(strict=True, validate=validate.Range(min=0))
        ),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Bus tours: minutes by bus, {from stop_id: {to stop_id: minutes}}; "
            "a missing pair is estimated from lat/lon."
        },
    )
    max_overbooking = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata={
            "description": "Orientation days: at most this share of a workshop's capacity is "
            "overbooked for expected no-shows (default: the scheduling service's setting)."
        },
    )

    @validates_schema
    def _times(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("Het einde moet na het begin liggen.", "ends_at")
        closes = data.get("sign_up_closes_at")
        if closes and closes > data["starts_at"]:
            raise ValidationError(
                "De aanmelding moet sluiten voor de activiteit begint.", "sign_up_closes_at"
            )

    @validates_schema
    def _what_the_kind_needs(self, data: dict[str, Any], **kwargs: Any) -> None:
        """What scheduling plans from must be there, each item once, before anyone signs up."""
        errors: dict[str, list[str]] = {}
        needed = REQUIRED_BY_KIND.get(data["kind"])
        if needed and not data.get(needed[0]):
            errors[needed[0]] = [needed[1]]
        for field, key in (
            ("sessions", "session_id"),
            ("workshops", "workshop_id"),
            ("buses", "bus_id"),
            ("stops", "stop_id"),
        ):
            ids = [item[key] for item in data.get(field) or []]
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                errors.setdefault(field, []).append(f"Dubbele {key}: {', '.join(twice)}.")
        if errors:
            raise ValidationError(errors)


# --- responses: every answer is dumped through these, and the OpenAPI document is built from them


class LocalDateTime(fields.DateTime):
    """A moment (stored in UTC) shown in Europe/Amsterdam with its offset."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else local(value).isoformat()


class RegistrationOut(Schema):
    """A registration as the API returns it (times in Europe/Amsterdam with offset)."""

    registration_id = fields.String(required=True)
    activity_id = fields.String(required=True)
    person_id = fields.String(required=True)
    school_id = fields.String(allow_none=True, required=True)
    status = fields.String(
        required=True, validate=validate.OneOf([s.value for s in RegistrationStatus])
    )
    consent = fields.String(required=True, validate=validate.OneOf([c.value for c in Consent]))
    preferences = fields.Dict(required=True)
    created_at = LocalDateTime(required=True)


class SchoolOut(Schema):
    id = fields.String(required=True, metadata={"description": "Use as school_id."})
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(SCHOOL_KINDS))
    municipality = fields.String(allow_none=True, required=True)


class SchoolListOut(Schema):
    schools = fields.List(fields.Nested(SchoolOut), required=True)


class ActivityOut(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    title = fields.String(required=True)
    starts_at = LocalDateTime(required=True)
    ends_at = LocalDateTime(required=True)
    location = fields.String(required=True)
    capacity = fields.Integer(allow_none=True, required=True)
    sign_up_closes_at = LocalDateTime(allow_none=True, required=True)
    rounds = fields.List(fields.Dict(), required=True)
    sessions = fields.List(fields.Dict(), required=True)
    workshops = fields.List(fields.Dict(), required=True)
    buses = fields.List(fields.Dict(), required=True)
    stops = fields.List(fields.Dict(), required=True)
    departure = fields.Dict(allow_none=True)
    travel_minutes = fields.Dict(allow_none=True)
    max_overbooking = fields.Float(allow_none=True)
    signed_up = fields.Integer(metadata={"description": "Current sign-ups (in lists)."})


class ActivityListOut(Schema):
    activities = fields.List(fields.Nested(ActivityOut), required=True)


class ProgrammeOut(Schema):
    """One participant's part of the plan in force (fields by kind of activity)."""

    registration_id = fields.String(required=True)
    school_id = fields.String(allow_none=True, required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(("assigned", "waitlisted", "unplaced")),
        metadata={"description": "unplaced: none of the person's choices can be given"},
    )
    waitlist_position = fields.Integer(allow_none=True, required=True)
    sessions = fields.List(fields.Dict(), metadata={"description": "Info day: one per round."})
    workshop = fields.Dict(metadata={"description": "Orientation day: the workshop."})
    seat = fields.Dict(metadata={"description": "Bus tour: bus_id and seat."})
    itinerary = fields.List(fields.Dict(), metadata={"description": "Bus tour: timetable."})
    item_id = fields.String(allow_none=True, metadata={"description": "Waiting for this."})
    item_title = fields.String()


class PlanOut(Schema):
    activity_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ACTIVITY_KINDS))
    plan_version = fields.Integer(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    itinerary = fields.List(fields.Dict(), metadata={"description": "Bus tour: timetable."})
    itinerary_problem = fields.String(
        allow_none=True, metadata={"description": "Why a bus tour has no timetable (to fix)."}
    )
    programmes = fields.List(fields.Nested(ProgrammeOut), required=True)


class RoomPersonOut(Schema):
    registration_id = fields.String(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    school = fields.String(required=True)


class RoomListOut(Schema):
    session_id = fields.String(required=True, metadata={"description": "Session, workshop or bus."})
    title = fields.String(required=True)
    provider = fields.String(required=True)
    round = fields.Integer(required=True)
    capacity = fields.Integer(required=True)
    count = fields.Integer(required=True)
    pupils = fields.List(fields.Nested(RoomPersonOut), required=True)


class RoomListsOut(Schema):
    activity_id = fields.String(required=True)
    rooms = fields.List(fields.Nested(RoomListOut), required=True)


class FieldError(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "Dutch, for people."})


class ProblemOut(Schema):
    """RFC 9457 problem details; `code` is stable for programs, the texts are Dutch."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    detail = fields.String()
    errors = fields.List(fields.Nested(FieldError))
