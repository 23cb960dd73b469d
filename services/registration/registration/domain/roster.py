"""Class rosters: the pupils a school signs up in one file, as its school system exports them.

A decaan exports a class from Magister or Somtoday (or types one in Excel) and uploads it. This
module turns the table's text cells into `RosterRow` values. Everything it cannot use becomes a
`RowProblem`: the line the school sees in Excel, the column, and what to change, in Dutch. It
reads; it does not decide. Who may sign up for what (age, consent, window, school) is for the
sign-up rules, applied to the rows returned here.

How it reads, and why:
- Headers are matched on letters and digits only, without accents or case ("E-mailadres",
  "e-mail adres" and "EMAILADRES" are one header), against the spellings the Dutch school
  systems use. A file may carry a few title lines above its header row; the header row is the
  first of the first lines that names the most known columns.
- Columns we do not use are never read into a row, so data a school exports by accident
  (addresses, phone numbers) goes no further than this module (AVG). Their headers come back
  as a warning.
- The school year is read from a year column, else from the class name: the first digit 1-6
  in codes like "3B", "4 vmbo-k", "H4a", "KB3", "3.04"; "brugklas" is year 1. A code that names
  two years ("3/4A") or none ("examenklas") is a problem that asks for a Leerjaar column.
- Dates are day first, as Dutch Excel writes them, or ISO; Excel's own serial numbers too.
- Student numbers of digits only are compared without leading zeros, because Excel drops them
  when a roster passes through a spreadsheet: "012345" and 12345 are the same pupil.

Bytes become rows in `registration.adapters.roster_files` (encodings, separators, XLSX).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from registration.domain.errors import RegistrationError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000  # pupils (data lines), not counting the header and empty lines
HEADER_SEARCH_LINES = 10  # title lines a file may have above its header row
MIN_HEADER_MATCHES = 2
MAX_NAME_LENGTH = 100  # as a single sign-up (registration.schemas)
MAX_PREFIX_LENGTH = 20  # "van der", "in 't", "van den"
MAX_CODE_LENGTH = 32  # student number, class
MAX_EMAIL_LENGTH = 254
SCHOOL_YEARS = range(1, 7)
EARLIEST_BIRTH = date(1900, 1, 1)
# Excel's day 0 for serial numbers (1900 system, counting its phantom 29 Feb 1900).
EXCEL_EPOCH = date(1899, 12, 30)

FileFormat = Literal["csv", "xlsx"]
EMPTY_FILE = "Het bestand is leeg: er staan geen kolomkoppen en geen leerlingen in."


class RosterError(RegistrationError):
    """A roster file that must change before anything can be read from it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message  # Dutch, for the school


UnreadableReason = Literal["not_a_table", "damaged", "empty", "no_header", "no_pupils"]


class RosterUnreadable(RosterError):
    """Not a table we can read; `reason` says why.

    "not_a_table": no CSV or XLSX at all (a PDF, an image, an old .xls, binary data): HTTP 415.
    The others are a CSV or XLSX that makes no roster: "damaged" (a broken workbook or quoting),
    "empty", "no_header" (no header row in the first lines), "no_pupils": HTTP 422.
    """

    def __init__(self, message: str, *, reason: UnreadableReason) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def unsupported_format(self) -> bool:
        return self.reason == "not_a_table"


class RosterTooLarge(RosterError):
    """Over a limit (HTTP 413); `limit` says which.

    "bytes": the file (or an XLSX unpacked); "rows": pupils; "cells": an XLSX sheet with far more
    filled cells than a roster has (reading it would take minutes).
    """

    def __init__(self, message: str, *, limit: Literal["bytes", "rows", "cells"]) -> None:
        super().__init__(message)
        self.limit = limit


def too_many_bytes(max_bytes: int) -> RosterTooLarge:
    return RosterTooLarge(
        f"Het bestand is groter dan {_size(max_bytes)}; splits het, bijvoorbeeld per klas.",
        limit="bytes",
    )


def too_many_rows(max_rows: int) -> RosterTooLarge:
    return RosterTooLarge(
        f"Het bestand heeft meer dan {max_rows} leerlingen; splits het, bijvoorbeeld per klas.",
        limit="rows",
    )


