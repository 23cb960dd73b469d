"""Registration's use cases: publish an activity, register a school, sign up, cancel, erase.

Each runs in one unit of work (the change and the events it emits commit together): it reads
through the repository, lets the domain decide, writes, emits. Refusals are domain exceptions
(registration.domain.errors); registration.problems says how each is answered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from lob_common import metrics
from lob_common.contracts import ACTIVITY_SPEC_FIELDS, audience_or_default
from lob_common.db import DatabaseHandle, UnitOfWork, json_ready, utcnow
from lob_common.http import field_errors
from lob_common.timeutil import local_date
from registration import auth
from registration.adapters import history
from registration.adapters.participants import ParticipantStore
from registration.adapters.repository import (
    RegistrationFilter,
    Repository,
    SignUpFacts,
    activity_of,
    identity_key,
    school_of,
    student_identity_key,
)
from registration.adapters.roster_files import read_roster, template_csv, template_xlsx
from registration.adapters.tables import (
    Activity,
    HistoricalParticipant,
    Person,
    Registration,
    School,
)
from registration.domain import consent as consent_rules
from registration.domain import model, roster
from registration.domain.caller import Caller, CallerRole
from registration.domain.catalogue import obstacles_to_update
from registration.domain.errors import (
    ActivityCancelled,
    ActivityInUse,
    AlreadySignedUp,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidSignUp,
    NotAllowed,
    PreconditionFailed,
    PreconditionRequired,
    UnknownActivity,
    UnknownRegistration,
)
from registration.domain.history import (
    HistoricalActivity,
    check_historical_publication,
    decide_history,
)
from registration.domain.roster_sign_up import (
    InvalidRoster,
    KnownPupils,
    Outcome,
    RosterCounts,
    RowDecision,
    changed_details,
    decide_rows,
    row_problems,
    sign_up_request,
)
from registration.domain.rules import RuleViolation, age_band, age_on, check_audience
from registration.domain.sign_up import (
    SignUp,
    check_window,
    decide_sign_up,
    school_id_for,
    signed_up_payload,
)
from registration.schemas import SignUpIn
from registration.views import (
    activity_view,
    registration_list_item,
    registration_view,
    registrations_csv,
)

# How long a parent has to answer, unless the service's config says (CONSENT_TTL_DAYS).
CONSENT_TTL = timedelta(days=14)
# One instance, loaded from by every request: building a schema deep-copies its declared fields
# (an eighth of a sign-up's Python calls), and a marshmallow schema keeps no state between loads.
SIGN_UP_IN = SignUpIn()

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


def etag(activity: Activity) -> str:
    """The version an update must name in If-Match (unquoted; the HTTP layer quotes it)."""
    return f"v{activity.version}"


def publish_activity(
    db: DatabaseHandle,
    data: dict[str, Any],
    if_match: Collection[str] | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], bool, str]:
    """Create or update an activity and announce it; returns (view, created, ETag).

    An update must name the current ETag in `if_match` ("*": any), unless `force` (the demo
    seed); it may not change the kind of, or take away what people are in from, an activity
    with sign-ups.
    """
    with db() as uow:
        repo = Repository(uow.session)
        activity = repo.activity_row(data["id"])
        created = activity is None
        details = json_ready({k: data[k] for k in ACTIVITY_SPEC_FIELDS})
        if data.get("host_school_id") and repo.school(data["host_school_id"]) is None:
            raise InvalidInput(
                [RuleViolation("host_school_id", f"Onbekende school: {data['host_school_id']}.")]
            )
        _may_be_historical(repo, activity, data)
        if activity is None:
            activity = Activity(id=data["id"], version=1)
            uow.session.add(activity)
        else:
            _may_update(repo, activity, data["kind"], details, if_match, force)
            activity.version += 1
        for key in ACTIVITY_COLUMNS:
            setattr(activity, key, data[key])
        activity.sign_up_opens_at = data.get("sign_up_opens_at")
        activity.host_school_id = data.get("host_school_id")
        activity.audience = sorted(set(audience_or_default(data["kind"], data.get("audience"))))
        activity.details = details
        activity.historical = bool(data.get("historical"))
        activity.published_at = utcnow()
        uow.session.flush()
        uow.emit("activity_published", _activity_published(activity))
        uow.commit()
        return activity_view(activity), created, etag(activity)


def _may_update(
    repo: Repository,
    activity: Activity,
    kind: str,
    details: dict[str, Any],
    if_match: Collection[str] | None,
    force: bool,
) -> None:
    if activity.cancelled_at is not None:
        raise ActivityCancelled(activity.title)
    if not force:
        if not if_match:
            raise PreconditionRequired()
        if "*" not in if_match and etag(activity) not in if_match:
            raise PreconditionFailed(etag(activity))
    obstacles = obstacles_to_update(
        activity.kind,
        activity.details,
        kind,
        details,
        [_preferences(r.preferences) for r in repo.active_sign_ups(activity.id)],
    )
    if obstacles:
        raise ActivityInUse(obstacles)


def _preferences(stored: dict[str, Any]) -> model.Preferences:
    return model.Preferences(
        tuple(stored.get("choices") or ()), stored.get("backup"), tuple(stored.get("ranking") or ())
    )


def _activity_published(activity: Activity) -> dict[str, Any]:
    return {
        "activity_id": activity.id,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": activity.starts_at.isoformat(),
        "ends_at": activity.ends_at.isoformat(),
        "location": activity.location,
        "capacity": activity.capacity,
        "sign_up_closes_at": _iso(activity.sign_up_closes_at),
        "sign_up_opens_at": _iso(activity.sign_up_opens_at),
        "audience": list(activity.audience),
        "host_school_id": activity.host_school_id,
        "historical": bool(activity.historical),
        **activity.details,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def get_activity(db: DatabaseHandle, activity_id: str) -> tuple[dict[str, Any], str]:
    """One published activity with its current number of sign-ups, and its ETag."""
    with db() as uow:
        repo = Repository(uow.session)
        activity = repo.activity_row(activity_id)
        if activity is None or activity.published_at is None:
            raise UnknownActivity(activity_id)
        count = repo.sign_up_counts().get(activity_id, 0)
        return activity_view(activity, count), etag(activity)


def cancel_activity(
    db: DatabaseHandle, activity_id: str, reason: str = ""
) -> tuple[dict[str, Any], str]:
    """Call an activity off (activity_cancelled: notifications tells its participants).

    Cancelling again changes nothing and emits nothing. Its sign-ups stay as they were, so the
    lists still say who was signed up; new sign-ups and updates are refused.
    """
    with db() as uow:
        repo = Repository(uow.session)
        activity = repo.activity_row(activity_id)
        if activity is None or activity.published_at is None:
            raise UnknownActivity(activity_id)
        if activity.cancelled_at is None:
            activity.cancelled_at = utcnow()
            activity.version += 1
            uow.emit(
                "activity_cancelled",
                {
                    "activity_id": activity.id,
                    "cancelled_at": activity.cancelled_at.isoformat(),
                    "reason": reason[:200],
                },
            )
            uow.commit()
        count = repo.sign_up_counts().get(activity_id, 0)
        return activity_view(activity, count), etag(activity)


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
    """A new API key for a school (its previous one stops working). Only its hash is stored."""
    return auth.issue_school_key(db, school_id)


# --- sign-ups ----------------------------------------------------------------------------------


def sign_up(
    db: DatabaseHandle,
    body: Any,
    caller: Caller,
    idempotency_key: str | None = None,
    consent_ttl: timedelta | None = None,
) -> tuple[dict[str, Any], bool]:
    """Register one person for one activity; returns (registration view, created).

    A repeated request with the same Idempotency-Key returns the first result, so a client that
    lost the answer can safely send again; the same key with another request is refused. What
    to refuse, and in which order, is the domain's decision (decide_sign_up).

    Two identical sign-ups at once: the database's unique constraints (one person record per
    school, one active sign-up per person and activity, one use of an Idempotency-Key) let only
    one commit; the other is decided again and finds the first (409, or the first result).
    """
    request, input_errors = parse_sign_up(body)
    scoped_key = caller.scoped(idempotency_key) if idempotency_key else None
    fingerprint = request_hash(body) if scoped_key else None
    try:
        return _sign_up(db, request, input_errors, caller, scoped_key, fingerprint, consent_ttl)
    except IntegrityError:
        return _sign_up(db, request, input_errors, caller, scoped_key, fingerprint, consent_ttl)
    except AlreadySignedUp:
        if scoped_key is None:
            raise
        # The first request with this key may have committed after we looked the key up and
        # before the rules looked at the person's sign-ups: ask the key again (its result, or
        # the same refusal when the earlier sign-up came without this key).
        return _sign_up(db, request, input_errors, caller, scoped_key, fingerprint, consent_ttl)


def request_hash(body: Any) -> str:
    """The request as sent, independent of key order and spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sign_up(
    db: DatabaseHandle,
    request: model.SignUpRequest,
    input_errors: list[RuleViolation],
    caller: Caller,
    scoped_key: str | None,
    fingerprint: str | None,
    consent_ttl: timedelta | None = None,
) -> tuple[dict[str, Any], bool]:
    now = utcnow()
    with db() as uow:
        repo = Repository(uow.session)
        facts = repo.sign_up_facts(
            request.activity_id,
            school_id_for(caller, request),
            _person_details(request),
            scoped_key,
        )
        if facts.earlier is not None:
            if facts.earlier.request_hash not in (None, fingerprint):
                raise IdempotencyKeyReused(scoped_key.split(":", 2)[-1])
            return registration_view(facts.earlier), False
        registration, decision = record_sign_up(
            uow,
            repo,
            caller,
            request,
            facts,
            now,
            input_errors,
            scoped_key,
            fingerprint,
            consent_ttl,
        )
        uow.commit()
        metrics.SIGN_UPS.labels(decision.activity.kind, decision.role).inc()
        return registration_view(registration), True


