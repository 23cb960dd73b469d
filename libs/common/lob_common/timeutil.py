"""Times are stored in UTC and shown in Europe/Amsterdam."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def local(moment: datetime) -> datetime:
    return moment.astimezone(AMSTERDAM)


def local_date(moment: datetime) -> date:
    return local(moment).date()


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# Dutch names for what people read (mails, pages, table headers).
DUTCH_WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
DUTCH_MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)


def dutch_day(moment: datetime) -> str:
    """'donderdag 10 december 2026', the day of `moment` in Amsterdam."""
    day = local(moment)
    return f"{DUTCH_WEEKDAYS[day.weekday()]} {dutch_date_in_words(day.date())}"


def dutch_date_in_words(day: date) -> str:
    """'10 december 2026'."""
    return f"{day.day} {DUTCH_MONTHS[day.month - 1]} {day.year}"