def _size(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n % 1024 == 0:
        return f"{n // 1024} kB"
    return f"{n} bytes"


# --- the table the adapter hands over ----------------------------------------------------------


@dataclass(frozen=True)
class RosterTable:
    """A file's rows as text: `(line, cells)` with the line number the school sees in Excel."""

    rows: Sequence[tuple[int, Sequence[str]]]
    format: FileFormat
    encoding: str | None = None  # CSV only: "utf-8", "utf-8-sig", "cp1252", "utf-16"
    delimiter: str | None = None  # CSV only


# --- columns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column we read: its field (our English header), its Dutch label, accepted spellings.

    Spellings are in order of preference: when a file has two columns for one field (Roepnaam
    and Voornamen), the earlier spelling wins and the other is reported as not used.
    """

    field: str
    label: str
    spellings: tuple[str, ...]


def _choice(n: int, ordinal: str, word: str) -> Column:
    return Column(
        f"choice_{n}",
        f"Keuze {n}",
        (
            f"Keuze {n}",
            f"{n}e keuze",
            f"{word} keuze",
            f"Voorkeur {n}",
            f"Keuze {ordinal}",
            f"choice_{n}",
        ),
    )


COLUMNS: tuple[Column, ...] = (
    Column(
        "student_number",
        "Stamnummer",
        (
            "Stamnummer",
            "Stamnr",
            "Leerlingnummer",
            "Leerlingnr",
            "Llnr",
            "Studentnummer",
            "student_number",
        ),
    ),
    Column("first_name", "Roepnaam", ("Roepnaam", "Voornaam", "Voornamen", "first_name")),
    Column(
        "last_name_prefix",
        "Tussenvoegsel",
        (
            "Tussenvoegsel",
            "Tussenvoegsels",
            "Voorvoegsel",
            "Voorvoegsels",
            "Tussenv.",
            "last_name_prefix",
        ),
    ),
    Column("last_name", "Achternaam", ("Achternaam", "Geslachtsnaam", "Familienaam", "last_name")),
    Column(
        "class",
        "Klas",
        ("Klas", "Klasnaam", "Klascode", "Klas/groep", "Stamgroep", "Basisgroep", "Groep", "class"),
    ),
    Column("school_year", "Leerjaar", ("Leerjaar", "Jaarlaag", "school_year")),
    Column(
        "date_of_birth",
        "Geboortedatum",
        ("Geboortedatum", "Geb. datum", "Geboren", "Geboren op", "date_of_birth", "birth_date"),
    ),
    Column(
        "email",
        "E-mail",
        (
            "E-mail",
            "E-mailadres",
            "E-mail leerling",
            "E-mailadres leerling",
            "Mail",
            "Mailadres",
            "email",
        ),
    ),
    Column(
        "parent_email",
        "E-mail ouder",
        (
            "E-mail ouder",
            "E-mail ouders",
            "E-mail ouder/verzorger",
            "E-mail verzorger",
            "E-mail ouder 1",
            "E-mailadres ouder",
            "E-mailadres ouders",
            "E-mailadres ouder/verzorger",
            "E-mailadres verzorger",
            "Ouder e-mail",
            "parent_email",
        ),
    ),
    _choice(1, "een", "Eerste"),
    _choice(2, "twee", "Tweede"),
    _choice(3, "drie", "Derde"),
    Column(
        "backup",
        "Reserve",
        ("Reserve", "Reservekeuze", "Keuze reserve", "Reservevoorlichting", "backup"),
    ),
)
COLUMN_BY_FIELD = {column.field: column for column in COLUMNS}
CHOICE_FIELDS = ("choice_1", "choice_2", "choice_3", "backup")
# A whole name in one column: we do not guess where a Dutch name splits.
WHOLE_NAME_SPELLINGS = ("Naam", "Volledige naam", "Leerling", "Naam leerling", "Leerlingnaam")

_FOLD_DROP = re.compile(r"[^a-z0-9]")


def fold_header(text: str) -> str:
    """A header's letters and digits, lower case, without accents: "E-mailadres" -> "emailadres"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _FOLD_DROP.sub("", plain.casefold())


def _alias_table() -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for column in COLUMNS:
        for rank, spelling in enumerate(column.spellings):
            key = fold_header(spelling)
            if key in table and table[key][0] != column.field:
                raise AssertionError(f"{spelling!r} names two columns")
            table.setdefault(key, (column.field, rank))
    # The English names with their underscores dropped are the same header ("first_name").
    return table


_ALIASES = _alias_table()
_WHOLE_NAME = {fold_header(s) for s in WHOLE_NAME_SPELLINGS}


def column_for_header(text: str) -> str | None:
    """The field a header names, or None for a column we do not use."""
    found = _ALIASES.get(fold_header(text))
    return found[0] if found else None


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterRow:
    """One pupil as the file names them; `line` is the file line (header = its own line)."""

    line: int
    student_number: str | None
    first_name: str
    last_name_prefix: str | None
    last_name: str
    class_name: str | None
    school_year: int
    date_of_birth: date
    email: str | None
    parent_email: str | None
    choices: tuple[str, ...] = ()  # session ids, first choice first (info day only)
    backup: str | None = None  # session id (info day only)

    @property
    def full_last_name(self) -> str:
        """The last name as it is written after a first name: "de Vries"."""
        if self.last_name_prefix:
            return f"{self.last_name_prefix} {self.last_name}"
        return self.last_name


@dataclass(frozen=True)
class RowProblem:
    """What to fix, where: `field` is a column's English name (see COLUMNS), "columns" for the
    header row, or "row" for the whole line (a duplicate pupil)."""

    row: int
    field: str
    message: str  # Dutch, for the school


@dataclass(frozen=True)
class Roster:
    """What a file says: the rows without problems, and every problem of the others."""

    rows: tuple[RosterRow, ...]
    problems: tuple[RowProblem, ...]
    warnings: tuple[str, ...]  # Dutch; nothing to fix, worth knowing
    ignored_columns: tuple[str, ...]  # headers as in the file
    columns: Mapping[str, str]  # field -> header as in the file
    header_line: int
    data_lines: int  # pupils' lines read (non-empty, below the header, example line not counted)
    format: FileFormat
    encoding: str | None = None
    delimiter: str | None = None
    problem_lines: frozenset[int] = field(default_factory=frozenset)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- reading a table ---------------------------------------------------------------------------

_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)  # ="012345": how exports keep leading zeros


