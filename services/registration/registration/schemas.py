"""The registration HTTP API's input and output schemas (marshmallow)."""

from __future__ import annotations

from datetime import date, datetime
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
    AGE_BANDS,
    AUDIENCES,
    PHASES,
    ROLES,
    SCHOOL_KINDS,
    BusSpec,
    RoundSpec,
    SessionSpec,
    StopSpec,
    WorkshopSpec,
)
from lob_common.timeutil import AMSTERDAM, local, local_date
from registration.domain.errors import InvalidInput
from registration.domain.history import MAX_PARTICIPANTS_PER_CALL
from registration.domain.model import SIGN_UP_ROLES, Consent, RegistrationStatus, School
from registration.domain.rules import RuleViolation

_name = validate.Length(min=1, max=100)
# Sane ranges: anything outside is a typing error (and would not fit the database's integers).
MAX_CAPACITY = 100_000
MAX_SEATS = 1_000
FIRST_YEAR, LAST_YEAR = 2000, 2100
OLDEST_BIRTH_DATE = date(1900, 1, 1)


class Name(fields.String):
    """A name as people type it: outer spaces dropped; only spaces is no name."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("Vul een naam in (niet alleen spaties).")
        return text


def _in_our_years(moment: datetime) -> None:
    # The year as written first: converting 9999-12-31T23:00-05:00 to Amsterdam overflows.
    if not FIRST_YEAR <= moment.year <= LAST_YEAR or not (
        FIRST_YEAR <= local(moment).year <= LAST_YEAR
    ):
        raise ValidationError(f"Kies een tijdstip tussen {FIRST_YEAR} en {LAST_YEAR}.")


def _a_birth_date(day: date) -> None:
    if day < OLDEST_BIRTH_DATE:
        raise ValidationError(f"Een geboortedatum na {OLDEST_BIRTH_DATE:%d-%m-%Y}, graag.")
    if day > local_date(datetime.now(AMSTERDAM)):
        raise ValidationError("De geboortedatum ligt in de toekomst.")


# The same bounds as patterns, so the OpenAPI document (and clients generated from it) knows them.
YEARS_PATTERN = r"^(20[0-9]{2}|2100)-"
BIRTH_DATE_PATTERN = r"^(19|20)[0-9]{2}-"


def _moment(**kwargs: Any) -> fields.AwareDateTime:
    """A moment in the years we plan for; without an offset it is Amsterdam time."""
    metadata = {"pattern": YEARS_PATTERN, **kwargs.pop("metadata", {})}
    return fields.AwareDateTime(
        default_timezone=AMSTERDAM, validate=_in_our_years, metadata=metadata, **kwargs
    )


_slug = validate.Regexp(
    r"^[a-z0-9][a-z0-9-]{0,63}$",
    error="Gebruik kleine letters, cijfers en streepjes (hoogstens 64).",
)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class SignUpIn(_Strict):
    """A sign-up for one activity, by or for one person.

    What is required depends on the role (the OpenAPI document states it per role): a pupil
    needs a birth date and a school (a school's key may leave the school out: its own), a
    young adult a birth date, a professional neither. Under 16 a pupil needs a parent's address.
    """

    activity_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The activity (GET /activities).", "example": "loopbaanevenement"},
    )
    role = fields.String(
        load_default="pupil",
        validate=validate.OneOf([r.value for r in SIGN_UP_ROLES]),
        metadata={
            "description": "Who signs up: a pupil (default), a young adult (12-27, without "
            "a school) or a professional (decaan, mentor, ...). The activity's audience decides "
            "who may.",
            "example": "pupil",
        },
    )
    first_name = Name(
        required=True, validate=_name, metadata={"description": "Roepnaam.", "example": "Sanne"}
    )
    last_name = Name(
        required=True,
        validate=_name,
        metadata={"description": "Last name with tussenvoegsel.", "example": "de Vries"},
    )
    email = fields.Email(
        required=True,
        validate=validate.Length(max=254),
        metadata={"description": "Where the confirmation goes.", "example": "sanne@example.nl"},
    )
    date_of_birth = fields.Date(
        load_default=None,
        allow_none=True,
        validate=_a_birth_date,
        metadata={
            "pattern": BIRTH_DATE_PATTERN,
            "description": "Required for pupils and young adults (age on the day, consent). "
            "Not in the future, not before 1900.",
            "example": "2009-03-14",
        },
    )
    school_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={
            "description": "The school (GET /schools). Required for pupils; with a school's "
            "key it is that school (leave it out or name your own).",
            "example": "farel-college",
        },
    )
    school_year = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=6),
        metadata={"description": "Leerjaar (1-6).", "example": 4},
    )
    municipality = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "Where the person lives; for pupils it defaults to the school's.",
            "example": "Amersfoort",
        },
    )
    phase = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(PHASES),
        metadata={
            "description": "Young adults and professionals: the phase they are in (pupils: from "
            "their school).",
            "example": "mbo",
        },
    )
    parent_email = fields.Email(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=254),
        metadata={
            "description": "Pupils under 16: a parent's address, for consent (AVG).",
            "example": "ouder@example.nl",
        },
    )
    choices = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={
            "description": "Info day: exactly 3 different session ids.",
            "example": ["S01", "S07", "S12"],
        },
    )
    backup = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Info day: a 4th session as a backup.", "example": "S03"},
    )
    ranking = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={
            "description": "Orientation day: 1-3 workshop ids, the favourite first.",
            "example": ["w1-2", "w1-5"],
        },
    )

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _role_fields(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        """A birth date the field refused is named there; a missing one is named here."""
        role = data.get("role", "pupil")
        given = isinstance(original, dict) and original.get("date_of_birth") is not None
        if role in ("pupil", "young_adult") and not data.get("date_of_birth") and not given:
            raise ValidationError(
                {"date_of_birth": ["Geboortedatum is nodig (voor leeftijd en toestemming)."]}
            )


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


def _count(maximum: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=maximum), **kwargs)


class SessionIn(SessionSpec):
    """An info-day session (the contract's SessionSpec, with sane bounds for input)."""

    class Meta:
        unknown = RAISE

    capacity = _count(MAX_CAPACITY, required=True, metadata={"example": 30})
    rounds = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=20)),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"example": [1, 2, 3]},
    )


