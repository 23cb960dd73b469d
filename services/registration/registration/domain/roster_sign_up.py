"""Signing a class up from its roster: which row is which known pupil, and what each row does.

The rows come from domain.roster (the file as read); the sign-up rules are domain.sign_up's,
applied to each row as to one sign-up, on the school's legal basis (LegalBasis.SCHOOL: no parent
consent round, an e-mail address not required). What this module adds is what a file has and a
single sign-up has not: a pupil seen before.

- Who is who. A row is a known pupil of the same school by student number; else by name and
  birth date (accents, case and spacing aside), among the school's pupils without a student
  number or when the row has none. Only the uploading school's pupils are ever compared, so a
  pupil of school A is never found from school B's file.
- What a row does (`Outcome`): a new sign-up (CREATED); a pupil already signed up with the same
  details (UNCHANGED); with corrected details (UPDATED: names, e-mail addresses, school year,
  student number; the contact lookup reads them fresh); REFUSED when the state of things is in
  the way and not the file: a pupil whose sign-up for this activity was cancelled (a school that
  re-uploads last week's file should not silently undo a cancellation), or one already signed up
  with other info-day choices (there is no event to change choices yet: cancel and sign up
  again). Capacity is no refusal: a single sign-up is not refused when an activity is full
  either (scheduling places and keeps waiting lists).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from registration.domain.errors import RegistrationError
from registration.domain.model import LegalBasis, Preferences, Role, SignUpRequest
from registration.domain.roster import RosterRow, RowProblem, fold_name
from registration.domain.rules import RuleViolation

# A sign-up rule's field -> the roster column it came from (domain.roster's field names).
ROSTER_FIELD = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "parent_email": "parent_email",
    "date_of_birth": "date_of_birth",
    "school_year": "school_year",
    "choices": "choices",  # the three choice columns together (choice_1..choice_3)
    "backup": "backup",
}


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass(frozen=True)
class KnownPupil:
    """A person of the uploading school as stored, with their registration for this activity
    (`status` None: none; "signed_up" or "cancelled")."""

    person_id: str
    student_number: str | None
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    parent_email: str | None
    school_year: int | None
    registration_id: str | None = None
    status: str | None = None
    preferences: Preferences = field(default_factory=Preferences)


def sign_up_request(row: RosterRow, activity_id: str, school_id: str) -> SignUpRequest:
    """The single sign-up a roster row stands for."""
    return SignUpRequest(
        activity_id=activity_id,
        role=Role.PUPIL,
        first_name=row.first_name,
        last_name=row.full_last_name,
        email=row.email,
        date_of_birth=row.date_of_birth,
        school_id=school_id,
        school_year=row.school_year,
        parent_email=row.parent_email,
        preferences=Preferences(row.choices, row.backup),
        legal_basis=LegalBasis.SCHOOL,
    )


def row_problems(row: RosterRow, violations: Iterable[RuleViolation]) -> list[RowProblem]:
    """The sign-up rules' refusals of a row, on the row's line and under its column's name."""
    return [RowProblem(row.line, ROSTER_FIELD.get(v.field, v.field), v.message) for v in violations]


def person_key(first_name: str, last_name: str, born: date | None) -> tuple[str, date | None]:
    """A pupil's name and birth date as compared (the tussenvoegsel is part of the last name)."""
    return fold_name(f"{first_name} {last_name}"), born


class KnownPupils:
    """The uploading school's pupils, looked up by student number, else by name and birth date."""

    def __init__(self, pupils: Iterable[KnownPupil]) -> None:
        self.by_number: dict[str, KnownPupil] = {}
        self.by_person: dict[tuple[str, date | None], list[KnownPupil]] = {}
        for pupil in pupils:
            if pupil.student_number:
                self.by_number.setdefault(pupil.student_number.upper(), pupil)
            key = person_key(pupil.first_name, pupil.last_name, pupil.date_of_birth)
            self.by_person.setdefault(key, []).append(pupil)

    def find(self, row: RosterRow) -> KnownPupil | None:
        if row.student_number:
            found = self.by_number.get(row.student_number.upper())
            if found is not None:
                return found
        same = self.by_person.get(person_key(row.first_name, row.full_last_name, row.date_of_birth))
        if not same:
            return None
        if row.student_number:  # another number is another pupil who shares name and birthday
            same = [p for p in same if not p.student_number]
        # Several records of one pupil (single sign-ups with different addresses): the one
        # already on this activity, else the first.
        return next(
            (p for p in same if p.status in ("signed_up", "pending_consent")),
            same[0] if same else None,
        )


