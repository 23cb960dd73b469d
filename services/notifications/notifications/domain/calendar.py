"""Calendar invitations (RFC 5545). The UID is stable per registration, so a later update
(higher SEQUENCE) replaces the entry in the pupil's calendar instead of adding a second one."""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar
from icalendar import Event as CalendarEvent


def invitation(
    uid: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    location: str = "",
    sequence: int = 0,
    cancelled: bool = False,
    description: str = "",
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//LOB regio Eem//lob-backend//NL")
    calendar.add("version", "2.0")
    # PUBLISH: an entry to add or update, no reply expected (REQUEST would need an organizer
    # and attendees). Same UID + higher SEQUENCE updates the existing entry.
    calendar.add("method", "PUBLISH")
    entry = CalendarEvent()
    entry.add("uid", uid)
    entry.add("sequence", sequence)
    entry.add("dtstamp", datetime.now(UTC))
    entry.add("dtstart", starts_at.astimezone(UTC))
    entry.add("dtend", ends_at.astimezone(UTC))
    entry.add("summary", title)
    if location:
        entry.add("location", location)
    if description:
        entry.add("description", description)
    entry.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(entry)
    return calendar.to_ical()