def record_sign_up(
    uow: UnitOfWork,
    repo: Repository,
    caller: Caller,
    request: model.SignUpRequest,
    facts: SignUpFacts,
    now: datetime,
    input_errors: Sequence[RuleViolation] = (),
    scoped_key: str | None = None,
    fingerprint: str | None = None,
    consent_ttl: timedelta | None = None,
) -> tuple[Registration, SignUp]:
    """Decide one sign-up and, if accepted, store it and its `signed_up` event in `uow`
    (not committed: a caller may record many, e.g. a roster's rows, in one transaction).

    Raises the domain's refusal (decide_sign_up) and stores nothing then. A sign-up that needs
    a parent's consent waits for it: consent_requested instead of signed_up (docs/consent.md).
    """
    person = facts.person
    decision = decide_sign_up(
        caller,
        request,
        facts.activity,
        facts.school,
        repo.prior_registrations(person.id) if person else [],
        now,
        input_errors,
    )
    person = repo.save_person(person, decision, now)
    pending = decision.consent is model.Consent.PENDING
    expires = consent_rules.expires_at(now, consent_ttl or CONSENT_TTL) if pending else None
    registration = repo.add_registration(decision, person, scoped_key, now, fingerprint, expires)
    if registration.status == model.RegistrationStatus.PENDING_CONSENT:
        from registration.handlers_consent import ask_parent  # it builds on this module

        ask_parent(uow, registration, now, consent_ttl or CONSENT_TTL)
    else:
        uow.emit("signed_up", signed_up_payload(decision, registration.id, person.id, now))
    return registration, decision


