"""Registration's use cases: publish an activity, register a school, sign up, cancel, erase.

Each runs in one unit of work (the change and the events it emits commit together): it reads
through the repository, lets the domain decide, writes, emits. Refusals are domain exceptions
(registration.domain.errors); registration.problems says how each is answered.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from lob_common import metrics
from lob_common.contracts import ACTIVITY_SPEC_FIELDS
from lob_common.db import DatabaseHandle, json_ready, utcnow
from lob_common.http import field_errors
from registration import auth
from registration.adapters.repository import Repository, school_of
from registration.adapters.tables import Activity, Person, School
from registration.domain import model
from registration.domain.caller import Caller
from registration.domain.errors import UnknownRegistration, UnknownSchool
from registration.domain.rules import RuleViolation
from registration.domain.sign_up import decide_sign_up, school_id_for, signed_up_payload
from registration.schemas import SignUpIn
from registration.views import activity_view, registration_view

# --- the catalogue -----------------------------------------------------------------------------

ACTIVITY_COLUMNS = (
    "kind",
    "title",
    "starts_at",
    "ends_at",
    "location",
    "capacity",
    "sign_up_closes_at",
)


def publish_activity(db: DatabaseHandle, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create or update an activity and announce it; returns (activity view, created)."""
    with db() as uow:
        repo = Repository(uow.session)
        activity = repo.activity_row(data["id"])
        created = activity is None
        if activity is None:
            activity = Activity(id=data["id"])
            uow.session.add(activity)
        for key in ACTIVITY_COLUMNS:
            setattr(activity, key, data[key])
        activity.details = json_ready({k: data[k] for k in ACTIVITY_SPEC_FIELDS})
        activity.published_at = utcnow()
        uow.session.flush()
        uow.emit("activity_published", _activity_published(activity))
        uow.commit()
        return activity_view(activity), created


def _activity_published(activity: Activity) -> dict[str, Any]:
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


def list_activities(db: DatabaseHandle) -> list[dict[str, Any]]:
    """The published activities by start time, each with its current number of sign-ups."""
    with db() as uow:
        repo = Repository(uow.session)
        counts = repo.sign_up_counts()
        return [activity_view(a, counts.get(a.id, 0)) for a in repo.published_activities()]


# --- schools -----------------------------------------------------------------------------------


def register_school(db: DatabaseHandle, school: model.School) -> bool:
    """Create or update a school; announce it (school_registered) when new or changed.

    Returns whether anything changed, so registering the same school again emits nothing.
    """
    with db() as uow:
        repo = Repository(uow.session)
        row = repo.school_row(school.id)
        if row is not None and school_of(row) == school:
            return False
        if row is None:
            row = School(id=school.id)
            uow.session.add(row)
        row.name, row.kind, row.municipality = school.name, school.kind, school.municipality
        uow.emit(
            "school_registered",
            {
                "school_id": school.id,
                "name": school.name,
                "kind": school.kind,
                "municipality": school.municipality,
            },
        )
        uow.commit()
        return True


def list_schools(db: DatabaseHandle) -> list[model.School]:
    with db() as uow:
        return Repository(uow.session).schools()


def issue_school_key(db: DatabaseHandle, school_id: str) -> str:
    """A new API key for a school (the old one stops working). Only its hash is stored."""
    key = auth.new_school_key()
    with db() as uow:
        school = Repository(uow.session).school_row(school_id)
        if school is None:
            raise UnknownSchool(school_id)
        school.api_key_hash = auth.hash_key(key)
        uow.commit()
    return key


# --- sign-ups ----------------------------------------------------------------------------------


