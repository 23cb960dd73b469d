"""Attendance on the day: who came, per registration, from a ticked room list or one by one.

The room list (GET /activities/{id}/room-lists?format=csv) has a registration number column and
an empty `aanwezig` column; the supervisor ticks it on paper or in a spreadsheet, and the file
comes back. `read_attendance` turns that table into one mark per registration, or says per row
what to fix (all or nothing). A pupil of an information day is on the list once per round: one
tick in any round is present. `is_change` says whether a mark is a new fact (recording the same
thing twice changes nothing; a correction does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from registration.domain.roster import RowProblem, clean_cell, fold_header

ID_HEADERS = frozenset(
    fold_header(h) for h in ("aanmeldingsnummer", "registration_id", "aanmelding", "nummer")
)
PRESENT_HEADERS = frozenset(fold_header(h) for h in ("aanwezig", "present", "aanwezigheid"))
ROUND_HEADERS = frozenset(fold_header(h) for h in ("ronde", "round"))
PLACE_HEADERS = frozenset(fold_header(h) for h in ("sessie", "session_id", "workshop", "bus"))
HEADER_SEARCH_LINES = 10

YES = frozenset({"ja", "j", "x", "1", "yes", "y", "true", "waar", "aanwezig", "v", "✓", "✔"})
NO = frozenset({"nee", "n", "0", "no", "false", "onwaar", "afwezig", "-"})
UNDERSTOOD = "Vul ja of nee in (x of 1 is aanwezig; 0 of leeg is afwezig)."


class AttendanceFileRefused(ValueError):
    """The file as a whole cannot be read as an attendance list; the message says why (Dutch)."""


@dataclass(frozen=True)
class Mark:
    registration_id: str
    present: bool
    rows: tuple[int, ...]  # the lines it came from (the first one is reported)


@dataclass(frozen=True)
class AttendanceList:
    marks: tuple[Mark, ...]
    problems: tuple[RowProblem, ...]


def present_value(text: str) -> bool | None:
    """ja/nee/x/1/0/leeg as True/False; None for anything else (a row problem)."""
    value = clean_cell(text).casefold()
    if value in YES:
        return True
    if value == "" or value in NO:
        return False
    return None


def is_change(current: bool | None, present: bool) -> bool:
    return current is None or current != present


def _header(rows: Sequence[tuple[int, Sequence[str]]]) -> tuple[int, dict[str, int]]:
    for position, (_, cells) in enumerate(rows[:HEADER_SEARCH_LINES]):
        folded = [fold_header(c) for c in cells]
        columns = {}
        for index, name in enumerate(folded):
            for field, names in (
                ("id", ID_HEADERS),
                ("present", PRESENT_HEADERS),
                ("round", ROUND_HEADERS),
                ("place", PLACE_HEADERS),
            ):
                if name in names and field not in columns:
                    columns[field] = index
        if "id" in columns and "present" in columns:
            return position, columns
    raise AttendanceFileRefused(
        "Geen kolommen 'aanmeldingsnummer' en 'aanwezig' gevonden. Gebruik de zaallijst "
        "(GET /activities/{id}/room-lists?format=csv) en vul daarin de kolom aanwezig in."
    )


def read_attendance(rows: Sequence[tuple[int, Sequence[str]]]) -> AttendanceList:
    """The marks of a ticked room list (`rows`: (line, cells) as the file reader gives them)."""
    position, columns = _header(rows)
    problems: list[RowProblem] = []
    seen: dict[tuple[str, str, str], int] = {}
    marks: dict[str, Mark] = {}
    any_filled = False

    def cell(cells: Sequence[str], field: str) -> str:
        index = columns.get(field)
        return clean_cell(cells[index]) if index is not None and index < len(cells) else ""

    for line, cells in rows[position + 1 :]:
        if not any(clean_cell(c) for c in cells):
            continue
        registration_id = cell(cells, "id")
        raw = cell(cells, "present")
        any_filled = any_filled or raw != ""
        if not registration_id:
            problems.append(RowProblem(line, "registration_id", "Het aanmeldingsnummer ontbreekt."))
            continue
        present = present_value(raw)
        if present is None:
            message = f"'{raw[:40]}' begrijpen we niet. {UNDERSTOOD}"
            problems.append(RowProblem(line, "present", message))
            continue
        where = (registration_id, cell(cells, "round"), cell(cells, "place"))
        if where in seen:
            message = f"Deze regel staat er dubbel in (ook op regel {seen[where]})."
            problems.append(RowProblem(line, "row", message))
            continue
        seen[where] = line
        earlier = marks.get(registration_id)
        marks[registration_id] = Mark(
            registration_id,
            present or (earlier.present if earlier else False),
            (*(earlier.rows if earlier else ()), line),
        )
    if not marks and not problems:
        raise AttendanceFileRefused("Er staan geen deelnemers in het bestand.")
    if not any_filled and not problems:
        raise AttendanceFileRefused(
            "De kolom aanwezig is nog helemaal leeg: vul per deelnemer ja of nee in (x of 1 is "
            "aanwezig). Zo schrijven we niet per ongeluk iedereen als afwezig in."
        )
    return AttendanceList(tuple(marks.values()), tuple(problems))
