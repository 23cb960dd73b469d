"""Sample contact and event data per kind, for `lob mail preview` and the tests."""

from __future__ import annotations

from typing import Any

from notifications.domain.texts import KINDS, render

AT = "2030-12-10T08:00:00+00:00"
CONTACT: dict[str, Any] = {
    "registration_id": "3f0c2a7e-5d1b-4e7a-9a55-0b8f7f1d2c10",
    "person_id": "7d2b9e41-1c3a-4f5e-8b6d-2a9c0e4f1b27",
    "first_name": "Sanne",
    "email": "sanne@voorbeeld.nl",
    "parent_email": "ouder.van.sanne@voorbeeld.nl",
    "role": "pupil",
    "consent": "not_required",
    "links": {
        "personal": "http://127.0.0.1:8000/mijn-aanmelding/voorbeeld",
        "consent": "http://127.0.0.1:8000/toestemming/voorbeeld",
    },
    "activity": {
        "id": "voorlichtingsdag-2030",
        "title": "Voorlichtingsdag MBO-beroepen",
        "kind": "infoday",
        "starts_at": AT,
        "ends_at": "2030-12-10T11:30:00+00:00",
        "location": "MBO Amersfoort, Leerparkpromenade 100, Amersfoort",
    },
}
PROGRAMME: dict[str, Any] = {
    "plan_version": 2,
    "sessions": [
        {
            "round": 1,
            "session_id": "S01",
            "title": "Zorg & Welzijn",
            "room": "Lokaal 101",
            "starts_at": "2030-12-10T08:15:00+00:00",
            "ends_at": "2030-12-10T09:00:00+00:00",
        },
        {
            "round": 2,
            "session_id": "S07",
            "title": "ICT & Software",
            "room": "Lokaal 107",
            "starts_at": "2030-12-10T09:15:00+00:00",
            "ends_at": "2030-12-10T10:00:00+00:00",
        },
    ],
}
DATA: dict[str, dict[str, Any]] = {
    "sign_up_confirmation": {"sequence": 0},
    "programme_assigned": {**PROGRAMME, "sequence": 1},
    "promoted": {**PROGRAMME, "from_waitlist": True, "sequence": 1},
    "programme_changed": {
        **PROGRAMME,
        "sequence": 2,
        "previous": {"sessions": [{**PROGRAMME["sessions"][0]}, {"round": 2, "session_id": None}]},
    },
    "waitlisted": {"position": 3, "item_title": "Autotechniek"},
    "sign_up_cancelled": {"sequence": 3},
    "activity_cancelled": {"sequence": 3, "reason": "te weinig aanmeldingen"},
    "reminder": {**PROGRAMME},
    "consent_requested_parent": {"expires_at": "2030-11-30T23:00:00+00:00"},
    "consent_requested_pupil": {"expires_at": "2030-11-30T23:00:00+00:00"},
    "consent_given_parent": {},
    "consent_refused_parent": {"reason": "refused"},
    "consent_refused_pupil": {"reason": "expired", "sequence": 1},
    "school_digest": {
        "lines": {
            "r1": "ronde 1: Zorg & Welzijn (Lokaal 101); ronde 2: ICT & Software (Lokaal 107)",
            "r2": "wachtlijst, plaats 2",
            "r3": "ronde 1: Techniek; ronde 2: Economie",
        },
        "changes": {"new": ["r3"], "changed": ["r2"], "gone": ["r4"]},
        "previous": {"r2": "nog geen programma", "r4": "ronde 1: Zorg & Welzijn"},
    },
    "operator_failures": {
        "day": "2030-12-10",
        "total": 3,
        "counts": {"programme_assigned": 2, "reminder": 1},
        "reasons": {"recipient refused: 550 <address>: no such user": 3},
    },
}
# Who a kind is addressed to, where that is not the participant of CONTACT.
CONTACTS: dict[str, dict[str, Any]] = {
    "school_digest": {
        "email": "decaan@farel-college.example.nl",
        "school": "Farel College",
        "pupils": {
            "r1": {"name": "Sanne de Vries", "has_email": True},
            "r2": {"name": "Daan Bakker", "has_email": False},
            "r3": {"name": "Amira El Idrissi", "has_email": True},
            "r4": {"name": "Joris Smit", "has_email": True},
        },
    },
    "operator_failures": {"email": "beheer@regio-eem.example", "activity": None},
}


def sample_mail(kind: str, mailer: Any) -> bytes:
    """The complete MIME message of a kind, as it would be sent."""
    if kind not in KINDS:
        raise KeyError(kind)
    template = "programme_assigned" if kind == "promoted" else kind
    email = render(template, {**CONTACT, **CONTACTS.get(kind, {})}, DATA[kind])
    return bytes(mailer.build(email, f"<voorbeeld-{kind}@lob-regio-eem>"))
