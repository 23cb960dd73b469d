"""What a plan is, and who is told what when one is made (plain Python, no database).

A plan is made from a `PlanInput`: the activity as registration published it, its active
sign-ups, the plan in force if there is one, the settings and, for orientation days, the
attendance history. Each kind of activity turns that into an `Outcome` (see `kinds.py`): per
registration id a programme or a place on a waiting list, metrics for operators (counts only)
and details kept with the plan (room lists, a bus timetable). A stored outcome becomes the plan
in force (`PlanInForce`), and `announcements` says which events go out with it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from scheduling.domain import orientation
from scheduling.domain.infoday import DEFAULT_TIME_LIMIT_S

Progress = Callable[[str, float], None]


class NothingToPlan(LookupError):
    """The activity is unknown here, or of a kind this service does not plan."""


class CannotPlan(ValueError):
    """The activity cannot be planned as published; the message says what to fix."""


class PlanSuperseded(RuntimeError):
    """The plan in force changed while this one was being computed; nothing was stored."""


class SignUpStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Placement(StrEnum):
    """Where a sign-up stands in a plan."""

    ASSIGNED = "assigned"  # a programme: sessions, a workshop, a seat
    WAITLISTED = "waitlisted"  # a place in line
    UNPLACED = "unplaced"  # nothing that can be given (e.g. no valid choice); in the metrics


@dataclass(frozen=True)
class Settings:
    """Planning settings: the defaults are these, and only these. The service's config.yml
    maps environment variables onto them; a variable left unset keeps the default."""

    max_overbooking: float = orientation.DEFAULT_MAX_OVERBOOKING  # orientation days
    min_bookings: int = orientation.DEFAULT_MIN_BOOKINGS  # history before a no-show rate
    promotion_cutoff: timedelta = timedelta(hours=48)  # freed places move until then
    infoday_time_limit_s: float = DEFAULT_TIME_LIMIT_S  # the info-day search

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        defaults = cls()

        def read(key: str, convert: Callable[[Any], Any], default: Any) -> Any:
            value = config.get(key)
            return default if value is None or value == "" else convert(value)

        return cls(
            max_overbooking=read("ORIENTATION_MAX_OVERBOOKING", float, defaults.max_overbooking),
            min_bookings=read("ORIENTATION_MIN_BOOKINGS", int, defaults.min_bookings),
            promotion_cutoff=read(
                "PROMOTION_CUTOFF_HOURS",
                lambda hours: timedelta(hours=float(hours)),
                defaults.promotion_cutoff,
            ),
            infoday_time_limit_s=read(
                "INFODAY_TIME_LIMIT_SECONDS", float, defaults.infoday_time_limit_s
            ),
        )


@dataclass(frozen=True)
class Activity:
    """The activity as registration published it."""

    id: str
    kind: str
    title: str
    starts_at: datetime
    ends_at: datetime | None = None  # None: published before scheduling kept it
    sign_up_closes_at: datetime | None = None
    capacity: int | None = None  # seats for kinds without a planner; None: no limit
    spec: Mapping[str, Any] = field(default_factory=dict)  # sessions, workshops, buses, ...


@dataclass(frozen=True)
class SignUp:
    """A sign-up with what the person asked for (no names: scheduling does not need them)."""

    registration_id: str
    person_id: str
    school_id: str | None
    preferences: Mapping[str, Any]
    signed_up_at: datetime


@dataclass(frozen=True)
class Waiting:
    position: int
    item_id: str | None = None
    item_title: str = ""


@dataclass(frozen=True)
class PlanInForce:
    """The newest stored plan of an activity."""

    version: int
    programmes: Mapping[str, Mapping[str, Any]]  # registration id -> programme
    waitlist: Mapping[str, Waiting]
    details: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanInput:
    activity: Activity
    sign_ups: Sequence[SignUp]  # the active ones
    previous: PlanInForce | None = None
    settings: Settings = field(default_factory=Settings)
    history: Sequence[orientation.AttendanceRecord] = ()

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.activity.spec or {}

    def in_sign_up_order(self) -> list[SignUp]:
        return sorted(self.sign_ups, key=lambda s: (s.signed_up_at, s.registration_id))

    @property
    def cutoff(self) -> datetime:
        """Until this moment a freed place goes to the first in line; after it, it stays empty."""
        return self.activity.starts_at - self.settings.promotion_cutoff

    def promotion_open(self, at: datetime) -> bool:
        return at < self.cutoff


@dataclass
class Outcome:
    """A plan as made for one activity, per registration id."""

    programmes: dict[str, dict[str, Any]] = field(default_factory=dict)
    waitlist: dict[str, Waiting] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def placement(self, registration_id: str) -> Placement:
        if registration_id in self.programmes:
            return Placement.ASSIGNED
        if registration_id in self.waitlist:
            return Placement.WAITLISTED
        return Placement.UNPLACED


# --- who is told what --------------------------------------------------------------------------

Event = tuple[str, dict[str, Any]]  # (event type, payload)


@dataclass(frozen=True)
class Announcements:
    events: list[Event]  # in order; the last one is schedule_published
    summary: dict[str, Any]  # for the operator and the log (counts only)


def announcements(
    inp: PlanInput, version: int, outcome: Outcome, metrics: Mapping[str, Any]
) -> Announcements:
    """The events that go out with a new plan version: one per person whose situation is new
    (`event_for`), then one `schedule_published` with the metrics (counts, no names)."""
    activity_id = inp.activity.id
    events: list[Event] = []
    counts: Counter[str] = Counter()
    for sign_up in inp.sign_ups:
        event = event_for(
            activity_id,
            version,
            sign_up,
            outcome.programmes.get(sign_up.registration_id),
            outcome.waitlist.get(sign_up.registration_id),
            inp.previous,
        )
        if event:
            events.append(event)
            counts[event[0]] += 1
    events.append(
        (
            "schedule_published",
            {
                "activity_id": activity_id,
                "plan_version": version,
                "assigned": len(outcome.programmes),
                "changed": counts["programme_changed"],
                "waitlisted": len(outcome.waitlist),
                "metrics": dict(metrics),
            },
        )
    )
    summary = {
        "activity_id": activity_id,
        "version": version,
        "people": len(inp.sign_ups),
        "assigned": len(outcome.programmes),
        "changed": counts["programme_changed"],
        "newly_assigned": counts["programme_assigned"],
        "waitlisted": len(outcome.waitlist),
        "newly_waitlisted": counts["waitlisted"],
        "metrics": dict(metrics),
    }
    return Announcements(events, summary)


def event_for(
    activity_id: str,
    version: int,
    sign_up: SignUp,
    programme: Mapping[str, Any] | None,
    waiting: Waiting | None,
    previous: PlanInForce | None,
) -> Event | None:
    """Who hears what: new programmes, changed ones, and new places on a waiting list.

    Moving up a waiting list is not announced (one message per step would be noise); the
    position is in the plan for anyone who asks, and the seat itself is announced.
    """
    registration_id = sign_up.registration_id
    ids = {
        "activity_id": activity_id,
        "registration_id": registration_id,
        "person_id": sign_up.person_id,
    }
    if programme is not None:
        before = previous.programmes.get(registration_id) if previous else None
        payload = {**ids, "plan_version": version, **programme}
        if before is None:
            waited = previous is not None and registration_id in previous.waitlist
            return "programme_assigned", {**payload, "from_waitlist": waited}
        if _as_stored(before) == _as_stored(programme):
            return None
        return "programme_changed", {**payload, "previous_plan_version": previous.version}
    if waiting is None or (previous and registration_id in previous.waitlist):
        return None
    return "waitlisted", {
        **ids,
        "position": waiting.position,
        "item_id": waiting.item_id,
        "item_title": waiting.item_title,
    }


def _as_stored(programme: Mapping[str, Any]) -> Any:
    """A programme as it reads back from the plan's JSON (tuples become lists)."""
    return json.loads(json.dumps(programme))
