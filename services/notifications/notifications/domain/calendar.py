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
    # What `calendar.add_missing_timezones(first_date, last_date)` then `to_ical()` give, with
    # each VTIMEZONE built and serialised once per zone and date range: working out its
    # transitions and writing it is most of an invitation's cost, and the same for every mail
    # about one activity. The zones come first among the calendar's components, so their text
    # goes right after the calendar's own properties, before the first BEGIN line that follows.
    first_date = (starts_at - timedelta(days=366)).date()
    last_date = (ends_at + timedelta(days=366)).date()
    zones = b"".join(
        _timezone(tzid, first_date, last_date) for tzid in sorted(calendar.get_missing_tzids())
    )
    content = calendar.to_ical()
    if not zones:
        return content
    position = content.index(b"\r\nBEGIN:", len(b"BEGIN:VCALENDAR")) + 2
    return content[:position] + zones + content[position:]


@lru_cache(maxsize=64)
def _timezone(tzid: str, first_date: date, last_date: date) -> bytes:
    """A zone's VTIMEZONE for a date range, as text ("" for a zone icalendar does not know:
    add_missing_timezones leaves it out)."""
    try:
        return Timezone.from_tzid(tzid, first_date=first_date, last_date=last_date).to_ical()
    except ValueError:
        return b""