def clean_cell(text: str) -> str:
    """Trimmed, inner runs of white space made one space, Excel's ="..." unwrapped."""
    text = text.strip().strip(_INVISIBLE).strip()
    if text.startswith('="'):
        wrapped = _EXCEL_TEXT.match(text)
        if wrapped:
            text = wrapped.group(1).strip()
    if "  " in text or "\t" in text or "\n" in text or "\r" in text or "\xa0" in text:
        text = " ".join(text.split())
    return text


def parse_roster(
    table: RosterTable,
    *,
    sessions: Mapping[str, str] | None = None,
    max_rows: int = MAX_ROWS,
    today: date | None = None,
) -> Roster:
    """Read a table as a class roster.

    `sessions` (session id -> title) is given for an info day: then the choice columns are
    required, and each choice is resolved to a session id. Raises RosterUnreadable when no
    header row or no pupil is found, RosterTooLarge over `max_rows` pupils.
    """
    lines = [(line, cells) for line, cells in table.rows if any(c.strip() for c in cells)]
    if not lines:
        raise RosterUnreadable(EMPTY_FILE, reason="empty")
    position = _header_position(lines)
    header_line, header = lines[position]
    layout = _layout(header, with_choices=sessions is not None)
    warnings = [
        f"Regel {line} staat boven de kolomkoppen en is overgeslagen."
        for line, _ in lines[:position]
    ]
    warnings += layout.warnings()
    data = lines[position + 1 :]
    missing = layout.missing()
    if missing:
        problem = RowProblem(header_line, "columns", _missing_columns_message(missing, layout))
        rows, problems, counted = [], [problem], len(data)
    else:
        reader = _RowReader(layout, sessions, today or date.today())
        rows, problems, counted = _read_lines(reader, data, max_rows, warnings)
    return Roster(
        rows=tuple(rows),
        problems=tuple(problems),
        warnings=tuple(warnings),
        ignored_columns=tuple(layout.ignored + [text for text, _ in layout.duplicates]),
        columns=dict(layout.headers),
        header_line=header_line,
        data_lines=counted,
        format=table.format,
        encoding=table.encoding,
        delimiter=table.delimiter,
        problem_lines=frozenset(p.row for p in problems),
    )


