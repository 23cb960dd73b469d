"""Roster files as schools send them: encodings, separators, XLSX, files that are no table,
limits, and the templates. Every file is made here, in the shapes the school systems and Excel
write; docs/examples/ are read as the documentation promises."""

import codecs
import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from registration.adapters.roster_files import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    choose_delimiter,
    read_roster,
    read_table,
    template_csv,
    template_xlsx,
)
from registration.domain.roster import (
    COLUMNS,
    WHOLE_NAME_SPELLINGS,
    RosterTooLarge,
    RosterUnreadable,
)

TODAY = date(2025, 11, 1)
DOCS = Path(__file__).resolve().parents[4] / "docs"
MAGISTER = ["Stamnummer", "Roepnaam", "Tussenvoegsel", "Achternaam", "Klas", "Geboortedatum"]
MAGISTER += ["E-mail"]
PUPILS = [
    ["204518", "Zoë", "de", "Vries", "3B", "14-03-2011", "zoe@leerling.example"],
    ["204519", "Chloé", "van der", "Berg", "3B", "02-11-2010", ""],
    ["204520", "Ömer", "", "Yılmaz", "4 vmbo-k", "1-7-2010", "omer@leerling.example"],
    ["204521", "Daan", "", "Bakker, jr.", "H4a", "2010-12-31", ""],
]
NAMES = [("Zoë", "Vries"), ("Chloé", "Berg"), ("Ömer", "Yılmaz"), ("Daan", "Bakker, jr.")]
SESSIONS = {"zorg-1": "Zorg en welzijn", "tech-2": "Techniek", "ict-3": "ICT", "bak-4": "Bakker"}


def csv_bytes(rows, *, delimiter=";", encoding="utf-8", bom=False, newline="\r\n"):
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(rows)
    data = out.getvalue().encode(encoding)
    return codecs.BOM_UTF8 + data if bom else data


def xlsx_bytes(rows, *, before=None, sheet_title="Leerlingen"):
    workbook = openpyxl.Workbook()
    if before is not None:
        other = workbook.active
        other.title = "Info"
        other.append(before)
        sheet = workbook.create_sheet(sheet_title)
        workbook.active = sheet
    else:
        sheet = workbook.active
        sheet.title = sheet_title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def read(data, **kwargs):
    kwargs.setdefault("today", TODAY)
    return read_roster(data, **kwargs)


def names(roster):
    return [(r.first_name, r.last_name) for r in roster.rows]


# --- CSV ---------------------------------------------------------------------------------------


def test_a_magister_export_with_bom_semicolons_and_crlf():
    roster = read(csv_bytes([MAGISTER, *PUPILS], bom=True), media_type=CSV_MEDIA_TYPE)
    assert roster.problems == ()
    assert names(roster) == NAMES
    assert (roster.format, roster.encoding, roster.delimiter) == ("csv", "utf-8-sig", ";")
    assert [r.full_last_name for r in roster.rows][:2] == ["de Vries", "van der Berg"]
    assert roster.columns["first_name"] == "Roepnaam"  # no BOM left in the first header


LATIN = [[*row[:2], "", "Kartal", *row[4:]] for row in PUPILS]  # Yılmaz is not in Windows-1252


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_each_encoding_separator_and_line_ending(encoding, delimiter, newline):
    data = csv_bytes([MAGISTER, *LATIN], delimiter=delimiter, encoding=encoding, newline=newline)
    roster = read(data)
    assert roster.problems == ()
    assert [r.first_name for r in roster.rows] == ["Zoë", "Chloé", "Ömer", "Daan"]
    assert roster.rows[3].last_name == "Kartal"
    assert roster.delimiter == delimiter
    assert roster.encoding == encoding


def test_excel_csv_in_a_dutch_locale_is_windows_1252_not_mojibake():
    data = "Roepnaam;Achternaam;Klas;Geboortedatum\r\nRenée;Çelik;3B;14-3-2011\r\n"
    roster = read(data.encode("cp1252"))
    assert roster.encoding == "cp1252"
    assert names(roster) == [("Renée", "Çelik")]