class RoundIn(RoundSpec):
    class Meta:
        unknown = RAISE

    round = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=20))
    starts_at = _moment(required=True)
    ends_at = _moment(required=True)


class WorkshopIn(WorkshopSpec):
    class Meta:
        unknown = RAISE

    capacity = _count(MAX_CAPACITY, required=True, metadata={"example": 16})


class BusIn(BusSpec):
    class Meta:
        unknown = RAISE

    seats = _count(MAX_SEATS, required=True, metadata={"example": 24})


class StopIn(StopSpec):
    class Meta:
        unknown = RAISE

    visit_minutes = _count(24 * 60, load_default=0)
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))


class ActivityIn(_Strict):
    """An operator publishes an activity with the structure its scheduling needs.

    Publishing an id that exists updates it, and needs `If-Match` with the ETag of GET
    /activities/{id}: two operators then cannot overwrite each other's changes.
    """

    id = fields.String(required=True, validate=_slug, metadata={"example": "orientatiedag-1"})
    kind = fields.String(
        required=True,
        validate=validate.OneOf(ACTIVITY_KINDS),
        metadata={"example": "orientation_day"},
    )
    title = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"example": "MBO oriëntatiedag 1"},
    )
    starts_at = _moment(required=True, metadata={"example": "2026-12-11T14:00:00+01:00"})
    ends_at = _moment(required=True, metadata={"example": "2026-12-11T16:00:00+01:00"})
    location = fields.String(
        load_default="", validate=validate.Length(max=200), metadata={"example": "Amersfoort"}
    )
    capacity = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_CAPACITY),
        metadata={"description": "Places in all (none: no limit).", "example": 200},
    )
    sign_up_opens_at = _moment(
        load_default=None,
        allow_none=True,
        metadata={"description": "Sign-up opens (none: at once).", "example": None},
    )
    sign_up_closes_at = _moment(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Sign-up closes (none: when the activity starts).",
            "example": "2026-12-01T23:59:00+01:00",
        },
    )
    audience = fields.List(
        fields.String(validate=validate.OneOf(AUDIENCES)),
        load_default=None,
        validate=validate.Length(min=1, max=len(AUDIENCES)),
        metadata={
            "description": "Who it is for; a sign-up's role must fit (pupil: pupils, "
            "professional: professionals, young_adult: young_adults). Default by kind.",
            "example": ["pupils", "young_adults"],
        },
    )
    host_school_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "The school or mbo college that hosts it (GET /schools): its `host` "
            "keys read the activity's lists.",
            "example": "mbo-amersfoort",
        },
    )
    rounds = fields.List(
        fields.Nested(RoundIn), load_default=list, validate=validate.Length(max=20)
    )
    sessions = fields.List(
        fields.Nested(SessionIn), load_default=list, validate=validate.Length(max=500)
    )
    workshops = fields.List(
        fields.Nested(WorkshopIn), load_default=list, validate=validate.Length(max=500)
    )
    buses = fields.List(fields.Nested(BusIn), load_default=list, validate=validate.Length(max=50))
    stops = fields.List(fields.Nested(StopIn), load_default=list, validate=validate.Length(max=50))
    departure = fields.Nested(
        StopIn,
        load_default=None,
        allow_none=True,
        metadata={"description": "Bus tours: where the bus leaves (at starts_at) and returns."},
    )
    travel_minutes = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(
            keys=fields.String(),
            values=fields.Integer(strict=True, validate=validate.Range(min=0, max=24 * 60)),
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
    historical = fields.Boolean(
        load_default=False,
        metadata={
            "description": "A past activity loaded to keep its figures (a finished season): it "
            "must be over; nobody signs up, it is never planned or mailed about; load its "
            "participants with POST /activities/{activity_id}/history.",
            "example": False,
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
        opens = data.get("sign_up_opens_at")
        if opens and opens >= (closes or data["starts_at"]):
            raise ValidationError(
                "De aanmelding moet openen voor ze sluit (en voor de activiteit begint).",
                "sign_up_opens_at",
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


class RegistrationQuery(_Strict):
    """GET /registrations: what to list (a school: only its own people; a host: only the
    activities it hosts)."""

    activity_id = fields.String(validate=validate.Length(min=1, max=64))
    school_id = fields.String(validate=validate.Length(min=1, max=64))
    status = fields.String(validate=validate.OneOf([s.value for s in RegistrationStatus]))
    role = fields.String(validate=validate.OneOf(ROLES))
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "Per page (JSON only)."},
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "`next_cursor` of the previous page."},
    )
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(("json", "csv")),
        metadata={
            "description": "`csv`: every match in one file for a spreadsheet (UTF-8 with BOM, "
            "semicolons, Dutch headers); limit and cursor do not apply."
        },
    )


