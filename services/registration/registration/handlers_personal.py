"""Use cases of a participant's personal link: see the sign-up (and the programme, which the
service asks scheduling for), cancel it before the cut-off through the same cancellation as an
operator's (handlers.cancel_in: the same sign_up_cancelled), and an AVG export of a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lob_common.db import DatabaseHandle, utcnow
from registration import handlers
from registration.adapters.participants import ParticipantStore, person_export
from registration.adapters.tables import Activity, Registration
from registration.domain.errors import TooLateToCancel, UnknownPerson
from registration.domain.links import LinkPurpose
from registration.domain.model import ACTIVE_STATUSES, RegistrationStatus
from registration.handlers_consent import open_link

DEFAULT_CANCEL_CUTOFF = timedelta(hours=24)
STATUS_TEXT = {
    RegistrationStatus.SIGNED_UP: "Je bent aangemeld.",
    RegistrationStatus.PENDING_CONSENT: "Je ouder of verzorger is om toestemming gevraagd; "
    "zodra die er is, ben je aangemeld.",
    RegistrationStatus.CANCELLED: "Je bent afgemeld.",
    RegistrationStatus.WITHDRAWN: "Je aanmelding is vervallen (geen toestemming).",
}


@dataclass(frozen=True)
class Mine:
    """What the personal page shows, before the programme is added (by the service, from
    scheduling: no network inside a unit of work)."""

    view: dict[str, Any]
    activity_id: str
    school_id: str | None


def cancel_until(activity: Activity, cutoff: timedelta) -> datetime:
    return activity.starts_at - cutoff


def _view(
    registration: Registration, first_name: str, activity: Activity, cutoff: timedelta, now
) -> dict[str, Any]:
    status = RegistrationStatus(registration.status)
    until = cancel_until(activity, cutoff)
    active = status in (RegistrationStatus.SIGNED_UP, RegistrationStatus.PENDING_CONSENT)
    return {
        "registration_id": registration.id,
        "first_name": first_name,
        "status": status,
        "status_text": STATUS_TEXT[status],
        "consent": registration.consent,
        "activity": {
            "id": activity.id,
            "title": activity.title,
            "kind": activity.kind,
            "starts_at": activity.starts_at,
            "ends_at": activity.ends_at,
            "location": activity.location,
        },
        "active": active,
        "cancellable": active and now < until and activity.cancelled_at is None,
        "cancel_until": until,
        "programme": None,
    }


def mine(db: DatabaseHandle, token: str | None, cutoff: timedelta = DEFAULT_CANCEL_CUTOFF) -> Mine:
    now = utcnow()
    with db() as uow:
        store = ParticipantStore(uow.session)
        registration, person, activity, _ = open_link(store, token, LinkPurpose.PERSONAL, now)
        view = _view(registration, person.first_name, activity, cutoff, now)
        planned = registration.status == RegistrationStatus.SIGNED_UP
        return Mine(view, activity.id if planned else "", registration.school_id)


def with_programme(mine: Mine, plan: dict[str, Any] | None) -> dict[str, Any]:
    """The page's view with this person's part of the plan in force (None: not planned)."""
    view = dict(mine.view)
    if not plan:
        return view
    for programme in plan.get("programmes", ()):
        if programme.get("registration_id") == view["registration_id"]:
            timetable = {"itinerary": plan["itinerary"]} if plan.get("itinerary") else {}
            view["programme"] = {**timetable, **programme}
    return view


def cancel_mine(
    db: DatabaseHandle, token: str | None, cutoff: timedelta = DEFAULT_CANCEL_CUTOFF
) -> dict[str, Any]:
    """Cancel through the personal link; after the cut-off: TooLateToCancel, nothing changes."""
    now = utcnow()
    with db() as uow:
        store = ParticipantStore(uow.session)
        registration, person, activity, _ = open_link(store, token, LinkPurpose.PERSONAL, now)
        until = cancel_until(activity, cutoff)
        if registration.status in ACTIVE_STATUSES:
            if now >= until:
                raise TooLateToCancel(until)
            handlers.cancel_in(uow, registration, "afgemeld via persoonlijke link", now)
            uow.commit()
        return _view(registration, person.first_name, activity, cutoff, now)


def export_person(db: DatabaseHandle, person_id: str) -> dict[str, Any]:
    """Everything registration holds about a person (AVG access request); links are listed
    by purpose and dates only (the tokens themselves are not stored)."""
    with db() as uow:
        store = ParticipantStore(uow.session)
        person = store.person(person_id)
        if person is None:
            raise UnknownPerson(person_id)
        registrations = store.registrations_of(person_id)
        links = store.links_of(r.id for r in registrations)
        return {
            "person": person_export(person),
            "registrations": [
                {
                    "registration_id": r.id,
                    "activity_id": r.activity_id,
                    "school_id": r.school_id,
                    "status": r.status,
                    "consent": r.consent,
                    "preferences": r.preferences or {},
                    "created_at": r.created_at,
                    "cancelled_at": r.cancelled_at,
                    "consent_expires_at": r.consent_expires_at,
                    "consent_decided_at": r.consent_decided_at,
                    "erase_after": r.erase_after,
                    "attended": r.attended,
                    "attendance_recorded_at": r.attendance_recorded_at,
                    "links": [
                        {
                            "purpose": link.purpose,
                            "created_at": link.created_at.isoformat(),
                            "expires_at": link.expires_at.isoformat(),
                            "used_at": link.used_at.isoformat() if link.used_at else None,
                        }
                        for link in links
                        if link.registration_id == r.id
                    ],
                }
                for r in registrations
            ],
            "exported_at": utcnow(),
        }