def test_utf16_without_bom_as_some_exports_write_it():
    data = "Roepnaam\tAchternaam\tKlas\tGeboortedatum\r\nLotte\tSmit\t3B\t14-3-2011\r\n"
    assert names(read(data.encode("utf-16-le"))) == [("Lotte", "Smit")]


def test_quoted_fields_with_separators_quotes_and_line_breaks_inside():
    rows = [
        ["Roepnaam", "Achternaam", "Klas", "Geboortedatum", "Opmerking"],
        ["Sanne", "Berg, van den", "3B", "14-03-2011", 'zegt "hoi"; en, zo'],
        ["Daan", "Bakker", "3B", "14-03-2011", "twee\nregels"],
        ["Noor", "Smit", "3B", "31-02-2011", ""],
    ]
    for delimiter in (",", ";"):
        roster = read(csv_bytes(rows, delimiter=delimiter))
        assert names(roster) == [("Sanne", "Berg, van den"), ("Daan", "Bakker")]
        # Excel shows a cell with a line break as one row: Noor is on row 4
        assert [(p.row, p.field) for p in roster.problems] == [(4, "date_of_birth")]


def test_the_separator_is_counted_outside_quotes_and_a_title_line_does_not_decide():
    text = (
        "Klassenlijst 3B, Farel College, 2025-2026\n"
        "Roepnaam;Achternaam;Klas;Geboortedatum;Adres\n"
        'Sanne;Vries;3B;14-03-2011;"Kerkstraat 1, 3811 Amersfoort, NL"\n'
    )
    assert choose_delimiter(text) == ";"
    roster = read(text.encode())
    assert names(roster) == [("Sanne", "Vries")]
    assert roster.header_line == 2


def test_excels_sep_line_decides_and_is_not_a_row():
    text = "sep=,\r\nRoepnaam,Achternaam,Klas,Geboortedatum\r\nSanne,Vries;Jansen,3B,31-2-2011\r\n"
    roster = read(text.encode())
    assert roster.delimiter == ","
    assert [(p.row, p.field) for p in roster.problems] == [(2, "date_of_birth")]


def test_empty_lines_and_trailing_separators_are_ignored():
    text = (
        "\r\n"
        "Roepnaam;Achternaam;Klas;Geboortedatum;;;\r\n"
        "Sanne;Vries;3B;14-03-2011;;;\r\n"
        ";;;;;;\r\n"
        "\r\n"
        "Daan;Bakker;3B;30-02-2011;;;\r\n"
        ";;;;;;\r\n"
        "\r\n\r\n"
    )
    roster = read(text.encode())
    assert names(roster) == [("Sanne", "Vries")]
    assert [p.row for p in roster.problems] == [6]
    assert roster.ignored_columns == ()
    assert roster.data_lines == 2


def test_a_mac_classic_line_ending_file():
    text = "Roepnaam;Achternaam;Klas;Geboortedatum\rSanne;Vries;3B;14-03-2011\r"
    assert names(read(text.encode())) == [("Sanne", "Vries")]


def test_a_quote_that_is_never_closed_is_refused_naming_its_line():
    text = "Roepnaam;Achternaam;Klas;Geboortedatum\nDaan;Bakker;3B;1-1-2011\n"
    text += 'Sanne;"Vries;3B;14-03-2011\nNoor;Smit;3B;1-1-2011\n'
    with pytest.raises(RosterUnreadable) as caught:
        read(text.encode())
    assert caught.value.reason == "damaged"
    assert caught.value.message.startswith("Op regel 3 opent een aanhalingsteken")


def test_stray_quotes_inside_a_field_are_read_as_excel_does():
    text = 'Roepnaam;Achternaam;Klas;Geboortedatum\nJan "Jantje";Smit;3B;1-1-2011\n'
    text += '"Sanne"x;Vries;3B;1-1-2011\n'
    assert names(read(text.encode())) == [('Jan "Jantje"', "Smit"), ("Sannex", "Vries")]


# --- XLSX --------------------------------------------------------------------------------------