def _read_lines(
    reader: _RowReader,
    data: Sequence[tuple[int, Sequence[str]]],
    max_rows: int,
    warnings: list[str],
) -> tuple[list[RosterRow], list[RowProblem], int]:
    """The pupils' lines: rows without problems, every problem, and the number of pupils."""
    rows: list[RosterRow] = []
    problems: list[RowProblem] = []
    duplicates = _Duplicates(reader.layout.label("student_number").lower())
    counted = 0
    example_skipped = False
    for line, cells in data:
        row, row_problems, keys = reader.read(line, cells)
        if row is not None and _is_template_example(row):
            warnings.append(
                f"Regel {line} is de voorbeeldregel van het sjabloon en is overgeslagen."
            )
            example_skipped = True
            continue
        counted += 1
        if counted > max_rows:
            raise too_many_rows(max_rows)
        duplicate = duplicates.check(line, *keys)
        if duplicate:
            row_problems.append(duplicate)
        if row_problems:
            problems.extend(row_problems)
        elif row is not None:
            rows.append(row)
    if counted == 0:
        what = "alleen de voorbeeldregel" if example_skipped else "kolomkoppen maar geen leerlingen"
        raise RosterUnreadable(
            f"Het bestand heeft {what}; zet onder de kolomkoppen één regel per leerling.",
            reason="no_pupils",
        )
    return rows, problems, counted


class _Duplicates:
    """A pupil seen before in this file: by student number, else by name and birth date."""

    def __init__(self, number_label: str) -> None:
        self.number_label = number_label
        self.numbers: dict[str, int] = {}
        self.people: dict[tuple[str, date], int] = {}

    def check(
        self, line: int, number: str | None, person: tuple[str, date] | None
    ) -> RowProblem | None:
        problem = None
        if number is not None and number in self.numbers:
            problem = self._problem(line, self.numbers[number], f"zelfde {self.number_label}")
        elif person is not None and person in self.people:
            problem = self._problem(line, self.people[person], "zelfde naam en geboortedatum")
        if number is not None:
            self.numbers.setdefault(number, line)
        if person is not None:
            self.people.setdefault(person, line)
        return problem

    @staticmethod
    def _problem(line: int, first: int, why: str) -> RowProblem:
        return RowProblem(
            line,
            "row",
            f"Deze leerling staat al op regel {first} ({why}); verwijder een van beide regels.",
        )


def _header_position(lines: Sequence[tuple[int, Sequence[str]]]) -> int:
    best, best_matches = None, MIN_HEADER_MATCHES - 1
    for position, (_, cells) in enumerate(lines[:HEADER_SEARCH_LINES]):
        matches = len({column_for_header(c) for c in cells} - {None})
        if matches > best_matches:
            best, best_matches = position, matches
    if best is None:
        raise RosterUnreadable(
            "Geen kolomkoppen gevonden. Zet in de eerste regel kolomkoppen zoals Stamnummer, "
            "Roepnaam, Tussenvoegsel, Achternaam, Klas, Geboortedatum (zie het sjabloon), "
            "gescheiden door puntkomma's, komma's of tabs.",
            reason="no_header",
        )
    return best


@dataclass
class _Layout:
    index: dict[str, int]  # field -> cell position
    headers: dict[str, str]  # field -> header text
    ignored: list[str]
    duplicates: list[tuple[str, str]]  # (header not used, header used for the same field)
    whole_name: str | None
    with_choices: bool
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = {c.field: _sentence(self.headers.get(c.field) or c.label) for c in COLUMNS}

    def label(self, field_name: str) -> str:
        """The column as the file names it, to start a sentence with."""
        return self.labels[field_name]

    def warnings(self) -> list[str]:
        said = [
            f"Kolom '{unused}' is niet gebruikt: '{used}' staat er ook in."
            for unused, used in self.duplicates
        ]
        if self.ignored:
            said.append(
                "Deze kolommen worden niet gebruikt en niet bewaard: "
                + ", ".join(self.ignored)
                + "."
            )
        return said

    def missing(self) -> list[str]:
        needed = ["first_name", "last_name", "date_of_birth"]
        if self.with_choices:
            needed += list(CHOICE_FIELDS)
        missing = [COLUMN_BY_FIELD[f].label for f in needed if f not in self.index]
        if "class" not in self.index and "school_year" not in self.index:
            missing.append("Klas (of Leerjaar)")
        return missing


