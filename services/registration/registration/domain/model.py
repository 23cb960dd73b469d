"""What registration's rules reason about, as plain values: roles, statuses, an activity as
far as signing up goes, a school, and what a sign-up asks for.

Values from the database and from requests are turned into these at the edge (the repository,
the input schema), so the rules never see a row or a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from lob_common.contracts import audience_or_default
from lob_common.timeutil import local_date


class Role(StrEnum):
    """Who a person is in the region (lob_common.contracts.ROLES)."""

    PUPIL = "pupil"
    PARENT = "parent"
    PROFESSIONAL = "professional"
    YOUNG_ADULT = "young_adult"
    MBO_STUDENT = "mbo_student"


# The roles a sign-up may name (parents and mbo students do not sign up through the API yet).
SIGN_UP_ROLES = (Role.PUPIL, Role.YOUNG_ADULT, Role.PROFESSIONAL)

# Who an activity is for (lob_common.contracts.AUDIENCES), and the audience each role is part of.
AUDIENCE_OF_ROLE = {
    Role.PUPIL: "pupils",
    Role.PROFESSIONAL: "professionals",
    Role.PARENT: "parents",
    Role.YOUNG_ADULT: "young_adults",
    Role.MBO_STUDENT: "young_adults",
}


class RegistrationStatus(StrEnum):
    SIGNED_UP = "signed_up"
    CANCELLED = "cancelled"
    # A self sign-up under 16 waiting for a parent (docs/consent.md): not planned, not counted.
    PENDING_CONSENT = "pending_consent"
    # No consent (refused, expired, withdrawn before it was given): void, erased after a grace.
    WITHDRAWN = "withdrawn"


# The statuses reporting knows of (a pending or refused consent never reached it).
REPORTED_STATUSES = (RegistrationStatus.SIGNED_UP, RegistrationStatus.CANCELLED)
# The statuses that hold a place (one per person and activity).
ACTIVE_STATUSES = (RegistrationStatus.SIGNED_UP, RegistrationStatus.PENDING_CONSENT)


class LegalBasis(StrEnum):
    """Why registration may process a sign-up's personal data, when it is not the default
    (the person's own sign-up, with a parent's consent under 16): stored per registration."""

    SCHOOL = "school"  # a school signs its own pupils up (a class roster): no consent round
    PARENTAL_CONSENT = "parental_consent"  # a parent consented (docs/consent.md)


class Consent(StrEnum):
    """A parent's consent for processing a pupil's data (AVG: pupils under 16)."""

    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    GIVEN = "given"
    REFUSED = "refused"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Activity:
    """An activity as far as signing up goes."""

    id: str
    kind: str
    title: str
    starts_at: datetime
    sign_up_closes_at: datetime | None = None
    session_ids: frozenset[str] = frozenset()
    workshop_ids: frozenset[str] = frozenset()
    audience: frozenset[str] = frozenset()  # empty: DEFAULT_AUDIENCE of its kind
    sign_up_opens_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def for_whom(self) -> frozenset[str]:
        return audience_or_default(self.kind, self.audience)

    def is_for(self, role: Role) -> bool:
        return AUDIENCE_OF_ROLE[role] in self.for_whom

    @property
    def day(self) -> date:
        """The local date of the activity: ages and consent count on this day."""
        return local_date(self.starts_at)

    @property
    def closes_at(self) -> datetime:
        """Sign-up closes at the given moment, or else when the activity starts."""
        return self.sign_up_closes_at or self.starts_at

    def is_open(self, now: datetime) -> bool:
        return now < self.closes_at and not self.opens_later(now)

    def opens_later(self, now: datetime) -> bool:
        return self.sign_up_opens_at is not None and now < self.sign_up_opens_at


@dataclass(frozen=True)
class School:
    id: str
    name: str
    kind: str  # lob_common.contracts.SCHOOL_KINDS
    municipality: str | None = None


@dataclass(frozen=True)
class Preferences:
    """Info day: three sessions and a backup. Orientation day: a ranking of workshops."""

    choices: tuple[str, ...] = ()
    backup: str | None = None
    ranking: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Only what was asked for, as stored and as it travels in `signed_up`."""
        given = {
            "choices": list(self.choices),
            "backup": self.backup,
            "ranking": list(self.ranking),
        }
        return {k: v for k, v in given.items() if v}


@dataclass(frozen=True)
class SignUpRequest:
    """What a sign-up asks for, as far as it was readable.

    A field the input refused is None (or empty), and the input's own complaint names it; the
    rules then say nothing more about that field.
    """

    activity_id: str | None = None
    role: Role | None = Role.PUPIL
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    date_of_birth: date | None = None
    school_id: str | None = None
    school_year: int | None = None
    municipality: str | None = None
    phase: str | None = None
    parent_email: str | None = None
    preferences: Preferences = field(default_factory=Preferences)
    # Set by a school's roster upload only (never read from a single sign-up's body).
    legal_basis: LegalBasis | None = None

    @property
    def on_school_basis(self) -> bool:
        """The school signs its pupil up under its own legal basis: no parent consent round,
        and an e-mail address is not required (the school is told instead)."""
        return self.legal_basis is LegalBasis.SCHOOL

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> SignUpRequest:
        """From the fields that parsed (the input schema's names)."""
        role = data.get("role")
        return cls(
            activity_id=data.get("activity_id"),
            role=Role(role) if role else None,
            first_name=data.get("first_name"),
            last_name=data.get("last_name"),
            email=data.get("email"),
            date_of_birth=data.get("date_of_birth"),
            school_id=data.get("school_id"),
            school_year=data.get("school_year"),
            municipality=data.get("municipality"),
            phase=data.get("phase"),
            parent_email=data.get("parent_email"),
            preferences=Preferences(
                tuple(data.get("choices") or ()),
                data.get("backup"),
                tuple(data.get("ranking") or ()),
            ),
        )


@dataclass(frozen=True)
class PriorRegistration:
    """A registration the person already has (for the already-signed-up rule)."""

    activity_id: str
    status: RegistrationStatus
