"""Registration's use cases: authenticate, publish an activity, sign up, look up a contact.

Each use case runs in one unit of work: the change and the event it emits commit together.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.wrappers import Request

from lob_common import metrics
from lob_common.contracts import ACTIVITY_SPEC_FIELDS
from lob_common.db import DatabaseHandle, UnitOfWork, json_ready, utcnow
from lob_common.http import (
    Problem,
    bearer_token,
    field_errors,
    forbidden,
    invalid,
    not_found,
    same_secret,
    unauthorized,
)
from lob_common.timeutil import local, local_date
from registration.adapters.tables import Activity, Person, Registration, School
from registration.domain.rules import (
    age_band,
    age_on,
    check_preferences,
    consent_required,
    phase_of,
)
from registration.schemas import SignUpIn


@dataclass(frozen=True)
class Caller:
    """Who is calling: the operator (everything) or one school (its own pupils only)."""

    kind: str  # "operator" or "school"
    school_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(db: DatabaseHandle, request: Request, operator_key: str | None) -> Caller:
    token = bearer_token(request)
    if same_secret(token, operator_key):
        return Caller("operator")
    if token:
        with db() as uow:
            school_id = uow.session.scalar(
                select(School.id).filter_by(api_key_hash=hash_key(token))
            )
        if school_id:
            return Caller("school", school_id)
    raise unauthorized()


def require_operator(caller: Caller) -> None:
    if not caller.is_operator:
        raise forbidden("Alleen de regionale projectgroep (operator) mag dit.")


def issue_school_key(db: DatabaseHandle, school_id: str) -> str:
    """A new API key for a school (the old one stops working). Only its hash is stored."""
    key = "sch_" + secrets.token_urlsafe(24)
    with db() as uow:
        school = uow.session.get(School, school_id)
        if school is None:
            raise LookupError(f"school {school_id} does not exist")
        school.api_key_hash = hash_key(key)
        uow.commit()
    return key


# --- activities --------------------------------------------------------------------------------


def publish_activity(db: DatabaseHandle, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create or update an activity and announce it; returns (activity, created)."""
    details = {k: data[k] for k in ACTIVITY_SPEC_FIELDS}
    with db() as uow:
        activity = uow.session.get(Activity, data["id"])
        created = activity is None
        if created:
            activity = Activity(id=data["id"])
            uow.session.add(activity)
        for key in (
            "kind",
            "title",
            "starts_at",
            "ends_at",
            "location",
            "capacity",
            "sign_up_closes_at",
        ):
            setattr(activity, key, data[key])
        activity.details = json_ready(details)
        activity.published_at = utcnow()
        uow.session.flush()
        uow.emit("activity_published", _activity_event(activity))
        uow.commit()
        return activity_view(activity), created


def _activity_event(activity: Activity) -> dict[str, Any]:
    return {
        "activity_id": activity.id,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": activity.starts_at.isoformat(),
        "ends_at": activity.ends_at.isoformat(),
        "location": activity.location,
        "capacity": activity.capacity,
        "sign_up_closes_at": activity.sign_up_closes_at.isoformat()
        if activity.sign_up_closes_at
        else None,
        **activity.details,
    }


def activity_view(activity: Activity, signed_up: int | None = None) -> dict[str, Any]:
    view = {
        "id": activity.id,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": local(activity.starts_at).isoformat(),
        "ends_at": local(activity.ends_at).isoformat(),
        "location": activity.location,
        "capacity": activity.capacity,
        "sign_up_closes_at": local(activity.sign_up_closes_at).isoformat()
        if activity.sign_up_closes_at
        else None,
        **activity.details,
    }
    if signed_up is not None:
        view["signed_up"] = signed_up
    return view


def list_activities(db: DatabaseHandle) -> list[dict[str, Any]]:
    with db() as uow:
        counts = dict(
            uow.session.execute(
                select(Registration.activity_id, func.count())
                .where(Registration.status == "signed_up")
                .group_by(Registration.activity_id)
            ).all()
        )
        activities = uow.session.scalars(
            select(Activity).where(Activity.published_at.is_not(None)).order_by(Activity.starts_at)
        ).all()
        return [activity_view(a, counts.get(a.id, 0)) for a in activities]


