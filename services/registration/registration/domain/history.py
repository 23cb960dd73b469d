"""A finished season, loaded: historical activities and their anonymous participants.

A region that starts using the system (or compares years) loads a past season through the API:
the operator publishes each past activity as historical and sends its participants as they were
counted. Nobody signs up for such an activity, scheduling never plans it and nobody is mailed
about it; its participants are anonymous records (no person, no name, no birth date: a finished
activity needs no logistics), with just what the region's tables count: school, role, age band,
phase, municipality and attendance.

The rules here decide, for one list of participants, what each record is, or every reason the
list is refused (all or nothing: a list with one bad row changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lob_common.contracts import audience_or_default
from registration.domain.errors import ActivityCancelled, InvalidInput, NotHistorical
from registration.domain.model import AUDIENCE_OF_ROLE, Role, School
from registration.domain.rules import RuleViolation, age_band, phase_of

MAX_PARTICIPANTS_PER_CALL = 5000


@dataclass(frozen=True)
class HistoricalActivity:
    """What the rules need of the activity a list is loaded into."""

    id: str
    kind: str
    title: str
    ends_at: datetime
    historical: bool
    cancelled: bool = False
    audience: frozenset[str] = frozenset()  # empty: DEFAULT_AUDIENCE of its kind

    def is_for(self, role: str) -> bool:
        audience = audience_or_default(self.kind, self.audience)
        return AUDIENCE_OF_ROLE[Role(role)] in audience


@dataclass(frozen=True)
class HistoricalRecord:
    """One participant as it is stored and announced (participation_imported)."""

    key: str
    role: str
    school_id: str | None
    age_band: str | None
    phase: str | None
    municipality: str | None
    attended: bool | None

    def differs_from(self, stored: Mapping[str, Any]) -> bool:
        return any(
            stored.get(name) != getattr(self, name)
            for name in ("role", "school_id", "age_band", "phase", "municipality", "attended")
        )


def check_historical_publication(
    historical: bool, ends_at: datetime, now: datetime
) -> list[RuleViolation]:
    """A historical activity is over: loading one that is still to come would keep it from
    being planned and from its participants' mail."""
    if historical and ends_at > now:
        return [
            RuleViolation(
                "historical",
                "Alleen een activiteit die al voorbij is kan historisch zijn (het einde ligt "
                "in de toekomst).",
            )
        ]
    return []


def decide_history(
    activity: HistoricalActivity,
    rows: Sequence[Mapping[str, Any]],
    schools: Mapping[str, School],
) -> list[HistoricalRecord]:
    """The records of `rows` (HistoryParticipantIn's fields), or InvalidInput naming every
    row and field to fix. Pupils need a known school; the role must be one the activity was
    for; the age becomes its band (the exact age is not kept); a pupil's phase comes from the
    school and the municipality defaults to the school's."""
    if activity.cancelled:
        raise ActivityCancelled(activity.title)
    if not activity.historical:
        raise NotHistorical(activity.title)
    problems: list[RuleViolation] = []
    records: list[HistoricalRecord] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows):
        where = f"participants.{n}"
        key = row["key"]
        if key in seen:
            problems.append(
                RuleViolation(f"{where}.key", f"Sleutel {key!r} staat ook in rij {seen[key]}.")
            )
        seen.setdefault(key, n)
        role = row["role"]
        school_id = row.get("school_id")
        school = schools.get(school_id) if school_id else None
        if school_id and school is None:
            problems.append(RuleViolation(f"{where}.school_id", f"Onbekende school: {school_id}."))
        if role == Role.PUPIL and not school_id:
            problems.append(RuleViolation(f"{where}.school_id", "Een leerling heeft een school."))
        if not activity.is_for(role):
            problems.append(
                RuleViolation(f"{where}.role", f"'{activity.title}' was niet voor de rol {role}.")
            )
        band = row.get("age_band")
        if row.get("age") is not None:
            from_age = age_band(row["age"])
            if band is not None and band != from_age:
                problems.append(
                    RuleViolation(
                        f"{where}.age_band",
                        f"Leeftijd {row['age']} valt in {from_age}, niet {band}.",
                    )
                )
            band = from_age
        records.append(
            HistoricalRecord(
                key=key,
                role=role,
                school_id=school_id,
                age_band=band,
                phase=phase_of(role, school.kind if school else None, row.get("phase")),
                municipality=row.get("municipality") or (school.municipality if school else None),
                attended=row.get("attended"),
            )
        )
    if problems:
        raise InvalidInput(problems)
    return records