def parse_sign_up(body: Any) -> tuple[model.SignUpRequest, list[RuleViolation]]:
    """The request as far as it parsed, and the input schema's complaints about the rest.

    Not raising here lets the domain check what did parse, so one 422 names every field.
    """
    try:
        return model.SignUpRequest.from_fields(SIGN_UP_IN.load(body)), []
    except ValidationError as exc:
        errors = [RuleViolation(e["field"], e["message"]) for e in field_errors(exc.messages)]
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return model.SignUpRequest.from_fields(valid), errors


def _person_details(request: model.SignUpRequest) -> tuple[str, str, str, date | None] | None:
    """What finds the person a sign-up is for (with the school); None if it names too little."""
    if not (request.email and request.first_name and request.last_name):
        return None
    return request.email, request.first_name, request.last_name, request.date_of_birth


def _visible_registration(repo: Repository, registration_id: str, caller: Caller) -> Registration:
    """The registration, if it is the caller's to see; else the same answer as for none."""
    found = repo.registration_with_host(registration_id)
    if found is None or not caller.sees(found[0].school_id, found[1]):
        raise UnknownRegistration(registration_id)
    return found[0]


def get_registration(db: DatabaseHandle, registration_id: str, caller: Caller) -> dict[str, Any]:
    with db() as uow:
        return registration_view(
            _visible_registration(Repository(uow.session), registration_id, caller)
        )


# --- lists -------------------------------------------------------------------------------------