def sign_up(
    db: DatabaseHandle, body: Any, caller: Caller, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Register one person for one activity; returns (registration view, created).

    A repeated request with the same Idempotency-Key returns the first result, so a client that
    lost the answer can safely send again. What to refuse, and in which order, is the domain's
    decision (decide_sign_up).
    """
    request, input_errors = parse_sign_up(body)
    scoped_key = caller.scoped(idempotency_key) if idempotency_key else None
    now = utcnow()
    with db() as uow:
        repo = Repository(uow.session)
        if scoped_key and not input_errors:
            earlier = repo.registration_by_idempotency_key(scoped_key)
            if earlier is not None:
                return registration_view(earlier), False
        activity = repo.published_activity(request.activity_id) if request.activity_id else None
        person = _known_person(repo, request)
        decision = decide_sign_up(
            caller,
            request,
            activity,
            repo.school(school_id_for(caller, request)),
            repo.prior_registrations(person.id) if person else [],
            now,
            input_errors,
        )
        person = repo.save_person(person, decision, now)
        registration = repo.add_registration(decision, person, scoped_key, now)
        uow.emit("signed_up", signed_up_payload(decision, registration.id, person.id, now))
        uow.commit()
        metrics.SIGN_UPS.labels(decision.activity.kind, decision.role).inc()
        return registration_view(registration), True


def parse_sign_up(body: Any) -> tuple[model.SignUpRequest, list[RuleViolation]]:
    """The request as far as it parsed, and the input schema's complaints about the rest.

    Not raising here lets the domain check what did parse, so one 422 names every field.
    """
    try:
        return model.SignUpRequest.from_fields(SignUpIn().load(body)), []
    except ValidationError as exc:
        errors = [RuleViolation(e["field"], e["message"]) for e in field_errors(exc.messages)]
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return model.SignUpRequest.from_fields(valid), errors


def _known_person(repo: Repository, request: model.SignUpRequest) -> Person | None:
    if not (request.email and request.first_name and request.last_name):
        return None
    return repo.find_person(
        request.email, request.first_name, request.last_name, request.date_of_birth
    )


def get_registration(db: DatabaseHandle, registration_id: str, caller: Caller) -> dict[str, Any]:
    with db() as uow:
        registration = Repository(uow.session).registration(registration_id)
        if registration is None or not caller.sees(registration.school_id):
            raise UnknownRegistration(registration_id)
        return registration_view(registration)


def cancel(
    db: DatabaseHandle, registration_id: str, caller: Caller, reason: str = ""
) -> dict[str, Any]:
    """Cancel a sign-up; cancelling again changes nothing (and emits nothing)."""
    with db() as uow:
        registration = Repository(uow.session).registration(registration_id)
        if registration is None or not caller.sees(registration.school_id):
            raise UnknownRegistration(registration_id)
        if registration.status != model.RegistrationStatus.CANCELLED:
            registration.status = model.RegistrationStatus.CANCELLED
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
        if not Repository(uow.session).erase_person(person_id):
            return False
        uow.emit("person_erased", {"person_id": person_id, "erased_at": utcnow().isoformat()})
        uow.commit()
        return True


def contact_for(db: DatabaseHandle, registration_id: str) -> dict[str, Any] | None:
    """What notifications needs to write to someone about a registration; None once erased."""
    with db() as uow:
        found = Repository(uow.session).contact(registration_id)
        if found is None:
            return None
        registration, person, activity = found
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


def with_names(db: DatabaseHandle, plan: dict[str, Any]) -> dict[str, Any]:
    """A school's (or the operator's) view of a plan: each programme with the pupil's name."""
    with db() as uow:
        names = Repository(uow.session).names(p["registration_id"] for p in plan["programmes"])
    programmes = []
    for programme in plan["programmes"]:
        first, last, _ = names.get(programme["registration_id"], ("", "", ""))
        programmes.append({"first_name": first, "last_name": last, **programme})
    return {**plan, "programmes": programmes}


def room_lists_with_names(db: DatabaseHandle, rooms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with db() as uow:
        repo = Repository(uow.session)
        names = repo.names(pupil for room in rooms for pupil in room["pupils"])
        schools = repo.school_names()
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