class RegistrationListItemOut(RegistrationOut):
    """A registration in a list, with whom it is for (only the caller's own people)."""

    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    school_year = fields.Integer(allow_none=True, required=True)


class RegistrationListOut(Schema):
    registrations = fields.List(fields.Nested(RegistrationListItemOut), required=True)
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Send as `cursor` for the next page; null on the last page."},
    )


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
    sign_up_opens_at = LocalDateTime(allow_none=True, required=True)
    audience = fields.List(
        fields.String(validate=validate.OneOf(AUDIENCES)),
        required=True,
        metadata={"description": "Who may sign up."},
    )
    host_school_id = fields.String(allow_none=True, required=True)
    cancelled_at = LocalDateTime(
        allow_none=True, required=True, metadata={"description": "Set once it is called off."}
    )
    rounds = fields.List(fields.Dict(), required=True)
    sessions = fields.List(fields.Dict(), required=True)
    workshops = fields.List(fields.Dict(), required=True)
    buses = fields.List(fields.Dict(), required=True)
    stops = fields.List(fields.Dict(), required=True)
    departure = fields.Dict(allow_none=True)
    travel_minutes = fields.Dict(allow_none=True)
    max_overbooking = fields.Float(allow_none=True)
    signed_up = fields.Integer(metadata={"description": "Current sign-ups (in lists)."})
    historical = fields.Boolean(
        required=True, metadata={"description": "A past activity loaded with its figures."}
    )


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
    row = fields.Integer(
        metadata={
            "description": "Files (class rosters, attendance lists): the line, as Excel shows it."
        }
    )


