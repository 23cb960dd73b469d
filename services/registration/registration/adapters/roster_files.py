"""Roster files as schools send them: bytes in, rows of text out (and templates back).

What arrives is whatever a decaan's computer saved: a CSV from Excel in a Dutch locale
(Windows-1252, semicolons), a "CSV UTF-8" with a byte-order mark, a Magister or Somtoday export,
an .xlsx, or something else with a .csv name. So the content decides, not the name or media
type: a zip that holds a workbook is XLSX, text is CSV, and anything else is refused with a
message that says what it is and how to save it instead. The media type and file name only
sharpen that message.

- Encodings: a BOM (UTF-8, UTF-16) decides; else UTF-8 when the bytes are valid UTF-8 (a
  Windows-1252 file with accents almost never is), else Windows-1252.
- Separators: `;`, `,` or tab, whichever the first lines (outside quotes) hold most of; a
  leading `sep=;` line (Excel's own hint) decides and is not a row. csv.Sniffer guesses wrong
  on small files, so we count.
- XLSX: openpyxl in read-only mode, the active sheet (or the first with cells), cached values
  of formulas, date cells as ISO dates. Line numbers are the sheet's row numbers, and for CSV
  the record numbers, so both match what Excel shows.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from registration.domain.roster import (
    EMPTY_FILE,
    EXAMPLE_BIRTH,
    HEADER_SEARCH_LINES,
    MAX_BYTES,
    MAX_ROWS,
    Roster,
    RosterError,
    RosterTable,
    RosterTooLarge,
    RosterUnreadable,
    parse_roster,
    template_columns,
    template_example,
    too_many_bytes,
    too_many_rows,
)

CSV_MEDIA_TYPE = "text/csv"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_COLUMNS = 200  # a roster has about 15; more is a sheet with stray cells far to the right
# An .xlsx of 5000 pupils unpacks to 2-3 MB of XML, read in about a second. What unpacks to
# more than 5x the byte limit, or holds more filled cells than 30 columns of pupils, is no
# class roster and would keep a worker busy for minutes (openpyxl: 15-60 us a cell).
MAX_UNPACKED_RATIO = 5
CELLS_PER_LINE = 30
DELIMITERS = (";", "\t", ",")  # order breaks ties: Dutch Excel writes semicolons
SAVE_AS = "Sla het op als CSV (puntkomma's of komma's) of als Excel-werkmap (.xlsx)."
NOT_TEXT = "Dit bestand is geen tekst en geen werkmap. " + SAVE_AS


def read_roster(
    content: bytes,
    *,
    media_type: str | None = None,
    filename: str | None = None,
    sessions: Mapping[str, str] | None = None,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    today: date | None = None,
) -> Roster:
    """Read an uploaded roster: `read_table` then `parse_roster` (see both)."""
    table = read_table(content, max_bytes=max_bytes, max_rows=max_rows)
    try:
        return parse_roster(table, sessions=sessions, max_rows=max_rows, today=today)
    except RosterUnreadable as unreadable:
        if unreadable.reason == "no_header" and _claims_xlsx(media_type, filename):
            raise RosterUnreadable(
                "Het bestand heet een Excel-werkmap (.xlsx) maar is het niet. " + SAVE_AS,
                reason="not_a_table",
            ) from unreadable
        raise


def read_table(
    content: bytes, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS
) -> RosterTable:
    """The rows of a CSV or XLSX file, whatever it was called: the content decides.

    Raises RosterTooLarge over `max_bytes`, or when the file has clearly more than `max_rows`
    lines (it stops reading there), and RosterUnreadable for anything that is no table.
    """
    if len(content) > max_bytes:
        raise too_many_bytes(max_bytes)
    if not content.strip(b"\xef\xbb\xbf \t\r\n"):
        raise RosterUnreadable(EMPTY_FILE, reason="empty")
    if content.startswith(b"PK\x03\x04"):
        return _read_xlsx(content, max_bytes, max_rows)
    refused = _not_a_table(content)
    if refused:
        raise RosterUnreadable(refused, reason="not_a_table")
    text, encoding = decode(content)
    return _read_csv(text, encoding, max_rows)


# --- what it is --------------------------------------------------------------------------------

# (magic bytes, what it is, what to do instead: SAVE_AS unless said)
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF", "Dit is een PDF-bestand, geen tabel.", SAVE_AS),
    (b"\x89PNG", "Dit is een afbeelding (PNG), geen tabel.", SAVE_AS),
    (b"\xff\xd8\xff", "Dit is een afbeelding (JPEG), geen tabel.", SAVE_AS),
    (b"GIF8", "Dit is een afbeelding (GIF), geen tabel.", SAVE_AS),
    (
        b"\xd0\xcf\x11\xe0",
        "Dit is een oud Excel-bestand (.xls) of een werkmap met een wachtwoord.",
        "Sla het op als .xlsx zonder wachtwoord, of als CSV.",
    ),
    (b"{\\rtf", "Dit is een tekstdocument (RTF), geen tabel.", SAVE_AS),
    (b"<!doctype html", "Dit is een webpagina (HTML), geen tabel.", SAVE_AS),
    (b"<html", "Dit is een webpagina (HTML), geen tabel.", SAVE_AS),
    (b"<table", "Dit is een webpagina (HTML), geen tabel.", SAVE_AS),
    (b"<?xml", "Dit is een XML-bestand, geen tabel.", SAVE_AS),
)


def _not_a_table(content: bytes) -> str | None:
    """Why these bytes are no CSV, or None when they may be one."""
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for magic, what, instead in _SIGNATURES:
        if head.startswith(magic.lower()):
            return f"{what} {instead}"
    return None


def _claims_xlsx(media_type: str | None, filename: str | None) -> bool:
    return (media_type or "").split(";")[0].strip().lower() == XLSX_MEDIA_TYPE or (
        filename or ""
    ).lower().endswith((".xlsx", ".xlsm"))


# --- CSV ---------------------------------------------------------------------------------------


def decode(content: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with (see the module docstring)."""
    if content.startswith(b"\xef\xbb\xbf"):
        return _decode(content, "utf-8-sig"), "utf-8-sig"
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode(content, "utf-16"), "utf-16"
    utf16 = _bomless_utf16(content)
    if utf16:
        return _decode(content, utf16), utf16
    if b"\x00" in content[:8192]:
        raise RosterUnreadable(NOT_TEXT, reason="not_a_table")
    try:
        text, encoding = content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = _decode(content, "cp1252"), "cp1252"
    if _looks_binary(text):
        raise RosterUnreadable(NOT_TEXT, reason="not_a_table")
    return text, encoding


