"""Use cases of parental consent and of the links people open without a key (docs/consent.md).

A self sign-up of a pupil under 16 is stored as `pending_consent` and announced with
`consent_requested` instead of `signed_up` (handlers.record_sign_up calls `ask_parent`). The
parent answers on the page of their link: consent emits `consent_given` and then the `signed_up`
the sign-up would have had; a refusal, the expiry (the sweep) or a later withdrawal emits
`consent_refused`, voids the sign-up and erases the person after a grace, so notifications can
still fetch the addresses for the outcome mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lob_common.db import DatabaseHandle, UnitOfWork, utcnow
from lob_common.timeutil import local_date
from registration import handlers
from registration.adapters.participants import ParticipantStore
from registration.adapters.tables import Activity, Person, Registration
from registration.domain import consent as rules
from registration.domain.consent import Answer, ConsentState
from registration.domain.links import (
    LinkMalformed,
    LinkPurpose,
    check_link,
    new_token,
    personal_link_expiry,
    token_hash,
    well_formed,
)
from registration.domain.model import Consent, LegalBasis, RegistrationStatus
from registration.domain.rules import age_band, age_on

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsentSettings:
    ttl: timedelta = rules.DEFAULT_TTL
    erase_grace: timedelta = rules.DEFAULT_ERASE_GRACE
    public_base_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ConsentSettings:
        return cls(
            ttl=timedelta(days=float(config.get("CONSENT_TTL_DAYS", 14))),
            erase_grace=timedelta(seconds=float(config.get("CONSENT_ERASE_GRACE_SECONDS", 600))),
            public_base_url=str(config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip(
                "/"
            ),
        )


def state_of(registration: Registration) -> ConsentState:
    return ConsentState(
        RegistrationStatus(registration.status),
        Consent(registration.consent),
        registration.consent_expires_at,
    )


# --- asking -------------------------------------------------------------------------------------


def ask_parent(
    uow: UnitOfWork, registration: Registration, now: datetime, ttl: timedelta = rules.DEFAULT_TTL
) -> None:
    """Open (or reopen) the parent's round: an expiry, and consent_requested in `uow`."""
    registration.consent_expires_at = rules.expires_at(now, ttl)
    uow.emit(
        "consent_requested",
        {
            "registration_id": registration.id,
            "activity_id": registration.activity_id,
            "person_id": registration.person_id,
            "requested_at": now.isoformat(),
            "expires_at": registration.consent_expires_at.isoformat(),
        },
    )


# --- links (minted for notifications' mails) ---------------------------------------------------


def contacts_with_links(
    db: DatabaseHandle, registration_ids: list[str], settings: ConsentSettings, now: datetime
) -> dict[str, dict[str, Any] | None]:
    """For a batch of notifications' mails: per registration its contact with fresh links
    (one query, one transaction); None for an unknown (erased) registration."""
    result: dict[str, dict[str, Any] | None] = dict.fromkeys(registration_ids)
    with db() as uow:
        store = ParticipantStore(uow.session)
        found = store.registrations_with_people(list(registration_ids))
        for registration_id, (registration, person, activity) in found.items():
            result[registration_id] = {
                **handlers.contact_fields(registration, person, activity),
                "links": _mint(store, registration, activity, settings, now),
            }
        uow.commit()
    return result


def _mint(
    store: ParticipantStore,
    registration: Registration,
    activity: Activity,
    settings: ConsentSettings,
    now: datetime,
) -> dict[str, str | None]:
    personal = new_token()
    store.add_link(
        token_hash(personal),
        LinkPurpose.PERSONAL,
        registration.id,
        now,
        personal_link_expiry(activity.ends_at),
    )
    consent = None
    if rules.may_ask_again(state_of(registration)) and registration.consent_expires_at:
        consent = new_token()
        store.add_link(
            token_hash(consent),
            LinkPurpose.CONSENT,
            registration.id,
            now,
            registration.consent_expires_at,
        )
    base = settings.public_base_url
    return {
        "personal": f"{base}/mijn-aanmelding/{personal}",
        "consent": f"{base}/toestemming/{consent}" if consent else None,
    }


