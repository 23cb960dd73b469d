"""Links people open without an API key: a parent's consent link and a participant's personal
link. Each carries a random token (secrets.token_urlsafe); only its SHA-256 is stored, with what
it is for and until when, so a database dump opens nothing. Tokens are never logged.

`check_link` is the whole decision about a presented token, as a pure function of what the
store found and the moment; its refusals say in plain Dutch what happened.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from registration.domain.errors import RegistrationError

TOKEN_BYTES = 32  # 43 URL-safe characters
# What a token looks like; anything else is refused before the database is asked.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
# A personal link works until this long after the activity (questions, the certificate...).
PERSONAL_LINK_AFTER_ACTIVITY = timedelta(days=60)


class LinkPurpose(StrEnum):
    CONSENT = "consent"
    PERSONAL = "personal"


@dataclass(frozen=True)
class Link:
    """A stored token, as far as deciding on it goes."""

    purpose: LinkPurpose
    registration_id: str
    expires_at: datetime
    used_at: datetime | None = None


class LinkRefused(RegistrationError):
    """A link that opens nothing; `title` and `detail` are what the page says (Dutch)."""

    status = 404
    title = "Deze link werkt niet"
    detail = "Controleer of u de hele link uit de e-mail hebt gebruikt."

    def __init__(self, registration_id: str | None = None) -> None:
        super().__init__(type(self).__name__)
        self.registration_id = registration_id


class LinkMalformed(LinkRefused):
    status = 400
    title = "Deze link is niet compleet"
    detail = (
        "Het adres is niet goed overgenomen. Klik op de link in de e-mail, of kopieer het hele "
        "adres in één keer."
    )


class LinkUnknown(LinkRefused):
    title = "Deze link kennen we niet"
    detail = (
        "De link is niet (meer) geldig. Misschien is de aanmelding al gewist, of is de link "
        "niet helemaal overgenomen. Gebruik de link uit de nieuwste e-mail."
    )


class LinkExpired(LinkRefused):
    status = 410
    title = "Deze link is verlopen"
    detail = "De termijn van deze link is voorbij; er is niets veranderd."


class LinkUsed(LinkRefused):
    status = 409
    title = "Deze link is al gebruikt"
    detail = "Met deze link is al een keuze doorgegeven; er is niets veranderd."


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str | None) -> bool:
    return bool(token) and TOKEN_SHAPE.match(token or "") is not None


def check_link(found: Link | None, purpose: LinkPurpose, now: datetime) -> Link:
    """The link, if it may open its page now; else why not (expired is said after unknown,
    and a link for another purpose is as unknown as a forged one)."""
    if found is None or found.purpose != purpose:
        raise LinkUnknown()
    if now >= found.expires_at:
        raise LinkExpired(found.registration_id)
    return found


def personal_link_expiry(activity_ends_at: datetime) -> datetime:
    return activity_ends_at + PERSONAL_LINK_AFTER_ACTIVITY