def _decode(content: bytes, encoding: str) -> str:
    try:
        text = content.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RosterUnreadable(
            "De tekens in dit bestand zijn niet te lezen. " + SAVE_AS, reason="not_a_table"
        ) from exc
    if _looks_binary(text):
        raise RosterUnreadable(NOT_TEXT, reason="not_a_table")
    return text


def _bomless_utf16(content: bytes) -> str | None:
    """UTF-16 without a BOM: every other byte of plain text is zero."""
    sample = content[:1024]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    return "\x00" in sample or len(_CONTROL.findall(sample)) > max(2, len(sample) // 200)


_SEP_LINE = re.compile(r"\Asep=(.)[ \t]*(\r\n|\n|\r)", re.IGNORECASE)


def _read_csv(text: str, encoding: str, max_rows: int) -> RosterTable:
    hinted = _SEP_LINE.match(text)
    if hinted:
        delimiter = hinted.group(1)
        text = text[hinted.end() :]
    else:
        delimiter = choose_delimiter(text)
    try:
        rows = _csv_rows(text, delimiter, max_rows, strict=True)
    except _QuoteNotClosed as unclosed:
        raise RosterUnreadable(
            f'Op regel {unclosed.line} opent een aanhalingsteken (") dat niet wordt gesloten, '
            "zodat de rest van het bestand één cel lijkt. Verwijder het of sluit het.",
            reason="damaged",
        ) from None
    except csv.Error:
        # Stray quotes inside a field ("a"b): read them as Excel does, leniently.
        rows = _csv_rows(text, delimiter, max_rows, strict=False)
    return RosterTable(rows=rows, format="csv", encoding=encoding, delimiter=delimiter)


class _QuoteNotClosed(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _csv_rows(
    text: str, delimiter: str, max_rows: int, *, strict: bool
) -> list[tuple[int, list[str]]]:
    """Records with their numbers (= Excel's rows: a quoted line break stays in one row)."""
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    line = 0
    try:
        for line, cells in enumerate(reader, 1):
            if not any(cells):
                continue
            rows.append((line, cells[:MAX_COLUMNS]))
            if len(rows) > _line_limit(max_rows):
                raise too_many_rows(max_rows)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise _QuoteNotClosed(line + 1) from exc
        if "field larger than field limit" in str(exc):
            raise RosterUnreadable(
                f"Regel {line + 1} heeft een cel van meer dan 128 000 tekens; is dit een "
                "tabel? " + SAVE_AS,
                reason="damaged",
            ) from exc
        raise
    return rows


def _line_limit(max_rows: int) -> int:
    """Reading stops a little past the limit (title lines, header); parse_roster counts exactly."""
    return max_rows + HEADER_SEARCH_LINES + 1


def choose_delimiter(text: str, records: int = HEADER_SEARCH_LINES) -> str:
    """The separator the first records use most, counted outside quotes.

    The most in any one of those records decides, so a title line above the header does not;
    ties go to `;`, then tab, then `,` (Dutch Excel).
    """
    best = dict.fromkeys(DELIMITERS, 0)
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    seen = 0
    for char in text[:65536]:
        if char == '"':
            in_quotes = not in_quotes
        elif in_quotes:
            continue
        elif char in counts:
            counts[char] += 1
        elif char in "\r\n":
            if any(counts.values()):
                for d in DELIMITERS:
                    best[d] = max(best[d], counts[d])
                    counts[d] = 0
            seen += 1
            if seen >= records * 2:  # \r\n counts twice
                break
    for d in DELIMITERS:
        best[d] = max(best[d], counts[d])
    return max(DELIMITERS, key=lambda d: best[d])  # max keeps the first of equals


# --- XLSX --------------------------------------------------------------------------------------


def _read_xlsx(content: bytes, max_bytes: int, max_rows: int) -> RosterTable:
    archive = _open_zip(content)
    names = set(archive.namelist())
    if "xl/workbook.xml" not in names:
        raise RosterUnreadable(_other_zip(archive, names), reason="not_a_table")
    if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_RATIO * max_bytes:
        raise RosterTooLarge(
            f"De werkmap is uitgepakt groter dan {MAX_UNPACKED_RATIO * max_bytes // 2**20} MB: "
            "meer dan een klassenlijst. Verwijder werkbladen, kolommen en afbeeldingen die niet "
            "nodig zijn, of splits het bestand.",
            limit="bytes",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style" and the like: not the school's
            workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
            try:
                rows = list(_sheet_rows(workbook, max_rows))
            finally:
                workbook.close()
    except RosterError:
        raise
    except Exception as exc:
        # openpyxl raises many kinds of errors for a damaged workbook; to the school each one
        # means the same: this file cannot be read, save it again.
        raise RosterUnreadable(
            "Deze Excel-werkmap is beschadigd of niet te lezen. Open hem in Excel en sla hem "
            "opnieuw op als .xlsx, of als CSV.",
            reason="damaged",
        ) from exc
    return RosterTable(rows=rows, format="xlsx")


def _open_zip(content: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RosterUnreadable(
            "Dit zip-bestand is beschadigd; het is geen leesbare Excel-werkmap. " + SAVE_AS,
            reason="damaged",
        ) from exc


def _other_zip(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "mimetype" in names:
        mimetype = archive.read("mimetype")[:100]
        if b"spreadsheet" in mimetype:
            return "Dit is een OpenDocument-rekenblad (.ods). " + SAVE_AS
        return "Dit is een OpenDocument-bestand, geen tabel. " + SAVE_AS
    if "word/document.xml" in names:
        return "Dit is een Word-document, geen tabel. " + SAVE_AS
    return "Dit is een zip-bestand, geen Excel-werkmap. " + SAVE_AS


def _sheet_rows(workbook: Any, max_rows: int) -> Iterator[tuple[int, list[str]]]:
    sheet = _roster_sheet(workbook)
    if sheet is None:
        return
    kept = 0
    cells_left = CELLS_PER_LINE * _line_limit(max_rows)
    for line, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1):
        cells_left -= sum(1 for v in values if v is not None)
        if cells_left < 0:
            raise RosterTooLarge(
                "Het werkblad heeft veel meer gevulde cellen dan een klassenlijst; verwijder "
                "de kolommen die niet nodig zijn, of splits het bestand.",
                limit="cells",
            )
        cells = [cell_text(v) for v in values[:MAX_COLUMNS]]
        if not any(cells):
            continue
        kept += 1
        if kept > _line_limit(max_rows):
            raise too_many_rows(max_rows)
        yield line, cells


def _roster_sheet(workbook: Any) -> Any:
    """The sheet that was open when the file was saved, else the first with cells."""
    sheets = [s for s in workbook.worksheets if hasattr(s, "iter_rows")]
    active = workbook.active if hasattr(workbook.active, "iter_rows") else None
    for sheet in [active, *sheets]:
        if sheet is None:
            continue
        sheet.reset_dimensions()  # some writers store a wrong size; read what is there
        if _has_cells(sheet):
            return sheet
    return None


def _has_cells(sheet: Any) -> bool:
    for values in sheet.iter_rows(min_row=1, max_row=HEADER_SEARCH_LINES + 1, values_only=True):
        if any(v is not None and str(v).strip() for v in values):
            return True
    return False


def cell_text(value: object) -> str:
    """A cell as the text a school sees: dates as ISO dates, whole numbers without ".0"."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "WAAR" if value else "ONWAAR"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, time):
        return value.isoformat()
    return str(value)


# --- templates ---------------------------------------------------------------------------------


def template_csv(sessions: Mapping[str, str] | None = None) -> bytes:
    """The roster template as CSV: UTF-8 with BOM and semicolons, so Dutch Excel opens it as
    columns with accents intact. `sessions` (id -> title) for an info day adds the choices."""
    columns = template_columns(with_choices=sessions is not None)
    example = template_example(sessions)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([c.label for c in columns])
    writer.writerow([example[c.field] for c in columns])
    return out.getvalue().encode("utf-8-sig")


def template_xlsx(sessions: Mapping[str, str] | None = None) -> bytes:
    """The roster template as a workbook: header row, the example line, widths, a text-format
    Stamnummer column (keeps leading zeros), a date cell; for an info day a second sheet with
    the sessions and drop-down lists in the choice columns."""
    columns = template_columns(with_choices=sessions is not None)
    example = template_example(sessions)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Leerlingen"
    sheet.append([c.label for c in columns])
    sheet.append([_example_cell(c.field, example[c.field]) for c in columns])
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for position, column in enumerate(columns, 1):
        letter = get_column_letter(position)
        header = sheet.cell(row=1, column=position)
        header.font = Font(bold=True)
        header.fill = header_fill
        header.alignment = Alignment(vertical="center")
        sheet.column_dimensions[letter].width = _TEMPLATE_WIDTHS.get(column.field, 14)
        if column.field in ("student_number", "class"):
            sheet.cell(row=2, column=position).number_format = "@"
        if column.field == "date_of_birth":
            sheet.cell(row=2, column=position).number_format = "DD-MM-YYYY"
    sheet.freeze_panes = "A2"
    if sessions is not None:
        _sessions_sheet(workbook, sheet, columns, sessions)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


_TEMPLATE_WIDTHS = {
    "student_number": 13,
    "first_name": 16,
    "last_name_prefix": 14,
    "last_name": 20,
    "class": 9,
    "school_year": 10,
    "date_of_birth": 15,
    "email": 32,
    "parent_email": 32,
}


def _example_cell(field: str, text: str) -> object:
    if field == "date_of_birth":
        return datetime.combine(EXAMPLE_BIRTH, time())
    if field == "school_year":
        return int(text)
    return text


def _sessions_sheet(
    workbook: Any, sheet: Any, columns: Sequence[Any], sessions: Mapping[str, str]
) -> None:
    listing = workbook.create_sheet("Voorlichtingen")
    listing.append(["Code", "Titel"])
    for session_id, title in sessions.items():
        listing.append([session_id, title])
    listing["A1"].font = listing["B1"].font = Font(bold=True)
    listing.column_dimensions["A"].width = 14
    listing.column_dimensions["B"].width = 60
    if not sessions:
        return
    choice = DataValidation(
        type="list",
        formula1=f"=Voorlichtingen!$A$2:$A${len(sessions) + 1}",
        allow_blank=True,
        showErrorMessage=False,  # a title typed by hand is fine too
    )
    sheet.add_data_validation(choice)
    for position, column in enumerate(columns, 1):
        if column.field.startswith("choice_") or column.field == "backup":
            letter = get_column_letter(position)
            choice.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