def open_link(store: ParticipantStore, token: str | None, purpose: LinkPurpose, now: datetime):
    """The registration (with person and activity) a token opens, or the refusal to show."""
    if not well_formed(token):
        raise LinkMalformed()
    assert token is not None
    found = store.link(token_hash(token))
    link = check_link(found[0] if found else None, purpose, now)
    registration = store.registration_of(link.registration_id)
    if registration is None:  # the link outlived its registration (erased): as unknown
        check_link(None, purpose, now)
    assert registration is not None and found is not None
    return (*registration, found[1])


# --- the parent's page --------------------------------------------------------------------------


def consent_view(
    registration: Registration, person: Person, activity: Activity, schools: dict[str, str]
) -> dict[str, Any]:
    """What the consent page shows: who signed up for what, and where the answer stands."""
    state = state_of(registration)
    return {
        "registration_id": registration.id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "school": schools.get(person.school_id or "", ""),
        "school_year": person.school_year,
        "activity_title": activity.title,
        "activity_starts_at": activity.starts_at,
        "activity_ends_at": activity.ends_at,
        "activity_location": activity.location,
        "status": state.status,
        "consent": state.consent,
        "expires_at": registration.consent_expires_at,
        "decided_at": registration.consent_decided_at,
        "pending": rules.may_ask_again(state),
        "given": state.consent is Consent.GIVEN and state.status is RegistrationStatus.SIGNED_UP,
    }


def show_consent(db: DatabaseHandle, token: str | None, now: datetime) -> dict[str, Any]:
    with db() as uow:
        store = ParticipantStore(uow.session)
        registration, person, activity, _ = open_link(store, token, LinkPurpose.CONSENT, now)
        schools = handlers.Repository(uow.session).school_names()
        return consent_view(registration, person, activity, schools)


