"""What the tables are made from: schools, activities and counted participation facts.

A participation fact is anonymous: school, activity, date, role, phase, age band, municipality,
status, attended. The tables take *counts* of identical facts (`FactCount.n`), so the database
can aggregate first and a unit test can pass single facts (n=1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from lob_common.contracts import audience_or_default

KIND_LABELS = {
    "infoday": "Voorlichtingsdag MBO-beroepen",
    "orientation_day": "MBO-oriëntatiedag",
    "career_event": "Loopbaanevenement",
    "bus_tour": "LOB-bustour",
    "network_meeting": "Lerend Netwerk",
    "decanen_meeting": "Bijeenkomst decanen",
    "campaign": "Week van het Loopbaandossier",
    "trajectory": "Traject Borging LOB",
    "other": "Overige activiteit",
}


class Status(StrEnum):
    SIGNED_UP = "signed_up"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class School:
    id: str
    name: str
    kind: str  # lob_common.contracts.SCHOOL_KINDS
    municipality: str | None = None


@dataclass(frozen=True)
class Activity:
    id: str
    kind: str
    title: str
    date: date  # local (Europe/Amsterdam) date of its start
    audience: tuple[str, ...] = ()  # lob_common.contracts.AUDIENCES; () = not said (before 1.2)
    cancelled: bool = False

    def is_for(self, audience: str) -> bool:
        """Who it is for: as published, or (events before 1.2) from its kind."""
        return audience in audience_or_default(self.kind, self.audience)


@dataclass(frozen=True)
class FactCount:
    """`n` identical participation facts."""

    activity_id: str
    role: str
    status: str = Status.SIGNED_UP
    attended: bool | None = None
    school_id: str | None = None
    activity_kind: str | None = None
    activity_date: date | None = None
    phase: str | None = None
    age_band: str | None = None
    municipality: str | None = None
    n: int = 1

    @property
    def signed_up(self) -> bool:
        return self.status == Status.SIGNED_UP


def known_activities(
    activities: Iterable[Activity], counts: Iterable[FactCount]
) -> dict[str, Activity]:
    """The catalogue by id, completed from the facts for activities whose announcement has
    not (yet) arrived: they still count, titled by their id."""
    known = {a.id: a for a in activities}
    for count in counts:
        if count.activity_id not in known and count.activity_date is not None:
            known[count.activity_id] = Activity(
                count.activity_id,
                count.activity_kind or "other",
                count.activity_id,
                count.activity_date,
            )
    return known


def sort_key(name: str) -> str:
    """The report's order: case-insensitive, "'t Atrium" (any apostrophe) first."""
    return name.replace("‘", "'").replace("’", "'").casefold()


def merged(counts: Iterable[FactCount]) -> list[FactCount]:
    """Identical facts added up (handy for tests and for rows read in pieces)."""
    out: dict[FactCount, int] = {}
    for count in counts:
        key = replace(count, n=0)
        out[key] = out.get(key, 0) + count.n
    return [replace(k, n=n) for k, n in out.items()]