class ProblemOut(Schema):
    """RFC 9457 problem details; `code` is stable for programs, the texts are Dutch."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    detail = fields.String()
    errors = fields.List(fields.Nested(FieldError))


# --- class rosters -------------------------------------------------------------------------------


class RosterQuery(_Strict):
    """POST /activities/{activity_id}/rosters: for which school, and what to do with errors."""

    school_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "The school whose pupils these are: required for the operator; a "
            "school's key signs up its own pupils (naming another school is refused)."
        },
    )
    valid_rows_only = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Store the good rows of a file with errors (and report the bad ones) "
            "instead of refusing the file."
        },
    )
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "Only check: the same answer, nothing stored."},
    )


class RosterRowErrorOut(Schema):
    row = fields.Integer(required=True, metadata={"description": "The file line."})
    field = fields.String(
        required=True,
        metadata={"description": "The column (docs/rosters.md), `columns` or `row`."},
    )
    message = fields.String(required=True, metadata={"description": "Dutch: what to fix."})


class RosterRefusalOut(Schema):
    row = fields.Integer(required=True, metadata={"description": "The file line."})
    message = fields.String(required=True, metadata={"description": "Dutch: why not."})


class RosterResultOut(Schema):
    """What a roster upload did (or, with dry_run, would do)."""

    activity_id = fields.String(required=True)
    school_id = fields.String(required=True)
    dry_run = fields.Boolean(required=True, metadata={"description": "True: nothing stored."})
    lines = fields.Integer(required=True, metadata={"description": "Pupils' lines read."})
    created = fields.Integer(required=True, metadata={"description": "New sign-ups."})
    updated = fields.Integer(
        required=True,
        metadata={"description": "Pupils already signed up whose details were corrected."},
    )
    unchanged = fields.Integer(
        required=True, metadata={"description": "Pupils already signed up as the file says."}
    )
    refused = fields.Integer(
        required=True, metadata={"description": "Good rows not signed up; see refusals."}
    )
    without_email = fields.Integer(
        required=True,
        metadata={"description": "Pupils signed up (or kept) without an e-mail address."},
    )
    refusals = fields.List(fields.Nested(RosterRefusalOut), required=True)
    errors = fields.List(
        fields.Nested(RosterRowErrorOut),
        required=True,
        metadata={"description": "Lines not signed up (valid_rows_only); empty otherwise."},
    )
    warnings = fields.List(
        fields.String(), required=True, metadata={"description": "Dutch; nothing to fix."}
    )


# --- a finished season, loaded (domain/history.py) ------------------------------------------


class SchoolIn(_Strict):
    """A school or institution of the region (PUT /schools/{school_id})."""

    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"example": "Farel College"},
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(SCHOOL_KINDS),
        metadata={
            "description": "vo schools are Tabel 3a's rows; mbo colleges and `other` "
            "institutions join them in Tabel 3b.",
            "example": "vmbo",
        },
    )
    municipality = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"example": "Amersfoort"},
    )
    contact_email = fields.Email(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=254),
        metadata={
            "description": "The school's contact (its decaan): receives the school's digest of "
            "where its pupils go. Left out: unchanged; null: none.",
            "example": "decaan@farel-college.example.nl",
        },
    )


def school_from(school_id: str, data: dict[str, Any]) -> School:
    """The school a PUT names: its id from the path (checked like an activity's id)."""
    try:
        _slug(school_id)
    except ValidationError as exc:
        raise InvalidInput([RuleViolation("school_id", str(exc.messages[0]))]) from None
    return School(school_id, data["name"], data["kind"], data.get("municipality"))


class HistoryParticipantIn(_Strict):
    """One participant of a past activity, anonymous: no name, no birth date."""

    key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "Your key for this participant within the activity: sending it "
            "again changes nothing, or corrects the record if a field differs.",
            "example": "2024-vld-0001",
        },
    )
    role = fields.String(
        required=True,
        validate=validate.OneOf(ROLES),
        metadata={"example": "professional"},
    )
    school_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "Required for pupils; a professional without one counts under "
            "'Overige instellingen'.",
            "example": "farel-college",
        },
    )
    age = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=120),
        metadata={"description": "Age on the day; only its band is kept.", "example": 15},
    )
    age_band = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(AGE_BANDS),
        metadata={"description": "Instead of the age.", "example": "12-15"},
    )
    phase = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(PHASES),
        metadata={"description": "Pupils: from their school.", "example": "vo"},
    )
    municipality = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Default: the school's.", "example": "Amersfoort"},
    )
    attended = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={"description": "Whether they came (null: not known).", "example": True},
    )


class HistoryIn(_Strict):
    participants = fields.List(
        fields.Nested(HistoryParticipantIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_PARTICIPANTS_PER_CALL),
        metadata={"description": f"1 to {MAX_PARTICIPANTS_PER_CALL} per call."},
    )


class HistoryOut(Schema):
    activity_id = fields.String(required=True)
    received = fields.Integer(required=True, metadata={"description": "Participants sent."})
    recorded = fields.Integer(required=True, metadata={"description": "New records."})
    corrected = fields.Integer(required=True, metadata={"description": "Records changed."})
    unchanged = fields.Integer(required=True, metadata={"description": "Sent before, as is."})
    participants = fields.Integer(
        required=True, metadata={"description": "The activity's records now."}
    )