def test_an_xlsx_with_date_cells_numbers_and_a_serial_date():
    data = xlsx_bytes(
        [
            [
                *("Stamnummer", "Roepnaam", "Tussenvoegsel", "Achternaam", "Klas", "Leerjaar"),
                *("Geboortedatum", "E-mailadres"),
            ],
            [204518, "Zoë", "de", "Vries", "3B", 3, datetime(2011, 3, 14), "zoe@x.example"],
            [204519.0, "Daan", None, "Bakker", "4 vmbo-k", 4.0, date(2010, 5, 1), None],
            [204520, "Noor", None, "Smit", "H4a", None, 39886, None],  # General-format date
            ["000777", "Sem", None, "Jong", "3B", None, "14-03-2011", None],
        ]
    )
    roster = read(data, media_type=XLSX_MEDIA_TYPE)
    assert roster.problems == ()
    assert roster.format == "xlsx"
    rows = roster.rows
    assert [r.student_number for r in rows] == ["204518", "204519", "204520", "777"]
    assert [r.date_of_birth for r in rows] == [
        date(2011, 3, 14),
        date(2010, 5, 1),
        date(2009, 3, 14),
        date(2011, 3, 14),
    ]
    assert [r.school_year for r in rows] == [3, 4, 4, 3]
    assert rows[1].last_name_prefix is None


def test_xlsx_line_numbers_are_the_sheet_rows_with_gaps_and_a_title():
    data = xlsx_bytes(
        [
            ["Klassenlijst 3B"],
            [],
            ["Roepnaam", "Achternaam", "Klas", "Geboortedatum"],
            ["Sanne", "Vries", "3B", "14-03-2011"],
            [None, None, None, None],
            [],
            ["Daan", "Bakker", "3B", "31-02-2011"],
        ]
    )
    roster = read(data)
    assert roster.header_line == 3
    assert roster.rows[0].line == 4
    assert [p.row for p in roster.problems] == [7]


def test_xlsx_reads_the_active_sheet_and_skips_an_empty_one():
    pupils = [
        ["Roepnaam", "Achternaam", "Klas", "Geboortedatum"],
        ["Sanne", "Vries", "3B", "1-1-2011"],
    ]
    assert names(read(xlsx_bytes(pupils, before=["Lees mij: export uit Magister"]))) == [
        ("Sanne", "Vries")
    ]
    workbook = openpyxl.Workbook()
    workbook.active.title = "Leeg"
    sheet = workbook.create_sheet("Klas")
    for row in pupils:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    assert names(read(out.getvalue())) == [("Sanne", "Vries")]


def test_an_xlsx_named_csv_is_read_as_xlsx_and_a_csv_named_xlsx_as_csv():
    rows = [
        ["Roepnaam", "Achternaam", "Klas", "Geboortedatum"],
        ["Sanne", "Vries", "3B", "1-1-2011"],
    ]
    as_xlsx = read(xlsx_bytes(rows), media_type=CSV_MEDIA_TYPE, filename="klas3b.csv")
    assert (as_xlsx.format, names(as_xlsx)) == ("xlsx", [("Sanne", "Vries")])
    as_csv = read(csv_bytes(rows), media_type=XLSX_MEDIA_TYPE, filename="klas3b.xlsx")
    assert (as_csv.format, names(as_csv)) == ("csv", [("Sanne", "Vries")])


def test_text_that_claims_to_be_a_workbook_and_is_no_table_is_refused_as_such():
    with pytest.raises(RosterUnreadable) as caught:
        read(b"hallo, dit is een brief", filename="klas3b.xlsx")
    assert caught.value.unsupported_format
    assert "Excel-werkmap (.xlsx) maar is het niet" in caught.value.message


# --- what is no table --------------------------------------------------------------------------


def zipped(files):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "afbeelding (PNG)"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(64), "afbeelding (JPEG)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "oud Excel-bestand (.xls)"),
        (b"<!DOCTYPE html><html><table><tr><td>Sanne</td></tr></table>", "webpagina"),
        (zipped({"mimetype": "application/vnd.oasis.opendocument.spreadsheet"}), "(.ods)"),
        (zipped({"word/document.xml": "<w:document/>"}), "Word-document"),
        (zipped({"foto.jpg": "x"}), "zip-bestand, geen Excel-werkmap"),
        (bytes(range(256)) * 8, "geen tekst"),
    ],
)
def test_files_that_are_no_table_are_refused_saying_what_they_are(data, says):
    with pytest.raises(RosterUnreadable) as caught:
        read(data, media_type=CSV_MEDIA_TYPE)
    assert caught.value.unsupported_format
    assert says in caught.value.message
    assert "Sla het op als CSV" in caught.value.message or "Sla het op als .xlsx" in (
        caught.value.message
    )


