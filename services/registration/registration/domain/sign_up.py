"""Deciding a sign-up: who may sign up whom, for what, and with which consent.

`decide_sign_up` is the whole decision as one pure function of what the caller asked, the
activity and school it names, the person's earlier registrations and the moment. It raises in
the order a caller can act on: who asks (NotYourPupil), then every field to fix at once
(InvalidSignUp), then the state of things (SignUpClosed, AlreadySignedUp). `check_sign_up`
gives the field violations alone, for callers that collect them (e.g. one per roster row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from registration.domain.caller import Caller, CallerRole
from registration.domain.errors import (
    ActivityCancelled,
    AlreadySignedUp,
    InvalidSignUp,
    NotAllowed,
    NotYourPupil,
    SignUpClosed,
    SignUpNotOpenYet,
)
from registration.domain.model import (
    ACTIVE_STATUSES,
    Activity,
    Consent,
    LegalBasis,
    Preferences,
    PriorRegistration,
    Role,
    School,
    SignUpRequest,
)
from registration.domain.rules import (
    RuleViolation,
    age_band,
    age_on,
    check_age,
    check_audience,
    check_consent,
    check_preferences,
    needs_parent_consent,
    phase_of,
)


@dataclass(frozen=True)
class SignUp:
    """An accepted sign-up: the facts registration stores and announces."""

    activity: Activity
    role: Role
    first_name: str
    last_name: str
    email: str | None  # None only on the school's legal basis (a roster pupil without one)
    date_of_birth: date | None
    parent_email: str | None
    school: School | None
    school_year: int | None
    municipality: str | None
    phase: str | None
    age_band: str | None
    consent: Consent
    preferences: Preferences
    legal_basis: LegalBasis | None = None


def school_id_for(caller: Caller, request: SignUpRequest) -> str | None:
    """Whom a school signs up (its pupils, its mentors) belongs to that school, named or not;
    the operator and the website name the school (or none)."""
    if caller.role is CallerRole.SCHOOL:
        return caller.school_id
    return request.school_id


def age_on_the_day(request: SignUpRequest, activity: Activity | None) -> int | None:
    """The age that counts (on the activity's day); None when either is unknown."""
    if request.date_of_birth is None or activity is None:
        return None
    return age_on(request.date_of_birth, activity.day)


def check_sign_up(
    caller: Caller,
    request: SignUpRequest,
    activity: Activity | None,
    school: School | None,
    age: int | None,
) -> list[RuleViolation]:
    """Every field of the request the rules refuse.

    `activity` and `school` are what the request's ids found (None: not found); `age` is
    age_on_the_day(request, activity), computed once by the caller.
    """
    required = ("first_name", "last_name") if request.on_school_basis else _REQUIRED
    problems = [
        RuleViolation(name, "Dit veld is verplicht.")
        for name in required
        if not (getattr(request, name) or "").strip()
    ]
    if request.activity_id is not None and activity is None:
        problems.append(
            RuleViolation("activity_id", f"Onbekende activiteit: {request.activity_id}.")
        )
    problems += _school_violations(school_id_for(caller, request), request.role, school)
    if activity is None:
        return problems
    wishes = request.preferences
    problems += check_preferences(
        activity.kind,
        wishes.choices,
        wishes.backup,
        wishes.ranking,
        activity.session_ids,
        activity.workshop_ids,
    )
    if request.role is not None:
        problems += check_audience(
            activity.title, request.role, sorted(activity.for_whom), activity.is_for(request.role)
        )
    age_problems = check_age(request.role, age)
    problems += age_problems
    # An impossible birth date says nothing about consent; a school's roster asks for none.
    if not age_problems and not request.on_school_basis:
        problems += check_consent(request.role, age, request.parent_email)
    return problems


_REQUIRED = ("first_name", "last_name", "email")


def check_window(activity: Activity, now: datetime) -> None:
    """Raise unless the activity takes sign-ups at `now` (not called off, open, not closed)."""
    if activity.cancelled_at is not None:
        raise ActivityCancelled(activity.title)
    if activity.opens_later(now):
        assert activity.sign_up_opens_at is not None
        raise SignUpNotOpenYet(activity.title, activity.sign_up_opens_at)
    if not activity.is_open(now):
        raise SignUpClosed(activity.title, activity.closes_at)


def _school_violations(
    school_id: str | None, role: Role | None, school: School | None
) -> list[RuleViolation]:
    if not school_id:
        if role == Role.PUPIL:
            return [
                RuleViolation("school_id", "Een leerling hoort bij een school: geef school_id.")
            ]
        return []
    if school is None:
        return [RuleViolation("school_id", f"Onbekende school: {school_id}.")]
    return []


def merge_violations(
    input_errors: Sequence[RuleViolation], rule_errors: Iterable[RuleViolation]
) -> list[RuleViolation]:
    """The input's complaints first, then the rules' about the other fields.

    A field the input refused reaches the rules only as its default (or not at all), so what
    they would say about it is not about what the caller sent.
    """
    named = {e.field.split(".")[0] for e in input_errors}
    return [*input_errors, *(e for e in rule_errors if e.field not in named)]


def decide_sign_up(
    caller: Caller,
    request: SignUpRequest,
    activity: Activity | None,
    school: School | None,
    prior: Iterable[PriorRegistration],
    now: datetime,
    input_errors: Sequence[RuleViolation] = (),
) -> SignUp:
    """The sign-up to store, or the first reason (in the order a caller can act on) it is not.

    `prior`: the person's registrations so far (empty for someone new); `input_errors`: the
    fields that did not parse.
    """
    if not caller.may_sign_up_for(request.school_id, request.role):
        if caller.role is CallerRole.WEBSITE:
            raise NotAllowed("De website kan alleen leerlingen en jongeren aanmelden.")
        raise NotYourPupil()
    age = age_on_the_day(request, activity)
    violations = merge_violations(
        input_errors, check_sign_up(caller, request, activity, school, age)
    )
    if violations or activity is None or request.role is None:
        raise InvalidSignUp(violations)
    assert request.first_name and request.last_name  # checked above, as is the e-mail
    assert request.email or request.on_school_basis  # (not needed on the school's basis)
    check_window(activity, now)
    if any(p.activity_id == activity.id and p.status in ACTIVE_STATUSES for p in prior):
        raise AlreadySignedUp(activity.title)
    return SignUp(
        activity=activity,
        role=request.role,
        first_name=request.first_name,
        last_name=request.last_name,
        email=request.email,
        date_of_birth=request.date_of_birth,
        parent_email=request.parent_email,
        school=school,
        school_year=request.school_year,
        municipality=request.municipality or (school.municipality if school else None),
        phase=phase_of(request.role, school.kind if school else None, request.phase),
        age_band=age_band(age),
        consent=Consent.PENDING
        if needs_parent_consent(request.role, age) and not request.on_school_basis
        else Consent.NOT_REQUIRED,
        preferences=request.preferences,
        legal_basis=request.legal_basis,
    )


def signed_up_payload(
    sign_up: SignUp, registration_id: str, person_id: str, signed_up_at: datetime
) -> dict[str, Any]:
    """The `signed_up` event: ids and the facts consumers need; no name, address or birth date."""
    activity = sign_up.activity
    return {
        "registration_id": registration_id,
        "activity_id": activity.id,
        "activity_kind": activity.kind,
        "activity_starts_at": activity.starts_at.isoformat(),
        "person_id": person_id,
        "role": sign_up.role,
        "school_id": sign_up.school.id if sign_up.school else None,
        "school_year": sign_up.school_year,
        "age_band": sign_up.age_band,
        "phase": sign_up.phase,
        "municipality": sign_up.municipality,
        "consent_required": sign_up.consent is Consent.PENDING,
        "preferences": sign_up.preferences.as_dict(),
        "signed_up_at": signed_up_at.isoformat(),
    }
