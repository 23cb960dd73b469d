"""Reporting periods: school years (1 Aug - 31 Jul), calendar years, and the programme change.

The vsv programme (Tabel 3a/3b) runs until 31 Dec 2025; the 12-27 programme starts on
1 Jan 2026. The 2025-2026 school year is therefore split: its legacy tables cover Aug-Dec 2025,
its 12-27 table Jan-Jul 2026. Dates are local (Europe/Amsterdam) activity dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from lob_common.timeutil import dutch_date_in_words

PROGRAMME_12_27_START = date(2026, 1, 1)
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


class PeriodError(ValueError):
    """A period that cannot be reported on; the message says (in Dutch) what to ask instead."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SchoolYear:
    first: int  # 2024 for 2024-2025

    @classmethod
    def parse(cls, text: str) -> SchoolYear:
        match = _SCHOOL_YEAR.match(text.strip())
        if not match or int(match[2]) != int(match[1]) + 1:
            raise PeriodError(
                "school_year", f"Schooljaar {text!r} klopt niet; schrijf het als 2024-2025."
            )
        return cls(int(match[1]))

    @property
    def starts(self) -> date:
        return date(self.first, 8, 1)

    @property
    def ends(self) -> date:
        return date(self.first + 1, 7, 31)

    def __str__(self) -> str:
        return f"{self.first}-{self.first + 1}"

    @property
    def spoken(self) -> str:
        """As the annual report writes it: '2024 – 2025'."""
        return f"{self.first} – {self.first + 1}"


def school_year_of(day: date) -> SchoolYear:
    return SchoolYear(day.year if day.month >= 8 else day.year - 1)


@dataclass(frozen=True)
class Period:
    """A date range (both ends included) and how a title names it."""

    starts: date
    ends: date
    label: str
    school_year: SchoolYear | None = None
    calendar_year: int | None = None

    def __contains__(self, day: date) -> bool:
        return self.starts <= day <= self.ends


def legacy_period(school_year: SchoolYear, programme_start: date = PROGRAMME_12_27_START) -> Period:
    """The part of a school year that belongs to the vsv programme (Tabel 3a/3b)."""
    if school_year.starts >= programme_start:
        raise PeriodError(
            "school_year",
            f"Tabel 3a en 3b horen bij het vsv-programma, dat op "
            f"{dutch_date_in_words(programme_start - _ONE_DAY)} eindigde. Vraag voor "
            f"schooljaar {school_year} het overzicht programme-12-27.",
        )
    ends = min(school_year.ends, programme_start - _ONE_DAY)
    label = f"schooljaar {school_year.spoken}"
    if ends < school_year.ends:
        label += f" (tot en met {dutch_date_in_words(ends)})"
    return Period(school_year.starts, ends, label, school_year=school_year)


def programme_period(
    school_year: SchoolYear | None = None,
    calendar_year: int | None = None,
    programme_start: date = PROGRAMME_12_27_START,
) -> Period:
    """The part of a school year or calendar year that belongs to the 12-27 programme."""
    if (school_year is None) == (calendar_year is None):
        raise PeriodError(
            "calendar_year", "Geef een kalenderjaar (bijv. 2026) of een schooljaar, niet allebei."
        )
    if calendar_year is not None:
        starts, ends = date(calendar_year, 1, 1), date(calendar_year, 12, 31)
        label = f"kalenderjaar {calendar_year}"
        field = "calendar_year"
    else:
        assert school_year is not None
        starts, ends = school_year.starts, school_year.ends
        label = f"schooljaar {school_year.spoken}"
        field = "school_year"
    if ends < programme_start:
        raise PeriodError(
            field,
            f"Het 12-27-programma begint op {dutch_date_in_words(programme_start)}; "
            f"vraag voor {label} "
            "tabel-3a of tabel-3b.",
        )
    if starts < programme_start:
        starts = programme_start
        label += f" (vanaf {dutch_date_in_words(programme_start)})"
    return Period(starts, ends, label, school_year=school_year, calendar_year=calendar_year)


_ONE_DAY = timedelta(days=1)


def dutch_date(day: date) -> str:
    """14-11-2024: how a column header names an activity's date."""
    return f"{day.day:02d}-{day.month:02d}-{day.year}"
