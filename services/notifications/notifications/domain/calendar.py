"""Calendar invitations (RFC 5545 / iTIP RFC 5546) as Exchange, Google and Apple expect them.

One stable UID per person and activity (a re-sign-up after a cancellation keeps it), METHOD:REQUEST
with ORGANIZER and ATTENDEE and a SEQUENCE that rises with every change, METHOD:CANCEL with a
higher SEQUENCE when the sign-up or the activity is cancelled. Times are in Europe/Amsterdam with
its VTIMEZONE. (PUBLISH updates are ignored by Exchange and Google, and a SEQUENCE that does not
rise makes duplicates.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from icalendar import Calendar, Timezone, vCalAddress
from icalendar import Event as CalendarEvent

from lob_common.timeutil import AMSTERDAM

ORGANIZER = ("lob@regio-eem.example", "Projectgroep LOB regio Eem")
_NAMESPACE = uuid.UUID("6f1f4f5e-2b0a-4c55-9f43-1d2b1e0c7a10")


def calendar_uid(person_id: str, activity_id: str) -> str:
    """The same for every invitation of one person to one activity, ever."""
    return f"{uuid.uuid5(_NAMESPACE, f'{person_id}/{activity_id}')}@lob-regio-eem"


def invitation(
    uid: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    location: str = "",
    sequence: int = 0,
    cancelled: bool = False,
    description: str = "",
    attendee: str = "",
    attendee_name: str = "",
    organizer: tuple[str, str] = ORGANIZER,
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//LOB regio Eem//lob-backend//NL")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    entry = CalendarEvent()
    entry.add("uid", uid)
    entry.add("sequence", sequence)
    entry.add("dtstamp", datetime.now(UTC))
    entry.add("dtstart", starts_at.astimezone(AMSTERDAM))
    entry.add("dtend", ends_at.astimezone(AMSTERDAM))
    entry.add("summary", title)
    if location:
        entry.add("location", location)
    if description:
        entry.add("description", description)
    boss = vCalAddress(f"mailto:{organizer[0]}")
    boss.params["CN"] = organizer[1]
    entry.add("organizer", boss)
    if attendee:
        guest = vCalAddress(f"mailto:{attendee}")
        if attendee_name:
            guest.params["CN"] = attendee_name
        guest.params["ROLE"] = "REQ-PARTICIPANT"
        guest.params["PARTSTAT"] = "NEEDS-ACTION"
        guest.params["RSVP"] = "FALSE"
        entry.add("attendee", guest)
    entry.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    entry.add("transp", "OPAQUE")
    calendar.add_component(entry)
    # What `calendar.add_missing_timezones(first_date, last_date)` does, with each VTIMEZONE
    # built once per zone and date range: working out the transitions is a third of the
    # invitation's cost and the same for every mail about one activity.
    first_date = (starts_at - timedelta(days=366)).date()
    last_date = (ends_at + timedelta(days=366)).date()
    position = len(calendar.timezones)
    for tzid in calendar.get_missing_tzids():
        timezone = _timezone(tzid, first_date, last_date)
        if timezone is not None:
            calendar.subcomponents.insert(position, timezone)
            position += 1
    return calendar.to_ical()


@lru_cache(maxsize=64)
def _timezone(tzid: str, first_date: date, last_date: date) -> Timezone | None:
    """The VTIMEZONE of a zone for a date range (shared: serialising does not change it)."""
    try:
        return Timezone.from_tzid(tzid, first_date=first_date, last_date=last_date)
    except ValueError:  # a zone icalendar does not know is left out, as add_missing_timezones does
        return None