def test_a_damaged_zip_is_unreadable_not_a_crash():
    with pytest.raises(RosterUnreadable) as caught:
        read(b"PK\x03\x04" + bytes(100), filename="klas.xlsx")
    assert caught.value.reason == "damaged"
    assert "zip-bestand is beschadigd" in caught.value.message


def test_a_damaged_workbook_is_unreadable_not_a_crash():
    data = xlsx_bytes([["Roepnaam", "Achternaam", "Klas", "Geboortedatum"]])
    archive = zipfile.ZipFile(io.BytesIO(data))
    files = {name: archive.read(name) for name in archive.namelist()}
    files["xl/worksheets/sheet1.xml"] = b"<worksheet><sheetData><row><c r='A1' t='s'><v>9"
    with pytest.raises(RosterUnreadable) as caught:
        read(zipped(files))
    assert not caught.value.unsupported_format
    assert "beschadigd" in caught.value.message


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n  \r\n", b";;;\r\n;;;\r\n"])
def test_an_empty_file_is_unreadable(data):
    with pytest.raises(RosterUnreadable, match="leeg"):
        read(data)


# --- limits ------------------------------------------------------------------------------------


def many(n):
    return [MAGISTER] + [[str(i), "Kim", "", f"J{i}", "3B", "14-03-2011", ""] for i in range(n)]


def test_over_the_byte_limit_is_too_large_before_reading():
    data = csv_bytes(many(100))
    assert len(read(data, max_bytes=len(data)).rows) == 100
    with pytest.raises(RosterTooLarge) as caught:
        read(data + b"\r\n", max_bytes=len(data))
    assert caught.value.limit == "bytes"


def test_the_default_byte_limit_is_five_megabytes():
    with pytest.raises(RosterTooLarge, match="groter dan 5 MB"):
        read(b"x" * (5 * 1024 * 1024 + 1))


@pytest.mark.parametrize("make", [csv_bytes, xlsx_bytes])
def test_over_the_row_limit_is_too_large_for_csv_and_xlsx(make):
    assert len(read(make(many(200)), max_rows=200).rows) == 200
    with pytest.raises(RosterTooLarge) as caught:
        read(make(many(201)), max_rows=200)
    assert caught.value.limit == "rows"
    with pytest.raises(RosterTooLarge):  # the reader stops early on far too many
        read_table(make(many(400)), max_rows=200)


def test_a_workbook_that_unpacks_far_beyond_its_size_is_too_large():
    rows = [MAGISTER] + [[f"{i}{'x' * 2000}"] * 7 for i in range(60)]
    data = xlsx_bytes(rows)
    with pytest.raises(RosterTooLarge) as caught:
        read(data, max_bytes=max(len(data), 100_000))
    assert caught.value.limit == "bytes"
    assert "uitgepakt groter dan" in caught.value.message


def test_a_sheet_with_far_more_cells_than_a_roster_is_too_large():
    wide = [[*MAGISTER, *(f"kolom {i}" for i in range(150))]]
    wide += [
        [str(i), "Kim", "", f"Jansen{i}", "3B", "14-03-2011", ""] + ["x"] * 150 for i in range(10)
    ]
    with pytest.raises(RosterTooLarge) as caught:
        read(xlsx_bytes(wide), max_rows=20)
    assert caught.value.limit == "cells"
    assert "kolommen die niet nodig zijn" in caught.value.message
    assert len(read(xlsx_bytes(wide), max_rows=200).rows) == 10


# --- templates ---------------------------------------------------------------------------------


