"""A published table as JSON-ready data, CSV (for scripts) and XLSX (for people).

CSV is one rectangle: a header row, the rows, the totals row; semicolon-separated like the
system's other lists (Dutch spreadsheets read it as is), UTF-8. Tables in sections get a first
column naming the section. XLSX is the readable sheet: title, period, header row as in the
report, rows, a bold totals row, notes, column widths to fit.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from reporting.domain.table import PublishedRow, PublishedTable

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def as_dict(published: PublishedTable) -> dict[str, Any]:
    table = published.table

    def row(r: PublishedRow) -> dict[str, Any]:
        return {"key": r.key, "label": r.label, "cells": list(r.cells), "total": r.total}

    return {
        "table": table.name,
        "title": table.title,
        "period": dict(table.period),
        "exact": published.exact,
        "threshold": None if published.exact else published.protection.threshold,
        "withheld": published.withheld,
        "row_header": table.row_header,
        "total_label": table.total_label,
        "columns": [
            {"key": c.key, "label": c.label, "kind": c.kind, "date": c.date} for c in table.columns
        ],
        "sections": [
            {
                "title": s.title,
                "rows": [row(r) for r in s.rows],
                "subtotal": row(s.subtotal) if s.subtotal else None,
            }
            for s in published.sections
        ],
        "totals": row(published.totals),
        "notes": list(published.notes),
    }


def _section_header(published: PublishedTable) -> str | None:
    """The name of the first column when a table has sections (None: it has one)."""
    table = published.table
    if table.partitioned:
        return "Activiteit"
    return table.row_header if len(table.sections) > 1 else None


def _lines(published: PublishedTable) -> list[tuple[str | None, PublishedRow, str]]:
    """(section, row, style) in reading order; style: row, subtotal or total."""
    out = []
    for section in published.sections:
        out += [(section.title, r, "row") for r in section.rows]
        if section.subtotal is not None:
            out.append((section.title, section.subtotal, "subtotal"))
    out.append((None, published.totals, "total"))
    return out


def _header(published: PublishedTable) -> list[str]:
    table = published.table
    first = _section_header(published)
    row_header = "School" if table.partitioned else ("Groep" if first else table.row_header)
    labels = [row_header, *(c.label for c in table.columns), table.total_label]
    return [first, *labels] if first else labels


def to_csv(published: PublishedTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(_header(published))
    sections = _section_header(published) is not None
    for section, row, style in _lines(published):
        label = "Totaal" if style == "subtotal" else row.label
        cells = [label, *row.cells, row.total]
        writer.writerow([section or "", *cells] if sections else cells)
    return out.getvalue()


BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")
SECTION_FONT = Font(bold=True, italic=True)
THIN = Side(style="thin")


def to_xlsx(published: PublishedTable) -> bytes:
    table = published.table
    book = Workbook()
    sheet = book.active
    sheet.title = table.name[:31]
    book.properties.title = table.title
    book.properties.creator = "LOB regio"

    sheet.append([table.title])
    sheet["A1"].font = Font(bold=True, size=13)
    subtitle = (
        "Exacte aantallen (niet voor publicatie)"
        if published.exact
        else (f"Aantallen onder {published.protection.threshold} afgeschermd")
    )
    sheet.append([f"{table.period.get('label', '')} · {subtitle}"])
    sheet["A2"].font = Font(italic=True)
    sheet.append([])
    width = len(table.columns) + 2
    header = [table.row_header, *(c.label for c in table.columns), table.total_label]
    sheet.append(header)
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font, cell.fill = BOLD, HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="bottom", horizontal="center")
        cell.border = Border(bottom=THIN)
    sheet.cell(header_row, 1).alignment = Alignment(vertical="bottom")

    current = object()
    with_sections = len(published.sections) > 1 or table.partitioned
    for section, row, style in _lines(published):
        if with_sections and style == "row" and section != current:
            current = section
            sheet.append([section])
            sheet.cell(sheet.max_row, 1).font = SECTION_FONT
        label = f"Totaal {section}" if style == "subtotal" and section else row.label
        sheet.append([label, *row.cells, row.total])
        line = sheet.max_row
        for column in range(2, width + 1):
            sheet.cell(line, column).alignment = Alignment(horizontal="right")
        if style != "row":
            for column in range(1, width + 1):
                sheet.cell(line, column).font = BOLD
        if style == "total":
            for column in range(1, width + 1):
                sheet.cell(line, column).border = Border(top=THIN, bottom=THIN)

    if published.notes:
        sheet.append([])
        for note in published.notes:
            sheet.append([note])
            sheet.cell(sheet.max_row, 1).font = Font(italic=True, size=9)

    labels = [len(str(sheet.cell(r, 1).value or "")) for r in range(header_row, sheet.max_row)]
    sheet.column_dimensions["A"].width = min(max([*labels, 12]) + 2, 48)
    for column in range(2, width + 1):
        text = str(header[column - 1])
        sheet.column_dimensions[get_column_letter(column)].width = max(10, min(len(text), 20) + 2)
    sheet.row_dimensions[header_row].height = 15 * max(1, max(len(h) // 18 + 1 for h in header))
    sheet.freeze_panes = sheet.cell(header_row + 1, 2)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(published: PublishedTable, fmt: str) -> tuple[bytes | str, str, str]:
    """(body, content type, file name) of a published table in a format."""
    from reporting.schemas import ReportOut

    period = published.table.period
    when = (period.get("school_year") or period.get("calendar_year") or "").replace(",", "_")
    filename = f"{published.table.name}-{when}.{fmt}" if when else f"{published.table.name}.{fmt}"
    if fmt == "csv":
        body: bytes | str = to_csv(published)
    elif fmt == "xlsx":
        body = to_xlsx(published)
    else:
        body = json.dumps(ReportOut().dump(as_dict(published)), ensure_ascii=False, default=str)
    return body, CONTENT_TYPES[fmt], filename