@dataclass(frozen=True)
class RowDecision:
    row: RosterRow
    outcome: Outcome
    pupil: KnownPupil | None = None  # the known pupil the row is (None: a new one)
    reason: str = ""  # REFUSED: why, in Dutch


def decide_row(row: RosterRow, pupil: KnownPupil | None, activity_title: str) -> RowDecision:
    """What a row that passed the sign-up rules does, given the known pupil it is (if any)."""
    if pupil is None or pupil.status is None:
        return RowDecision(row, Outcome.CREATED, pupil)
    if pupil.status == "pending_consent":
        return RowDecision(
            row,
            Outcome.REFUSED,
            pupil,
            f"Deze leerling heeft zich zelf aangemeld voor '{activity_title}' en wacht op "
            "toestemming van een ouder; die aanmelding loopt al.",
        )
    if pupil.status != "signed_up":
        return RowDecision(
            row,
            Outcome.REFUSED,
            pupil,
            f"Deze leerling is afgemeld voor '{activity_title}'. Komt hij of zij toch, meld "
            "hem of haar dan los aan (POST /registrations).",
        )
    if Preferences(row.choices, row.backup) != pupil.preferences and (row.choices or row.backup):
        return RowDecision(
            row,
            Outcome.REFUSED,
            pupil,
            "Deze leerling is al aangemeld met andere keuzes. Keuzes wijzigen kan niet met een "
            "klassenlijst: meld de leerling af en daarna opnieuw aan.",
        )
    if changed_details(row, pupil):
        return RowDecision(row, Outcome.UPDATED, pupil)
    return RowDecision(row, Outcome.UNCHANGED, pupil)


def changed_details(row: RosterRow, pupil: KnownPupil) -> dict[str, object]:
    """The person's details as the row has them, where they differ from what is stored. An
    empty cell keeps what is stored (an export without addresses does not erase them)."""
    wanted: Mapping[str, object] = {
        "first_name": row.first_name,
        "last_name": row.full_last_name,
        "email": row.email.lower() if row.email else None,
        "parent_email": row.parent_email,
        "school_year": row.school_year,
        "student_number": row.student_number,
    }
    stored = {
        "first_name": pupil.first_name,
        "last_name": pupil.last_name,
        "email": pupil.email,
        "parent_email": pupil.parent_email,
        "school_year": pupil.school_year,
        "student_number": pupil.student_number,
    }
    return {
        name: value
        for name, value in wanted.items()
        if value not in (None, "") and value != stored[name]
    }


def decide_rows(
    rows: Iterable[RosterRow], known: KnownPupils, activity_title: str
) -> tuple[list[RowDecision], list[RowProblem]]:
    """Every row's decision; a row that is the same known pupil as an earlier row (one by
    student number, the other by name and birth date) is a problem of the file instead."""
    decisions: list[RowDecision] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for row in rows:
        pupil = known.find(row)
        if pupil is not None and pupil.person_id in first_line:
            problems.append(
                RowProblem(
                    row.line,
                    "row",
                    f"Deze leerling is dezelfde als op regel {first_line[pupil.person_id]} "
                    "(stamnummer of naam en geboortedatum); verwijder een van beide regels.",
                )
            )
            continue
        if pupil is not None:
            first_line[pupil.person_id] = row.line
        decisions.append(decide_row(row, pupil, activity_title))
    return decisions, problems


class InvalidRoster(RegistrationError):
    """A roster with lines to fix (nothing stored): every problem, on its file line."""

    def __init__(self, problems: Sequence[RowProblem], lines: int) -> None:
        super().__init__(f"{len({p.row for p in problems})} lines")
        self.problems = tuple(sorted(problems, key=lambda p: p.row))
        self.lines = lines  # pupils' lines read


@dataclass
class RosterCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0

    @classmethod
    def of(cls, decisions: Sequence[RowDecision]) -> RosterCounts:
        counts = cls()
        for decision in decisions:
            name = decision.outcome.value
            setattr(counts, name, getattr(counts, name) + 1)
        return counts