def _layout(header: Sequence[str], *, with_choices: bool) -> _Layout:
    chosen: dict[str, tuple[int, int]] = {}  # field -> (rank, position)
    ignored: list[str] = []
    whole_name = None
    for position, text in enumerate(header):
        text = clean_cell(text)
        if not text:
            continue
        found = _ALIASES.get(fold_header(text))
        if found is None or (not with_choices and found[0] in CHOICE_FIELDS):
            ignored.append(text)
            if fold_header(text) in _WHOLE_NAME:
                whole_name = text
            continue
        field_name, rank = found
        if field_name not in chosen or rank < chosen[field_name][0]:
            chosen[field_name] = (rank, position)
    index = {f: position for f, (_, position) in chosen.items()}
    headers = {f: clean_cell(header[i]) for f, i in index.items()}
    used = set(index.values())
    duplicates = []
    for position, text in enumerate(header):
        found = _ALIASES.get(fold_header(text))
        if position in used or found is None or found[0] not in index:
            continue
        duplicates.append((clean_cell(text), headers[found[0]]))
    return _Layout(index, headers, ignored, duplicates, whole_name, with_choices)


def _missing_columns_message(missing: list[str], layout: _Layout) -> str:
    names = ", ".join(missing)
    message = (
        f"Deze kolommen ontbreken: {names}. Zet ze als kolomkop in de kopregel (zie het sjabloon)."
    )
    if layout.whole_name and ("Roepnaam" in missing or "Achternaam" in missing):
        message += (
            f" Kolom '{layout.whole_name}' bevat de hele naam; splits die in Roepnaam, "
            "Tussenvoegsel en Achternaam."
        )
    found = list(layout.headers.values()) + layout.ignored
    if found:
        message += " Gevonden kolommen: " + ", ".join(found) + "."
    return message


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


class _CellProblem(ValueError):
    """A cell we cannot use; the message says what to write instead."""