# --- sign-ups ----------------------------------------------------------------------------------


def sign_up(
    db: DatabaseHandle, body: Any, caller: Caller, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Register one person for one activity; returns (registration, created).

    A repeated request with the same Idempotency-Key returns the first result, so a client that
    lost the answer can safely send again. Otherwise the checks run in the order a school can act
    on them: who may ask (403), then every bad field in one 422, then conflicts (409).
    """
    data, schema_errors = parse_sign_up(body)
    with db() as uow:
        earlier = None if schema_errors else _earlier(uow, caller, idempotency_key)
        if earlier is not None:
            return registration_view(earlier), False
        _authorize(data, caller)
        activity, school = _checked(uow, data, caller, schema_errors)
        _check_open(activity)
        person = _find_or_create_person(uow, data, school)
        if _already_signed_up(uow, activity.id, person.id):
            raise Problem(
                409,
                "already-signed-up",
                "Al aangemeld",
                f"Deze persoon is al aangemeld voor '{activity.title}'.",
            )
        registration = _create_registration(uow, activity, person, data, caller, idempotency_key)
        uow.emit("signed_up", _signed_up_event(activity, person, school, registration))
        uow.commit()
        metrics.SIGN_UPS.labels(activity.kind, person.role).inc()
        return registration_view(registration), True


def parse_sign_up(body: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The fields that parsed, and the schema's complaints about the others.

    Not raising here lets the domain checks run on what did parse, so one 422 names every field.
    """
    try:
        return SignUpIn().load(body), []
    except ValidationError as exc:
        return dict(exc.valid_data or {}), field_errors(exc.messages)


def _scoped(caller: Caller, key: str) -> str:
    return f"{caller.kind}:{caller.school_id or ''}:{key}"[:128]


def _earlier(uow: UnitOfWork, caller: Caller, key: str | None) -> Registration | None:
    if not key:
        return None
    return uow.session.scalar(select(Registration).filter_by(idempotency_key=_scoped(caller, key)))


def _authorize(data: dict[str, Any], caller: Caller) -> None:
    """A school signs up only its own pupils: that is about who asks, so it comes before fields."""
    school_id = data.get("school_id")
    if not caller.is_operator and school_id and school_id != caller.school_id:
        raise forbidden("Een school kan alleen eigen leerlingen aanmelden.")


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _checked(
    uow: UnitOfWork, data: dict[str, Any], caller: Caller, schema_errors: list[dict[str, str]]
) -> tuple[Activity, School | None]:
    """The activity and school once every field is right; otherwise one 422 naming them all."""
    activity, activity_errors = _find_activity(uow, data.get("activity_id"))
    school, school_errors = _find_school(uow, data, caller)
    person_errors = _person_errors(data, activity) if activity else []
    errors = _all_errors(schema_errors, [*activity_errors, *school_errors, *person_errors])
    if errors or activity is None:  # no activity always comes with an error
        raise invalid(errors)
    return activity, school


def _all_errors(
    schema_errors: list[dict[str, str]], domain_errors: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Schema errors first, then domain errors on the other fields.

    A field the schema rejected reaches the domain checks only as its default (or not at all),
    so what they would say about it is not about what the school sent.
    """
    named = {e["field"].split(".")[0] for e in schema_errors}
    return [*schema_errors, *(e for e in domain_errors if e["field"] not in named)]


def _find_activity(
    uow: UnitOfWork, activity_id: str | None
) -> tuple[Activity | None, list[dict[str, str]]]:
    if activity_id is None:  # did not parse: the schema named it
        return None, []
    activity = uow.session.get(Activity, activity_id)
    if activity is None or activity.published_at is None:
        return None, [_error("activity_id", f"Onbekende activiteit: {activity_id}.")]
    return activity, []


def _check_open(activity: Activity) -> None:
    closes = activity.sign_up_closes_at or activity.starts_at
    if utcnow() >= closes:
        raise Problem(
            409,
            "sign-up-closed",
            "Aanmelding gesloten",
            f"De aanmelding voor '{activity.title}' is gesloten sinds "
            f"{local(closes):%d-%m-%Y %H:%M}.",
        )


def _school_id_for(data: dict[str, Any], caller: Caller) -> str | None:
    """A school's own pupils need not name their school; everyone else names it (or none)."""
    if not caller.is_operator and data.get("role") == "pupil":
        return caller.school_id
    return data.get("school_id")


def _find_school(
    uow: UnitOfWork, data: dict[str, Any], caller: Caller
) -> tuple[School | None, list[dict[str, str]]]:
    school_id = _school_id_for(data, caller)
    if not school_id:
        if data.get("role") == "pupil":
            return None, [_error("school_id", "Een leerling hoort bij een school: geef school_id.")]
        return None, []
    school = uow.session.get(School, school_id)
    if school is None:
        return None, [_error("school_id", f"Onbekende school: {school_id}.")]
    return school, []


def _person_errors(data: dict[str, Any], activity: Activity) -> list[dict[str, str]]:
    return [
        *_preference_errors(data, activity),
        *_age_errors(data, activity),
        *_consent_errors(data, activity),
    ]


def _preference_errors(data: dict[str, Any], activity: Activity) -> list[dict[str, str]]:
    violations = check_preferences(
        activity.kind,
        data.get("choices", []),
        data.get("backup"),
        data.get("ranking", []),
        {s["session_id"] for s in activity.details.get("sessions", [])},
        {w["workshop_id"] for w in activity.details.get("workshops", [])},
    )
    return [_error(v.field, v.message) for v in violations]


def _age_errors(data: dict[str, Any], activity: Activity) -> list[dict[str, str]]:
    """Catches typing errors in the date; which ages fit depends on the role."""
    birth, role = data.get("date_of_birth"), data.get("role")
    if birth is None or role is None:  # missing or did not parse: the schema named it
        return []
    age = age_on(birth, local_date(activity.starts_at))
    errors: list[dict[str, str]] = []
    if not 10 <= age <= 30 and role != "professional":
        errors.append(
            _error("date_of_birth", f"Leeftijd op de dag zelf zou {age} zijn; klopt de datum?")
        )
    if role == "young_adult" and not 12 <= age <= 27:
        errors.append(
            _error("date_of_birth", "Jongeren kunnen zich aanmelden van 12 tot en met 27 jaar.")
        )
    return errors


def _consent_errors(data: dict[str, Any], activity: Activity) -> list[dict[str, str]]:
    day = local_date(activity.starts_at)
    if not consent_required(data.get("role", ""), data.get("date_of_birth"), day):
        return []
    if data.get("parent_email"):
        return []
    return [
        _error(
            "parent_email",
            "Onder de 16 is toestemming van een "
            "ouder nodig: geef het e-mailadres van een ouder of verzorger.",
        )
    ]


def _find_or_create_person(uow: UnitOfWork, data: dict[str, Any], school: School | None) -> Person:
    """One person record per person, so a pupil on several activities is one participant."""
    person = uow.session.scalar(
        select(Person).filter_by(
            email=data["email"].lower(),
            first_name=data["first_name"],
            last_name=data["last_name"],
            date_of_birth=data.get("date_of_birth"),
        )
    )
    if person is None:
        person = Person(
            id=str(uuid.uuid4()),
            created_at=utcnow(),
            email=data["email"].lower(),
            first_name=data["first_name"],
            last_name=data["last_name"],
            date_of_birth=data.get("date_of_birth"),
        )
        uow.session.add(person)
    person.role = data["role"]
    person.school_id = school.id if school else None
    person.school_year = data.get("school_year")
    person.municipality = data.get("municipality") or (school.municipality if school else None)
    person.phase = phase_of(data["role"], school.kind if school else None, data.get("phase"))
    person.parent_email = data.get("parent_email") or person.parent_email
    uow.session.flush()
    return person


def _already_signed_up(uow: UnitOfWork, activity_id: str, person_id: str) -> bool:
    return (
        uow.session.scalar(
            select(Registration.id).filter_by(
                activity_id=activity_id, person_id=person_id, status="signed_up"
            )
        )
        is not None
    )


def _create_registration(
    uow: UnitOfWork,
    activity: Activity,
    person: Person,
    data: dict[str, Any],
    caller: Caller,
    key: str | None,
) -> Registration:
    preferences = {k: data[k] for k in ("choices", "backup", "ranking") if data[k]}
    needs_consent = consent_required(
        person.role, person.date_of_birth, local_date(activity.starts_at)
    )
    registration = Registration(
        id=str(uuid.uuid4()),
        activity_id=activity.id,
        person_id=person.id,
        school_id=person.school_id,
        status="signed_up",
        preferences=preferences,
        consent="pending" if needs_consent else "not_required",
        idempotency_key=_scoped(caller, key) if key else None,
        created_at=utcnow(),
    )
    uow.session.add(registration)
    uow.session.flush()
    return registration


def _signed_up_event(
    activity: Activity, person: Person, school: School | None, registration: Registration
) -> dict[str, Any]:
    age = (
        age_on(person.date_of_birth, local_date(activity.starts_at))
        if person.date_of_birth
        else None
    )
    return {
        "registration_id": registration.id,
        "activity_id": activity.id,
        "activity_kind": activity.kind,
        "activity_starts_at": activity.starts_at.isoformat(),
        "person_id": person.id,
        "role": person.role,
        "school_id": school.id if school else None,
        "school_year": person.school_year,
        "age_band": age_band(age),
        "phase": person.phase,
        "municipality": person.municipality,
        "consent_required": registration.consent == "pending",
        "preferences": registration.preferences,
        "signed_up_at": registration.created_at.isoformat(),
    }


def registration_view(registration: Registration) -> dict[str, Any]:
    return {
        "registration_id": registration.id,
        "activity_id": registration.activity_id,
        "person_id": registration.person_id,
        "school_id": registration.school_id,
        "status": registration.status,
        "consent": registration.consent,
        "preferences": registration.preferences,
        "created_at": local(registration.created_at).isoformat(),
    }


def get_registration(db: DatabaseHandle, registration_id: str, caller: Caller) -> dict[str, Any]:
    with db() as uow:
        registration = uow.session.get(Registration, registration_id)
        if registration is None or not (
            caller.is_operator or registration.school_id == caller.school_id
        ):
            raise not_found(f"Aanmelding {registration_id}")
        return registration_view(registration)


def cancel(
    db: DatabaseHandle, registration_id: str, caller: Caller, reason: str = ""
) -> dict[str, Any]:
    """Cancel a sign-up; cancelling again changes nothing (and emits nothing)."""
    with db() as uow:
        registration = uow.session.get(Registration, registration_id)
        if registration is None or not (
            caller.is_operator or registration.school_id == caller.school_id
        ):
            raise not_found(f"Aanmelding {registration_id}")
        if registration.status != "cancelled":
            registration.status = "cancelled"
            registration.cancelled_at = utcnow()
            uow.emit(
                "sign_up_cancelled",
                {
                    "registration_id": registration.id,
                    "activity_id": registration.activity_id,
                    "person_id": registration.person_id,
                    "cancelled_at": registration.cancelled_at.isoformat(),
                    "reason": reason[:200],
                },
            )
            uow.commit()
        return registration_view(registration)


def erase_person(db: DatabaseHandle, person_id: str) -> bool:
    """AVG erasure: delete the person and every registration; other services follow the event.

    Returns False if there was no such person (erasing twice is not an error).
    """
    with db() as uow:
        person = uow.session.get(Person, person_id)
        if person is None:
            return False
        uow.session.query(Registration).filter_by(person_id=person_id).delete()
        uow.session.delete(person)
        uow.emit("person_erased", {"person_id": person_id, "erased_at": utcnow().isoformat()})
        uow.commit()
        return True


def contact_for(db: DatabaseHandle, registration_id: str) -> dict[str, Any] | None:
    """What notifications needs to write to someone about a registration; None once erased."""
    with db() as uow:
        row = uow.session.execute(
            select(Registration, Person, Activity)
            .join(Person, Person.id == Registration.person_id)
            .join(Activity, Activity.id == Registration.activity_id)
            .where(Registration.id == registration_id)
        ).first()
        if row is None:
            return None
        registration, person, activity = row
        return {
            "registration_id": registration.id,
            "person_id": person.id,
            "first_name": person.first_name,
            "email": person.email,
            "parent_email": person.parent_email,
            "role": person.role,
            "consent": registration.consent,
            "activity": {
                "id": activity.id,
                "title": activity.title,
                "kind": activity.kind,
                "starts_at": activity.starts_at.isoformat(),
                "ends_at": activity.ends_at.isoformat(),
                "location": activity.location,
            },
        }


# --- plans (owned by scheduling; registration adds the names it alone holds) -------------------


def no_plan_yet(activity_id: str) -> Problem:
    return Problem(
        404,
        "no-plan-yet",
        "Nog geen planning",
        f"Voor {activity_id} is nog geen planning gemaakt; die volgt na het sluiten "
        "van de aanmelding.",
    )


def scheduling_unavailable() -> Problem:
    return Problem(
        503,
        "scheduling-unavailable",
        "Planning tijdelijk niet bereikbaar",
        "Probeer het over een minuut opnieuw.",
        headers={"Retry-After": "60"},
    )


def _names(uow: UnitOfWork, registration_ids: list[str]) -> dict[str, tuple[str, str, str]]:
    rows = uow.session.execute(
        select(Registration.id, Person.first_name, Person.last_name, Registration.school_id)
        .join(Person, Person.id == Registration.person_id)
        .where(Registration.id.in_(registration_ids))
    ).all()
    return {r.id: (r.first_name, r.last_name, r.school_id or "") for r in rows}


def with_names(db: DatabaseHandle, plan: dict[str, Any]) -> dict[str, Any]:
    """A school's (or the operator's) view of a plan: each programme with the pupil's name."""
    ids = [p["registration_id"] for p in plan["programmes"]]
    with db() as uow:
        names = _names(uow, ids)
    programmes = []
    for programme in plan["programmes"]:
        first, last, _ = names.get(programme["registration_id"], ("", "", ""))
        programmes.append({"first_name": first, "last_name": last, **programme})
    return {**plan, "programmes": programmes}


def room_lists_with_names(db: DatabaseHandle, rooms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [pupil for room in rooms for pupil in room["pupils"]]
    with db() as uow:
        names = _names(uow, ids)
        schools = dict(uow.session.execute(select(School.id, School.name)).all())
    result = []
    for room in rooms:
        people = []
        for registration_id in room["pupils"]:
            first, last, school = names.get(registration_id, ("", "", ""))
            people.append(
                {
                    "registration_id": registration_id,
                    "first_name": first,
                    "last_name": last,
                    "school": schools.get(school, school),
                }
            )
        result.append({**{k: v for k, v in room.items() if k != "pupils"}, "pupils": people})
    return result


def room_lists_csv(rooms: list[dict[str, Any]]) -> str:
    """One line per pupil per room: what supervising decanen print and tick off."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ronde", "sessie", "titel", "aanbieder", "school", "achternaam", "voornaam"])
    for room in rooms:
        for pupil in room["pupils"]:
            writer.writerow(
                [
                    room["round"],
                    room["session_id"],
                    room["title"],
                    room["provider"],
                    pupil["school"],
                    pupil["last_name"],
                    pupil["first_name"],
                ]
            )
    return out.getvalue()
