"""The queries of the participant-facing flows (consent, personal links, attendance, erasure
and export), on one unit of work's session; kept apart from repository.py's sign-up queries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lob_common.timeutil import local_date
from registration.adapters.tables import (
    AccessToken,
    Activity,
    AnonymousRegistration,
    Person,
    Registration,
)
from registration.domain import model
from registration.domain.links import Link, LinkPurpose
from registration.domain.rules import age_band, age_on

# A registration with its person and activity (registration_of, registrations_with_people).
_WITH_PERSON_AND_ACTIVITY = (
    select(Registration, Person, Activity)
    .join(Person, Person.id == Registration.person_id)
    .join(Activity, Activity.id == Registration.activity_id)
)


class ParticipantStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- links ------------------------------------------------------------------------------

    def add_link(
        self,
        token_hash: str,
        purpose: LinkPurpose,
        registration_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self.session.add(
            AccessToken(
                token_hash=token_hash,
                purpose=purpose,
                registration_id=registration_id,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def link(self, token_hash: str) -> tuple[Link, AccessToken] | None:
        row = self.session.get(AccessToken, token_hash)
        if row is None:
            return None
        link = Link(LinkPurpose(row.purpose), row.registration_id, row.expires_at, row.used_at)
        return link, row

    def registration_of(self, registration_id: str) -> tuple[Registration, Person, Activity] | None:
        row = self.session.execute(
            _WITH_PERSON_AND_ACTIVITY.where(Registration.id == registration_id)
        ).first()
        return (row[0], row[1], row[2]) if row else None

    def registrations_with_people(
        self, registration_ids: list[str]
    ) -> dict[str, tuple[Registration, Person, Activity]]:
        """registration_of for many registrations, in one query (the unknown ones are left out)."""
        if not registration_ids:
            return {}
        rows = self.session.execute(
            _WITH_PERSON_AND_ACTIVITY.where(Registration.id.in_(registration_ids))
        ).all()
        return {row[0].id: (row[0], row[1], row[2]) for row in rows}

    def registrations_of(self, person_id: str) -> list[Registration]:
        return list(
            self.session.scalars(
                select(Registration)
                .filter_by(person_id=person_id)
                .order_by(Registration.created_at)
            )
        )

    def links_of(self, registration_ids: Iterable[str]) -> list[AccessToken]:
        return list(
            self.session.scalars(
                select(AccessToken).where(AccessToken.registration_id.in_(list(registration_ids)))
            )
        )

    # --- consent ----------------------------------------------------------------------------

    def overdue_consents(self, now: datetime, limit: int = 500) -> list[Registration]:
        return list(
            self.session.scalars(
                select(Registration)
                .where(
                    Registration.status == model.RegistrationStatus.PENDING_CONSENT,
                    Registration.consent_expires_at <= now,
                )
                .limit(limit)
            )
        )

    def due_erasures(self, now: datetime, limit: int = 500) -> list[str]:
        """The persons whose erasure (after a refusal) is due."""
        return list(
            self.session.scalars(
                select(Registration.person_id)
                .where(Registration.erase_after <= now)
                .distinct()
                .limit(limit)
            )
        )

    # --- erasure ----------------------------------------------------------------------------

    def keep_anonymous(self, person_id: str, now: datetime) -> int:
        """Copy the anonymous facts of a person's registrations before the person is erased."""
        rows = self.session.execute(
            select(Registration, Person, Activity)
            .join(Person, Person.id == Registration.person_id)
            .join(Activity, Activity.id == Registration.activity_id)
            .where(Registration.person_id == person_id)
        ).all()
        for registration, person, activity in rows:
            birth = person.date_of_birth
            day = local_date(activity.starts_at)
            self.session.merge(
                AnonymousRegistration(
                    id=registration.id,
                    person_id=person.id,
                    activity_id=registration.activity_id,
                    school_id=registration.school_id,
                    role=person.role,
                    age_band=age_band(age_on(birth, day)) if birth else None,
                    phase=person.phase,
                    municipality=person.municipality,
                    status=registration.status,
                    consent=registration.consent,
                    attended=registration.attended,
                    created_at=registration.created_at,
                    erased_at=now,
                )
            )
        self.session.execute(
            delete(AccessToken).where(AccessToken.registration_id.in_([r.id for r, _, _ in rows]))
        )
        self.session.flush()
        return len(rows)

    def anonymous_participation(self) -> list[AnonymousRegistration]:
        return list(
            self.session.scalars(
                select(AnonymousRegistration).order_by(
                    AnonymousRegistration.created_at, AnonymousRegistration.id
                )
            )
        )

    # --- attendance -------------------------------------------------------------------------

    def registrations_by_id(self, registration_ids: Iterable[str]) -> dict[str, Registration]:
        ids = list(registration_ids)
        found: dict[str, Registration] = {}
        for start in range(0, len(ids), 500):
            for row in self.session.scalars(
                select(Registration).where(Registration.id.in_(ids[start : start + 500]))
            ):
                found[row.id] = row
        return found

    def person(self, person_id: str) -> Person | None:
        return self.session.get(Person, person_id)

    def activity(self, activity_id: str) -> Activity | None:
        return self.session.get(Activity, activity_id)


def person_export(person: Person) -> dict[str, Any]:
    return {
        "person_id": person.id,
        "role": person.role,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "date_of_birth": person.date_of_birth.isoformat() if person.date_of_birth else None,
        "school_id": person.school_id,
        "school_year": person.school_year,
        "municipality": person.municipality,
        "phase": person.phase,
        "parent_email": person.parent_email,
        "created_at": person.created_at.isoformat(),
    }