def test_the_csv_template_opens_in_dutch_excel_and_reads_back():
    data = template_csv(SESSIONS)
    assert data.startswith(codecs.BOM_UTF8)
    header, example = data.decode("utf-8-sig").split("\r\n")[:2]
    assert header == (
        "Stamnummer;Roepnaam;Tussenvoegsel;Achternaam;Klas;Leerjaar;Geboortedatum;E-mail;"
        "E-mail ouder;Keuze 1;Keuze 2;Keuze 3;Reserve"
    )
    assert example.endswith(";zorg-1;tech-2;ict-3;bak-4")
    with pytest.raises(RosterUnreadable, match="alleen de voorbeeldregel"):
        read(data, sessions=SESSIONS)
    filled = data + b"7;Sem;;Jong;3B;;1-2-2011;;;zorg-1;ICT;bak-4;Techniek\r\n"
    roster = read(filled, sessions=SESSIONS)
    assert roster.problems == ()
    assert [(r.first_name, r.choices, r.backup) for r in roster.rows] == [
        ("Sem", ("zorg-1", "ict-3", "bak-4"), "tech-2")
    ]


def test_the_csv_template_of_other_activities_has_no_choices():
    header = template_csv().decode("utf-8-sig").split("\r\n")[0]
    assert header.endswith(";E-mail;E-mail ouder")


def test_the_xlsx_template_has_widths_formats_and_the_sessions():
    workbook = openpyxl.load_workbook(io.BytesIO(template_xlsx(SESSIONS)))
    sheet = workbook.active
    assert sheet.title == "Leerlingen"
    assert [c.value for c in sheet[1]][:4] == [
        "Stamnummer",
        "Roepnaam",
        "Tussenvoegsel",
        "Achternaam",
    ]
    assert all(c.font.bold for c in sheet[1])
    assert sheet.column_dimensions["H"].width >= 30  # e-mail
    assert sheet["G2"].value == datetime(2011, 3, 14)
    assert sheet["G2"].number_format == "DD-MM-YYYY"
    assert sheet["A2"].number_format == "@"
    assert sheet.freeze_panes == "A2"
    listing = workbook["Voorlichtingen"]
    assert [(r[0].value, r[1].value) for r in listing.iter_rows(min_row=2)] == list(
        SESSIONS.items()
    )
    assert any("J2" in str(v.sqref) for v in sheet.data_validations.dataValidation)


def test_the_xlsx_template_filled_in_by_a_school_reads_back():
    workbook = openpyxl.load_workbook(io.BytesIO(template_xlsx()))
    workbook.active.append([12, "Sem", None, "Jong", "3B", None, datetime(2011, 2, 1)])
    out = io.BytesIO()
    workbook.save(out)
    roster = read(out.getvalue())
    assert names(roster) == [("Sem", "Jong")]
    assert "Regel 2 is de voorbeeldregel van het sjabloon en is overgeslagen." in roster.warnings


# --- the documentation and its examples --------------------------------------------------------


def test_the_documentation_lists_every_accepted_header():
    text = (DOCS / "rosters.md").read_text()
    for column in COLUMNS:
        assert f"`{column.field}`" in text, column.field
        for spelling in column.spellings:
            assert f"`{spelling}`" in text, spelling
    for spelling in WHOLE_NAME_SPELLINGS:
        assert f"`{spelling}`" in text, spelling


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "pupils", "problems"),
    [
        ("magister-3b.csv", "utf-8-sig", ";", 6, 0),
        ("somtoday-4k.csv", "utf-8", ",", 5, 0),
        ("excel-windows-1252.csv", "cp1252", ";", 4, 0),
        ("met-fouten.csv", "utf-8-sig", ";", 2, 5),
    ],
)
def test_the_documented_example_files_read_as_documented(
    name, encoding, delimiter, pupils, problems
):
    roster = read((DOCS / "examples" / name).read_bytes())
    assert (roster.encoding, roster.delimiter) == (encoding, delimiter)
    assert (len(roster.rows), len(roster.problems)) == (pupils, problems)


def test_the_documented_info_day_example_reads_with_its_sessions():
    sessions = {"zorg-1": "Zorg en welzijn", "tech-2": "Techniek en installatie"}
    sessions |= {"ict-3": "ICT en media", "horeca-4": "Horeca en bakkerij"}
    roster = read((DOCS / "examples" / "voorlichtingsdag.csv").read_bytes(), sessions=sessions)
    assert roster.problems == ()
    assert all(len(r.choices) == 3 and r.backup for r in roster.rows)