class _RowReader:
    """Reads data lines against one header layout."""

    def __init__(self, layout: _Layout, sessions: Mapping[str, str] | None, today: date) -> None:
        self.layout = layout
        self.today = today
        self.sessions = _SessionLookup(sessions) if sessions is not None else None

    def read(
        self, line: int, cells: Sequence[str]
    ) -> tuple[RosterRow | None, list[RowProblem], tuple[str | None, tuple[str, date] | None]]:
        problems: list[RowProblem] = []
        label = self.layout.label
        width = len(cells)
        values = {
            f: clean_cell(cells[i]) if i < width else "" for f, i in self.layout.index.items()
        }

        def check(field_name: str, parse: Callable[..., Any], *args: Any) -> Any:
            try:
                return parse(values.get(field_name, ""), label(field_name), *args)
            except _CellProblem as problem:
                problems.append(RowProblem(line, field_name, str(problem)))
                return None

        student_number = check("student_number", _student_number)
        first_name = check("first_name", _name, True, MAX_NAME_LENGTH)
        prefix = check("last_name_prefix", _name, False, MAX_PREFIX_LENGTH)
        last_name = check("last_name", _name, True, MAX_NAME_LENGTH)
        if prefix and last_name and len(prefix) + 1 + len(last_name) > MAX_NAME_LENGTH:
            problems.append(
                RowProblem(
                    line,
                    "last_name",
                    f"{label('last_name')} is met tussenvoegsel langer dan {MAX_NAME_LENGTH} "
                    "tekens; kort hem in.",
                )
            )
        class_name = check("class", _code)
        school_year = self._school_year(line, values.get("school_year", ""), class_name, problems)
        birth = check("date_of_birth", _birth_date, self.today)
        email = check("email", _email)
        parent_email = check("parent_email", _email)
        choices: list[str] = []
        backup = None
        if self.sessions is not None:
            for field_name in CHOICE_FIELDS[:3]:
                session = check(field_name, self.sessions.resolve)
                if session:
                    choices.append(session)
            backup = check("backup", self.sessions.resolve)

        number_key = student_number.upper() if student_number else None
        person_key = None
        if first_name and last_name and birth:
            person_key = (fold_name(f"{first_name} {prefix or ''} {last_name}"), birth)
        keys = (number_key, person_key)
        if problems:
            return None, problems, keys
        return (
            RosterRow(
                line=line,
                student_number=student_number or None,
                first_name=first_name,
                last_name_prefix=prefix or None,
                last_name=last_name,
                class_name=class_name or None,
                school_year=school_year,
                date_of_birth=birth,
                email=email or None,
                parent_email=parent_email or None,
                choices=tuple(choices),
                backup=backup or None,
            ),
            problems,
            keys,
        )

    def _school_year(
        self, line: int, given: str, class_name: str | None, problems: list[RowProblem]
    ) -> int | None:
        label = self.layout.label
        if given:
            year = school_year_from_text(given)
            if year is None:
                problems.append(
                    RowProblem(
                        line,
                        "school_year",
                        f"{label('school_year')} '{given}' is geen leerjaar; gebruik 1 tot en "
                        "met 6.",
                    )
                )
            return year
        if class_name:
            year = school_year_from_class(class_name)
            if year is None:
                problems.append(
                    RowProblem(
                        line,
                        "class",
                        f"Het leerjaar is niet af te lezen uit {label('class').lower()} "
                        f"'{class_name}'; voeg een kolom Leerjaar toe (1 tot en met 6).",
                    )
                )
            return year
        if class_name is None:  # the class cell itself had a problem, already reported
            return None
        field_name = "class" if "class" in self.layout.index else "school_year"
        problems.append(
            RowProblem(
                line,
                field_name,
                f"{label(field_name)} ontbreekt; vul de klas (bijvoorbeeld 3B) of het leerjaar in.",
            )
        )
        return None


# --- cells -------------------------------------------------------------------------------------


def _student_number(text: str, label: str) -> str:
    """Digits without leading zeros (Excel drops them); anything else as it is."""
    if len(text) > MAX_CODE_LENGTH:
        raise _CellProblem(
            f"{label} is langer dan {MAX_CODE_LENGTH} tekens; controleer of dit het nummer is."
        )
    if text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return text


def _name(text: str, label: str, required: bool, max_length: int) -> str:
    if not text and required:
        raise _CellProblem(f"{label} ontbreekt; vul de naam in of verwijder de regel.")
    if len(text) > max_length:
        raise _CellProblem(f"{label} is langer dan {max_length} tekens; kort hem in.")
    return text


def _code(text: str, label: str) -> str:
    if len(text) > MAX_CODE_LENGTH:
        raise _CellProblem(f"{label} is langer dan {MAX_CODE_LENGTH} tekens; kort hem in.")
    return text


_EMAIL = re.compile(r"[^@\s,;:<>()\[\]\"]+@[^@\s,;:<>()\[\]\"]+\.[^@\s,;:<>()\[\]\".]{2,}")


def _email(text: str, label: str) -> str:
    if not text:
        return ""
    if text.count("@") > 1:
        raise _CellProblem(f"{label} '{text}' bevat meer dan één e-mailadres; laat er één staan.")
    if len(text) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(text):
        raise _CellProblem(
            f"{label} '{text}' is geen geldig e-mailadres; verbeter het of laat het leeg."
        )
    return text


def fold_name(text: str) -> str:
    """A name for comparing: no accents, no case, single spaces ("Émile  de Vries")."""
    if text.isascii():
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


# --- the school year ---------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d+")
_COMBINED = re.compile(r"[/+&]|\ben\b")


