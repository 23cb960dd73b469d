"""Schemas of the participant-facing API: attendance, a participant's own sign-up (by personal
token) and a person's data export (AVG access request)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registration.domain.model import Consent, RegistrationStatus
from registration.schemas import LocalDateTime, _Strict


class AttendanceIn(_Strict):
    present = fields.Boolean(required=True, truthy={True}, falsy={False})


class AttendanceOut(Schema):
    registration_id = fields.String(required=True)
    activity_id = fields.String(required=True)
    present = fields.Boolean(required=True)
    changed = fields.Boolean(
        required=True,
        metadata={"description": "False: this was already recorded (nothing was emitted)."},
    )
    recorded_at = LocalDateTime(allow_none=True, required=True)


class AttendanceFileOut(Schema):
    activity_id = fields.String(required=True)
    rows = fields.Integer(required=True, metadata={"description": "Rows read."})
    registrations = fields.Integer(required=True)
    present = fields.Integer(required=True)
    absent = fields.Integer(required=True)
    changed = fields.Integer(
        required=True, metadata={"description": "Registrations whose attendance changed."}
    )


class MyActivityOut(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True)
    starts_at = LocalDateTime(required=True)
    ends_at = LocalDateTime(required=True)
    location = fields.String(required=True)


class MyRegistrationOut(Schema):
    """A participant's own sign-up, as their personal link shows it."""

    registration_id = fields.String(required=True)
    first_name = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf([s.value for s in RegistrationStatus])
    )
    consent = fields.String(required=True, validate=validate.OneOf([c.value for c in Consent]))
    activity = fields.Nested(MyActivityOut, required=True)
    cancellable = fields.Boolean(required=True)
    cancel_until = LocalDateTime(required=True)
    programme = fields.Dict(
        allow_none=True,
        required=True,
        metadata={
            "description": "The plan in force for this person (sessions with rooms, workshop, "
            "bus seat and timetable); null until planned."
        },
    )


class ExportRegistrationOut(Schema):
    registration_id = fields.String(required=True)
    activity_id = fields.String(required=True)
    school_id = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    consent = fields.String(required=True)
    preferences = fields.Dict(required=True)
    created_at = LocalDateTime(required=True)
    cancelled_at = LocalDateTime(allow_none=True, required=True)
    consent_expires_at = LocalDateTime(allow_none=True, required=True)
    consent_decided_at = LocalDateTime(allow_none=True, required=True)
    erase_after = LocalDateTime(allow_none=True, required=True)
    attended = fields.Boolean(allow_none=True, required=True)
    attendance_recorded_at = LocalDateTime(allow_none=True, required=True)
    links = fields.List(fields.Dict(), required=True)


class PersonExportOut(Schema):
    """Everything registration holds about a person (AVG access request)."""

    person = fields.Dict(required=True)
    registrations = fields.List(fields.Nested(ExportRegistrationOut), required=True)
    exported_at = LocalDateTime(required=True)