def list_registrations(
    db: DatabaseHandle, caller: Caller, query: dict[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the registrations the caller may see, oldest first, and the next cursor.

    `query`: RegistrationQuery's fields. A school sees its own people, a host the activities it
    hosts, the operator everything.
    """
    where = _registration_filter(caller, query)
    after = _decode_cursor(query["cursor"]) if query.get("cursor") else None
    limit = query["limit"]
    with db() as uow:
        rows = Repository(uow.session).registrations(where, after, limit + 1)
    page = [registration_list_item(r, p) for r, p in rows[:limit]]
    more = len(rows) > limit
    return page, _encode_cursor(rows[limit - 1][0]) if more else None


def registrations_spreadsheet(db: DatabaseHandle, caller: Caller, query: dict[str, Any]) -> str:
    """Every registration the query matches, as a decaan's CSV (views.registrations_csv)."""
    where = _registration_filter(caller, query)
    with db() as uow:
        repo = Repository(uow.session)
        rows = [registration_list_item(r, p) for r, p in repo.registrations(where, None, None)]
        titles = {a.id: a.title for a in repo.published_activities()}
        return registrations_csv(rows, repo.school_names(), titles)


def _registration_filter(caller: Caller, query: dict[str, Any]) -> RegistrationFilter:
    if (
        caller.role is CallerRole.SCHOOL
        and query.get("school_id")
        and query["school_id"] != caller.school_id
    ):
        raise NotAllowed("Een school ziet alleen de eigen aanmeldingen.")
    return RegistrationFilter(
        activity_id=query.get("activity_id"),
        school_id=query.get("school_id"),
        status=query.get("status"),
        role=query.get("role"),
        only_school_id=caller.school_id if caller.role is CallerRole.SCHOOL else None,
        only_host_school_id=caller.school_id if caller.role is CallerRole.HOST else None,
    )


def _encode_cursor(last: Registration) -> str:
    raw = json.dumps([last.created_at.isoformat(), last.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, registration_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(registration_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(
            [RuleViolation("cursor", "Onbekende cursor: gebruik next_cursor van de vorige pagina.")]
        ) from None


def cancel(
    db: DatabaseHandle, registration_id: str, caller: Caller, reason: str = ""
) -> dict[str, Any]:
    """Cancel a sign-up; cancelling again changes nothing (and emits nothing)."""
    with db() as uow:
        registration = _visible_registration(Repository(uow.session), registration_id, caller)
        if cancel_in(uow, registration, reason, utcnow()):
            uow.commit()
        return registration_view(registration)


def cancel_in(uow: UnitOfWork, registration: Registration, reason: str, now: datetime) -> bool:
    """The one cancellation (an operator's, a school's, a participant's own link, a parent's
    withdrawal): status and sign_up_cancelled in `uow`; False (nothing) if it holds no place."""
    if registration.status not in model.ACTIVE_STATUSES:
        return False
    registration.status = model.RegistrationStatus.CANCELLED
    registration.cancelled_at = now
    uow.emit(
        "sign_up_cancelled",
        {
            "registration_id": registration.id,
            "activity_id": registration.activity_id,
            "person_id": registration.person_id,
            "cancelled_at": now.isoformat(),
            "reason": reason[:200],
        },
    )
    return True


def erase_person(db: DatabaseHandle, person_id: str) -> bool:
    """AVG erasure: delete the person and every registration; other services follow the event.
    The anonymous facts of each registration stay (anonymous_registrations), so counts survive.

    Returns False if there was no such person (erasing twice is not an error).
    """
    with db() as uow:
        ParticipantStore(uow.session).keep_anonymous(person_id, utcnow())
        if not Repository(uow.session).erase_person(person_id):
            return False
        uow.emit("person_erased", {"person_id": person_id, "erased_at": utcnow().isoformat()})
        uow.commit()
        return True


def contact_fields(
    registration: Registration, person: Person, activity: Activity
) -> dict[str, Any]:
    """The contact notifications writes to (without links)."""
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


# --- for other services -------------------------------------------------------------------------


def set_school_contact(
    db: DatabaseHandle, school_id: str, email: str | None, overwrite: bool = True
) -> bool:
    """Set a school's contact address (its decaan); False when the school does not exist (or
    already has one and `overwrite` is off)."""
    with db() as uow:
        row = uow.session.get(School, school_id)
        if row is None or (row.contact_email and not overwrite):
            return False
        row.contact_email = email
        uow.commit()
        return True


def school_contact(
    db: DatabaseHandle, school_id: str, registration_ids: list[str] | None = None
) -> dict[str, Any] | None:
    """For notifications' school digest: the school's name and contact address (None when the
    school is unknown) and, for the given registrations of this school only, the pupils' names
    and whether they have an e-mail address."""
    with db() as uow:
        row = uow.session.get(School, school_id)
        if row is None:
            return None
        pupils = Repository(uow.session).school_pupils(school_id, registration_ids or [])
        return {
            "school_id": row.id,
            "name": row.name,
            "email": row.contact_email,
            "pupils": pupils,
        }


def identify_key(db: DatabaseHandle, key_hash: str) -> dict[str, Any] | None:
    """Who a key is (by its SHA-256): {"role", "school_id"}, or None for an unknown or revoked
    key. Reporting asks this to let a school's key read its own school's figures."""
    caller = auth.caller_for_hash(db, key_hash)
    if caller is None:
        return None
    return {"role": str(caller.role), "school_id": caller.school_id}


def export_participation(db: DatabaseHandle) -> dict[str, Any]:
    """Registration's current state as reporting keeps it, to rebuild reporting's facts
    (`lob report rebuild`): the schools, the activities, and per registration the anonymous
    facts (school, activity, date, role, phase, age band, municipality, status) with its ids,
    so later events still apply. No name, contact or birth date leaves (the age band is worked
    out here), and whether they attended. Erased people leave an anonymous record behind
    (anonymous_registrations), which is among the facts: `includes_anonymous` is True. (Only
    erasures since migration 0005_consent_and_links left one.)
    """
    with db() as uow:
        repo = Repository(uow.session)
        schools = [
            {"school_id": s.id, "name": s.name, "kind": s.kind, "municipality": s.municipality}
            for s in repo.schools()
        ]
        activities = [
            {
                "activity_id": a.id,
                "kind": a.kind,
                "title": a.title,
                "starts_at": a.starts_at,
                "audience": list(a.audience or ()),
                "host_school_id": a.host_school_id,
                "cancelled": a.cancelled_at is not None,
            }
            for a in repo.published_activities()
        ]
    return {
        "schools": schools,
        "activities": activities,
        "facts": itertools.chain(_participation_facts(db), _historical_facts(db)),
        "includes_anonymous": True,
    }


def _participation_facts(db: DatabaseHandle) -> Iterator[dict[str, Any]]:
    with db() as uow:
        for row in Repository(uow.session).participation():
            (rid, pid, activity_id, school_id, status, role, birth, phase, place, kind, start) = (
                row[:11]
            )
            day = local_date(start)
            yield {
                "registration_id": rid,
                "person_id": pid,
                "activity_id": activity_id,
                "activity_kind": kind,
                "activity_date": day,
                "school_id": school_id,
                "role": role,
                "age_band": age_band(age_on(birth, day)) if birth else None,
                "phase": phase,
                "municipality": place,
                "status": status,
                "attended": row[11],
            }
    yield from _anonymous_facts(db)


def _anonymous_facts(db: DatabaseHandle) -> Iterator[dict[str, Any]]:
    """What erased people left (anonymous_registrations), as facts of the same shape."""
    with db() as uow:
        activities = {a.id: a for a in Repository(uow.session).published_activities()}
        for kept in ParticipantStore(uow.session).anonymous_participation():
            activity = activities.get(kept.activity_id)
            if activity is None or kept.status not in model.REPORTED_STATUSES:
                continue
            yield {  # no link any more, as reporting's own facts of erased people
                "registration_id": None,
                "person_id": None,
                "activity_id": kept.activity_id,
                "activity_kind": activity.kind,
                "activity_date": local_date(activity.starts_at),
                "school_id": kept.school_id,
                "role": kept.role,
                "age_band": kept.age_band,
                "phase": kept.phase,
                "municipality": kept.municipality,
                "status": kept.status,
                "attended": kept.attended,
            }


# --- a finished season, loaded (domain/history.py) ---------------------------------------------


def _may_be_historical(repo: Repository, activity: Activity | None, data: dict[str, Any]) -> None:
    """A historical activity is over; an activity does not turn historical while people are
    signed up for it, nor current while it holds loaded participants."""
    historical = bool(data.get("historical"))
    problems = check_historical_publication(historical, data["ends_at"], utcnow())
    if problems:
        raise InvalidInput(problems)
    if activity is None or bool(activity.historical) == historical:
        return
    if historical and repo.active_sign_ups(activity.id):
        raise ActivityInUse(["Er zijn aanmeldingen: de activiteit kan niet historisch worden."])
    if not historical and history.any_for(repo.session, activity.id):
        raise ActivityInUse(
            ["Er zijn historische deelnemers geladen: de activiteit blijft historisch."]
        )


def record_history(
    db: DatabaseHandle, activity_id: str, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Load the participants of a historical activity (all or nothing); each new or corrected
    record is announced (participation_imported: reporting counts it). A key sent before with
    the same fields changes nothing, so loading a list twice is safe. Two loads of one key at
    once: the unique key lets one commit; the other is decided again and finds it."""
    try:
        return _record_history(db, activity_id, rows)
    except IntegrityError:
        return _record_history(db, activity_id, rows)


def _record_history(
    db: DatabaseHandle, activity_id: str, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    now = utcnow()
    with db() as uow:
        repo = Repository(uow.session)
        row = repo.activity_row(activity_id)
        if row is None or row.published_at is None:
            raise UnknownActivity(activity_id)
        activity = HistoricalActivity(
            id=row.id,
            kind=row.kind,
            title=row.title,
            ends_at=row.ends_at,
            historical=bool(row.historical),
            cancelled=row.cancelled_at is not None,
            audience=frozenset(row.audience or ()),
        )
        schools = {s.id: s for s in repo.schools()}
        records = decide_history(activity, rows, schools)
        stored = history.records_by_key(uow.session, activity_id, (r.key for r in records))
        new = corrected = 0
        for record in records:
            found = stored.get(record.key)
            if found is not None and not record.differs_from(history.as_fields(found)):
                continue
            if found is None:
                found = HistoricalParticipant(
                    id=str(uuid.uuid4()), activity_id=activity_id, import_key=record.key
                )
                uow.session.add(found)
                new += 1
            else:
                corrected += 1
            for name in history.RECORD_FIELDS:
                setattr(found, name, getattr(record, name))
            found.recorded_at = now
            uow.emit("participation_imported", _participation_imported(found, row))
        uow.session.flush()
        total = history.count(uow.session, activity_id)
        uow.commit()
    return {
        "activity_id": activity_id,
        "received": len(records),
        "recorded": new,
        "corrected": corrected,
        "unchanged": len(records) - new - corrected,
        "participants": total,
    }


def _participation_imported(record: HistoricalParticipant, activity: Activity) -> dict[str, Any]:
    return {
        "record_id": record.id,
        "activity_id": activity.id,
        "activity_kind": activity.kind,
        "activity_starts_at": activity.starts_at.isoformat(),
        **history.as_fields(record),
        "recorded_at": record.recorded_at.isoformat(),
    }


def put_school(db: DatabaseHandle, school: model.School) -> tuple[model.School, bool]:
    """Register or update a school through the API; (the school, whether it is new)."""
    with db() as uow:
        new = Repository(uow.session).school_row(school.id) is None
    register_school(db, school)
    return school, new


def _historical_facts(db: DatabaseHandle) -> Iterator[dict[str, Any]]:
    """The loaded participants as reporting's facts (the record id stands for a registration)."""
    with db() as uow:
        for record, activity in history.participation(uow.session):
            yield {
                "registration_id": record.id,
                "person_id": None,
                "activity_id": activity.id,
                "activity_kind": activity.kind,
                "activity_date": local_date(activity.starts_at),
                "school_id": record.school_id,
                "role": record.role,
                "age_band": record.age_band,
                "phase": record.phase,
                "municipality": record.municipality,
                "status": model.RegistrationStatus.SIGNED_UP,
                "attended": record.attended,
            }


# --- plans (owned by scheduling; registration adds the names it alone holds) -------------------


def activity_for_plans(db: DatabaseHandle, activity_id: str, caller: Caller) -> None:
    """Before asking scheduling: the activity exists, and a host asks about its own."""
    with db() as uow:
        activity = Repository(uow.session).activity_row(activity_id)
    if activity is None or activity.published_at is None:
        raise UnknownActivity(activity_id)
    if caller.role is CallerRole.HOST and activity.host_school_id != caller.school_id:
        raise NotAllowed("Een mbo-instelling ziet alleen de lijsten van eigen activiteiten.")


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


# --- class rosters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterUpload:
    """A roster as uploaded: the file and what the query asked."""

    activity_id: str
    content: bytes
    media_type: str | None = None
    filename: str | None = None
    school_id: str | None = None  # ?school_id= (an operator names the school)
    valid_rows_only: bool = False
    dry_run: bool = False
    max_bytes: int = roster.MAX_BYTES
    max_rows: int = roster.MAX_ROWS


def roster_school(caller: Caller, school_id: str | None) -> str:
    """The school a roster is for: a school key's own; the school an operator names."""
    if caller.role is CallerRole.SCHOOL:
        if school_id and school_id != caller.school_id:
            raise NotAllowed("Een school kan alleen eigen leerlingen aanmelden.")
        assert caller.school_id
        return caller.school_id
    if not school_id:
        raise InvalidInput(
            [
                RuleViolation(
                    "school_id",
                    "Geef de school van de klassenlijst: ?school_id= (zie GET /schools).",
                )
            ]
        )
    return school_id


def upload_roster(db: DatabaseHandle, caller: Caller, upload: RosterUpload) -> dict[str, Any]:
    """Sign a class up from its roster file, in one transaction; returns the counts.

    Each row is checked with the sign-up rules (decide_sign_up, on the school's legal basis).
    A file with problems stores nothing (InvalidRoster: every problem on its line), unless
    `valid_rows_only`: then its good rows are stored and the problems reported. `dry_run`
    answers the same without storing. Known pupils (domain.roster_sign_up) are not signed up
    twice. The file is read outside the transaction (no connection held while parsing).
    """
    school_id = roster_school(caller, upload.school_id)
    activity, school, sessions = _roster_target(db, upload.activity_id, school_id)
    check_window(activity, utcnow())
    pupil = model.Role.PUPIL
    audience = check_audience(
        activity.title, pupil, sorted(activity.for_whom), activity.is_for(pupil)
    )
    if audience:
        message = f"{audience[0].message} Met een klassenlijst meldt een school leerlingen aan."
        raise InvalidInput([RuleViolation("activity_id", message)])
    file = read_roster(
        upload.content,
        media_type=upload.media_type,
        filename=upload.filename,
        sessions=sessions,
        max_bytes=upload.max_bytes,
        max_rows=upload.max_rows,
        today=local_date(utcnow()),
    )
    try:
        return _sign_up_roster(db, caller, upload, activity, school, file)
    except IntegrityError:  # the same pupils uploaded at the same moment: decide again
        return _sign_up_roster(db, caller, upload, activity, school, file)


def _roster_target(
    db: DatabaseHandle, activity_id: str, school_id: str
) -> tuple[model.Activity, model.School, dict[str, str] | None]:
    """The activity, the school and (for an info day) its sessions by id with their titles."""
    with db() as uow:
        repo = Repository(uow.session)
        row = repo.activity_row(activity_id)
        if row is None or row.published_at is None:
            raise UnknownActivity(activity_id)
        school = repo.school(school_id)
        if school is None:
            raise InvalidInput([RuleViolation("school_id", f"Onbekende school: {school_id}.")])
        return activity_of(row), school, _session_titles(row)


def _session_titles(activity: Activity) -> dict[str, str] | None:
    if activity.kind != "infoday":
        return None
    sessions = activity.details.get("sessions", [])
    return {s["session_id"]: s.get("title", s["session_id"]) for s in sessions}


def _sign_up_roster(
    db: DatabaseHandle,
    caller: Caller,
    upload: RosterUpload,
    activity: model.Activity,
    school: model.School,
    file: roster.Roster,
) -> dict[str, Any]:
    now = utcnow()
    problems = list(file.problems)
    accepted: list[tuple[roster.RosterRow, SignUp]] = []
    for row in file.rows:
        request = sign_up_request(row, activity.id, school.id)
        try:
            accepted.append((row, decide_sign_up(caller, request, activity, school, (), now)))
        except InvalidSignUp as refused:
            problems += row_problems(row, refused.violations)
    with db() as uow:
        repo = Repository(uow.session)
        current = repo.published_activity(activity.id)  # it may have changed while we read
        if current is None:
            raise UnknownActivity(activity.id)
        check_window(current, now)
        known = KnownPupils(repo.known_pupils(school.id, activity.id))
        decisions, duplicates = decide_rows([r for r, _ in accepted], known, activity.title)
        problems += duplicates
        if problems and (not upload.valid_rows_only or any(p.field == "columns" for p in problems)):
            raise InvalidRoster(problems, file.data_lines)
        if not upload.dry_run:
            sign_ups = {row.line: decision for row, decision in accepted}
            created = _store_roster(uow, repo, decisions, sign_ups, school.id, now)
            uow.commit()
            if created:
                metrics.SIGN_UPS.labels(activity.kind, model.Role.PUPIL).inc(created)
    counts = RosterCounts.of(decisions)
    return {
        "activity_id": activity.id,
        "school_id": school.id,
        "dry_run": upload.dry_run,
        "lines": file.data_lines,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "refused": counts.refused,
        "without_email": sum(
            1
            for d in decisions
            if d.outcome is not Outcome.REFUSED and not (d.row.email or (d.pupil and d.pupil.email))
        ),
        "refusals": [
            {"row": d.row.line, "message": d.reason}
            for d in decisions
            if d.outcome is Outcome.REFUSED
        ],
        "errors": [
            {"row": p.row, "field": p.field, "message": p.message}
            for p in sorted(problems, key=lambda p: p.row)
        ],
        "warnings": list(file.warnings),
    }


def _store_roster(
    uow: UnitOfWork,
    repo: Repository,
    decisions: Sequence[RowDecision],
    sign_ups: dict[int, SignUp],
    school_id: str,
    now: datetime,
) -> int:
    """Write the decisions: new persons, corrected details, new registrations and their
    `signed_up` events, each table in one statement. Returns the number signed up."""
    persons: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    registrations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for decision in decisions:
        row, pupil = decision.row, decision.pupil
        if decision.outcome in (Outcome.UNCHANGED, Outcome.REFUSED):
            continue
        if pupil is None:
            person_id = str(uuid.uuid4())
            persons.append(_roster_person(person_id, row, sign_ups[row.line], school_id, now))
        else:
            person_id = pupil.person_id
            # The identity key stays: a single sign-up with the address it was made with
            # still finds this person.
            changed = changed_details(row, pupil)
            if changed:
                changes.append({"id": person_id, **changed})
        if decision.outcome is Outcome.CREATED:
            sign_up = sign_ups[row.line]
            registration_id = str(uuid.uuid4())
            registrations.append(
                {
                    "id": registration_id,
                    "activity_id": sign_up.activity.id,
                    "person_id": person_id,
                    "school_id": school_id,
                    "status": model.RegistrationStatus.SIGNED_UP,
                    "preferences": sign_up.preferences.as_dict(),
                    "consent": sign_up.consent,
                    "legal_basis": sign_up.legal_basis,
                    "created_at": now,
                }
            )
            events.append(signed_up_payload(sign_up, registration_id, person_id, now))
    repo.insert_persons(persons)
    repo.update_persons(changes)
    repo.insert_registrations(registrations)
    uow.emit_many("signed_up", events)
    return len(registrations)


def _roster_person(
    person_id: str, row: roster.RosterRow, sign_up: SignUp, school_id: str, now: datetime
) -> dict[str, Any]:
    email = row.email.lower() if row.email else None
    if row.student_number:
        key = student_identity_key(school_id, row.student_number)
    else:
        key = identity_key(school_id, email, row.first_name, row.full_last_name, row.date_of_birth)
    return {
        "id": person_id,
        "role": model.Role.PUPIL,
        "first_name": row.first_name,
        "last_name": row.full_last_name,
        "email": email,
        "date_of_birth": row.date_of_birth,
        "school_id": school_id,
        "school_year": row.school_year,
        "municipality": sign_up.municipality,
        "phase": sign_up.phase,
        "parent_email": row.parent_email,
        "created_at": now,
        "identity_key": key,
        "student_number": row.student_number,
    }


def roster_template(db: DatabaseHandle, activity_id: str, file_format: roster.FileFormat) -> bytes:
    """The roster template for an activity (with the choice columns for an info day)."""
    with db() as uow:
        row = Repository(uow.session).activity_row(activity_id)
        if row is None or row.published_at is None:
            raise UnknownActivity(activity_id)
        sessions = _session_titles(row)
    return template_xlsx(sessions) if file_format == "xlsx" else template_csv(sessions)
