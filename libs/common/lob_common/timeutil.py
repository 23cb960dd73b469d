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