@functools.lru_cache(maxsize=1024)  # a file has a few dozen classes, each on many lines
def school_year_from_class(class_name: str) -> int | None:
    """The school year a Dutch class code names, or None when it names none or two.

    The year is the first run of digits when that is one digit 1-6: "3B", "4 vmbo-k", "3KB",
    "4GT-a", "3-TL", "m3b", "H4a", "B4", "TL4-2" (group 2 of TL4), "3.04". A brugklas is year 1.
    A combined class ("3/4A", "3B+4B") and codes like "301" or "examenklas" are not guessed.
    """
    text = fold_name(class_name)
    if "brug" in text:
        return 1
    runs = _DIGIT_RUN.findall(text)
    if not runs or len(runs[0]) != 1 or int(runs[0]) not in SCHOOL_YEARS:
        return None
    year = int(runs[0])
    if _COMBINED.search(text) and any(
        len(run) == 1 and int(run) in SCHOOL_YEARS and int(run) != year for run in runs[1:]
    ):
        return None
    return year


def school_year_from_text(text: str) -> int | None:
    """A year column's value: "3", "3e", "leerjaar 3", "3 vmbo", "3.0"; None if not 1-6."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:[.,]0+)?", text):
        value = int(re.split(r"[.,]", text)[0])
        return value if value in SCHOOL_YEARS else None
    return school_year_from_class(text)


# --- dates -------------------------------------------------------------------------------------

_MONTH_NAMES = (
    ("jan", "januari"),
    ("feb", "februari"),
    ("mrt", "maart"),
    ("apr", "april"),
    ("mei",),
    ("jun", "juni"),
    ("jul", "juli"),
    ("aug", "augustus"),
    ("sep", "sept", "september"),
    ("okt", "oktober"),
    ("nov", "november"),
    ("dec", "december"),
)
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, 1) for name in names}
_TIME = r"(?:[ t]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DAY_FIRST = re.compile(rf"(\d{{1,2}})\s*[-/.]\s*(\d{{1,2}})\s*[-/.]\s*(\d{{4}}|\d{{2}}){_TIME}")
_YEAR_FIRST = re.compile(rf"(\d{{4}})[-/.](\d{{1,2}})[-/.](\d{{1,2}}){_TIME}")
_MONTH_NAME = re.compile(r"(\d{1,2})[\s.-]*([a-z]+)\.?[\s.-]*(\d{4})")
_COMPACT = re.compile(r"\d{8}")
_SERIAL = re.compile(r"(\d{5})(?:[.,]\d+)?")
DATE_HINT = "gebruik dd-mm-jjjj, bijvoorbeeld 14-03-2011"


def _birth_date(text: str, label: str, today: date) -> date:
    if not text:
        raise _CellProblem(f"{label} ontbreekt; vul de geboortedatum in ({DATE_HINT}).")
    found = parse_dutch_date(text, today)
    if found is None:
        raise _CellProblem(f"{label} '{text}' is geen datum; {DATE_HINT}.")
    if isinstance(found, str):
        raise _CellProblem(found.format(label=label, text=text))
    if found > today:
        raise _CellProblem(f"{label} '{text}' ligt in de toekomst; {DATE_HINT}.")
    if found < EARLIEST_BIRTH:
        raise _CellProblem(f"{label} '{text}' ligt voor 1900; controleer het jaar.")
    return found


def parse_dutch_date(text: str, today: date) -> date | str | None:
    """A date as Dutch schools write it, day first; ISO; 8 digits; an Excel serial number.

    Returns the date, None when the text is no date at all, or a message template (with
    {label} and {text}) when it has the shape of a date that does not exist.
    """
    text = text.strip().lower()
    match = _DAY_FIRST.fullmatch(text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        if len(match.group(3)) == 2:
            year = _century(year, today)
        return _existing(year, month, day)
    match = _YEAR_FIRST.fullmatch(text)
    if match:
        year, month, day = (int(g) for g in match.groups())
        return _existing(year, month, day, day_first=False)
    match = _MONTH_NAME.fullmatch(text)
    if match and match.group(2) in _MONTHS:
        return _existing(int(match.group(3)), _MONTHS[match.group(2)], int(match.group(1)))
    if _COMPACT.fullmatch(text):
        year_first = _existing(int(text[:4]), int(text[4:6]), int(text[6:]), day_first=False)
        if isinstance(year_first, date) and year_first >= EARLIEST_BIRTH:
            return year_first
        return _existing(int(text[4:]), int(text[2:4]), int(text[:2]))
    match = _SERIAL.fullmatch(text)
    if match:
        return EXCEL_EPOCH + timedelta(days=int(match.group(1)))
    return None


def _century(year: int, today: date) -> int:
    """Two-digit years: this century unless that is in the future (pupils are young)."""
    return 2000 + year if 2000 + year <= today.year else 1900 + year


def _existing(year: int, month: int, day: int, *, day_first: bool = True) -> date | str:
    try:
        return date(year, month, day)
    except ValueError:
        pass
    if day_first and month > 12 and 1 <= day <= 12:
        return (
            f"{{label}} '{{text}}' bestaat niet (er is geen maand {month}); "
            "gebruik dd-mm-jjjj, de dag eerst."
        )
    return "{label} '{text}' bestaat niet; " + DATE_HINT + "."


# --- info-day choices --------------------------------------------------------------------------

_SEPARATORS = " -–—:"


class _SessionLookup:
    """A choice by session id or exact title (case-insensitive), or "id - title"."""

    def __init__(self, sessions: Mapping[str, str]) -> None:
        self.titles_by_id = dict(sessions)
        self.by_id = {session_id.casefold(): session_id for session_id in sessions}
        self.by_title: dict[str, list[str]] = {}
        for session_id, title in sessions.items():
            self.by_title.setdefault(fold_title(title), []).append(session_id)

    def resolve(self, text: str, label: str) -> str:
        if not text:
            return ""
        found = self.by_id.get(text.casefold())
        if found:
            return found
        by_title = self.by_title.get(fold_title(text))
        if by_title and len(by_title) == 1:
            return by_title[0]
        if by_title:
            raise _CellProblem(
                f"{label} '{text}' is de titel van meer voorlichtingen; gebruik de code "
                f"({', '.join(by_title)})."
            )
        folded = text.casefold()
        for key, session_id in self.by_id.items():
            rest = folded[len(key) :]
            title = fold_title(self.titles_by_id[session_id])
            if (
                folded.startswith(key)
                and rest[:1] in _SEPARATORS
                and fold_title(rest.strip(_SEPARATORS)) == title
            ):
                return session_id
        raise _CellProblem(
            f"{label} '{text}' is geen voorlichting van deze dag; gebruik de code of de precieze "
            "titel (zie het sjabloon)."
        )


def fold_title(text: str) -> str:
    return " ".join(text.casefold().split())


# --- the template ------------------------------------------------------------------------------

TEMPLATE_FIELDS = (
    "student_number",
    "first_name",
    "last_name_prefix",
    "last_name",
    "class",
    "school_year",
    "date_of_birth",
    "email",
    "parent_email",
)
# The template's example line. A file that still has it is read without it (with a warning),
# so that no school signs up "Sanne de Voorbeeld" by leaving the line in.
EXAMPLE_PUPIL = {
    "student_number": "123456",
    "first_name": "Sanne",
    "last_name_prefix": "de",
    "last_name": "Voorbeeld",
    "class": "3B",
    "school_year": "3",
    "date_of_birth": "14-03-2011",
    "email": "sanne.voorbeeld@school.example",
    "parent_email": "ouder.voorbeeld@example.nl",
}
EXAMPLE_BIRTH = date(2011, 3, 14)


def _is_template_example(row: RosterRow) -> bool:
    return (
        row.first_name.casefold() == EXAMPLE_PUPIL["first_name"].casefold()
        and row.last_name.casefold() == EXAMPLE_PUPIL["last_name"].casefold()
        and row.date_of_birth == EXAMPLE_BIRTH
    )


def template_columns(*, with_choices: bool) -> tuple[Column, ...]:
    """The template's columns, in order: Dutch labels a decaan recognises."""
    fields = TEMPLATE_FIELDS + (CHOICE_FIELDS if with_choices else ())
    return tuple(COLUMN_BY_FIELD[f] for f in fields)


def template_example(sessions: Mapping[str, str] | None) -> dict[str, str]:
    """The example line, field -> text; with the first four sessions' ids for an info day."""
    example = dict(EXAMPLE_PUPIL)
    if sessions is not None:
        ids = list(sessions)[:4]
        for field_name, session_id in zip(CHOICE_FIELDS, ids, strict=False):
            example[field_name] = session_id
    return example