def answer_consent(
    db: DatabaseHandle,
    token: str | None,
    answer: Answer,
    settings: ConsentSettings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record a parent's answer (give, refuse, withdraw); the page's view afterwards.

    A used link may only withdraw a consent it gave; anything that does not fit the state
    raises (domain.consent.ConsentNotOpen, domain.links.LinkRefused) and changes nothing.
    """
    now = now or utcnow()
    with db() as uow:
        store = ParticipantStore(uow.session)
        registration, person, activity, link = open_link(store, token, LinkPurpose.CONSENT, now)
        if link.used_at is not None and answer is not Answer.WITHDRAW:
            raise rules.ConsentNotOpen(
                "Deze link is al gebruikt",
                rules.ALREADY.get(Consent(registration.consent), "Er is niets veranderd."),
            )
        outcome = rules.decide(state_of(registration), answer, now)
        apply_outcome(uow, registration, person, activity, outcome, now, settings.erase_grace)
        link.used_at = now
        uow.commit()
        schools = handlers.Repository(uow.session).school_names()
        return consent_view(registration, person, activity, schools)


def apply_outcome(
    uow: UnitOfWork,
    registration: Registration,
    person: Person,
    activity: Activity,
    outcome: rules.Outcome,
    now: datetime,
    grace: timedelta,
) -> None:
    registration.consent = outcome.consent
    registration.consent_decided_at = now
    for event in outcome.events:
        if event == "consent_given":
            registration.status = outcome.status
            registration.legal_basis = LegalBasis.PARENTAL_CONSENT
            uow.emit(
                "consent_given",
                {
                    "person_id": person.id,
                    "registration_id": registration.id,
                    "activity_id": registration.activity_id,
                    "given_at": now.isoformat(),
                },
            )
        elif event == "signed_up":
            uow.emit("signed_up", signed_up_after_consent(registration, person, activity))
        elif event == "sign_up_cancelled":
            handlers.cancel_in(uow, registration, "toestemming ingetrokken", now)
        elif event == "consent_refused":
            registration.status = outcome.status
            uow.emit(
                "consent_refused",
                {
                    "registration_id": registration.id,
                    "activity_id": registration.activity_id,
                    "person_id": person.id,
                    "refused_at": now.isoformat(),
                    "reason": outcome.refusal_reason,
                },
            )
    if outcome.erase:
        registration.erase_after = now + grace


def signed_up_after_consent(
    registration: Registration, person: Person, activity: Activity
) -> dict[str, Any]:
    """The `signed_up` the sign-up would have had (signed_up_at: when it was made, so it keeps
    its place in any first-come order)."""
    birth = person.date_of_birth
    return {
        "registration_id": registration.id,
        "activity_id": activity.id,
        "activity_kind": activity.kind,
        "activity_starts_at": activity.starts_at.isoformat(),
        "person_id": person.id,
        "role": person.role,
        "school_id": registration.school_id,
        "school_year": person.school_year,
        "age_band": age_band(age_on(birth, local_date(activity.starts_at))) if birth else None,
        "phase": person.phase,
        "municipality": person.municipality,
        "consent_required": True,
        "preferences": registration.preferences or {},
        "signed_up_at": registration.created_at.isoformat(),
    }


def ask_again(
    db: DatabaseHandle, token: str | None, settings: ConsentSettings, now: datetime | None = None
) -> dict[str, Any]:
    """An expired consent link of a consent still awaited: a new round (consent_requested
    again, with a new expiry), so notifications mails a fresh link."""
    now = now or utcnow()
    with db() as uow:
        store = ParticipantStore(uow.session)
        if not well_formed(token):
            raise LinkMalformed()
        assert token is not None
        found = store.link(token_hash(token))
        if found is None or found[0].purpose is not LinkPurpose.CONSENT:
            check_link(None, LinkPurpose.CONSENT, now)
        assert found is not None
        opened = store.registration_of(found[0].registration_id)
        if opened is None:
            check_link(None, LinkPurpose.CONSENT, now)
        assert opened is not None
        registration, person, activity = opened
        if not rules.may_ask_again(state_of(registration)):
            raise rules.ConsentNotOpen(
                "Er is geen nieuwe link nodig",
                rules.ALREADY.get(Consent(registration.consent), "Er is niets veranderd."),
            )
        ask_parent(uow, registration, now, settings.ttl)
        uow.commit()
        schools = handlers.Repository(uow.session).school_names()
        return consent_view(registration, person, activity, schools)


# --- the sweep ------------------------------------------------------------------------------------


def sweep(db: DatabaseHandle, settings: ConsentSettings, now: datetime | None = None) -> dict:
    """Expire the consents nobody answered in time, and erase the persons whose grace is over.
    Each registration and each person in a unit of work of its own."""
    now = now or utcnow()
    expired = erased = 0
    with db() as uow:
        overdue = [r.id for r in ParticipantStore(uow.session).overdue_consents(now)]
    for registration_id in overdue:
        with db() as uow:
            found = ParticipantStore(uow.session).registration_of(registration_id)
            if found is None:
                continue
            registration, person, activity = found
            outcome = rules.expire(state_of(registration), now)
            if outcome is None:  # answered meanwhile
                continue
            apply_outcome(uow, registration, person, activity, outcome, now, settings.erase_grace)
            uow.commit()
            expired += 1
    with db() as uow:
        due = ParticipantStore(uow.session).due_erasures(now)
    for person_id in due:
        if handlers.erase_person(db, person_id):
            erased += 1
    if expired or erased:
        log.info("consent sweep: %d expired, %d persons erased", expired, erased)
    return {"expired": expired, "erased": erased}


def awaiting_consent(db: DatabaseHandle, registration_id: str) -> bool:
    """Whether a registration still waits for a parent (an expired link may ask again)."""
    with db() as uow:
        found = ParticipantStore(uow.session).registration_of(registration_id)
        return found is not None and rules.may_ask_again(state_of(found[0]))
