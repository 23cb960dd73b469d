"""Properties of the roster reader over generated files (hypothesis, bounded examples).

- A roster written in any of the shapes schools send (encoding, BOM, separator, line ending,
  quoting, header spelling and case, CSV or XLSX) reads back as the same pupils.
- Whatever bytes arrive, the answer is a roster or a RosterError with a message: never a crash.
- Every birth date, written in each accepted form, reads back as itself.
- A class code of a level, a year and a group reads as that year.
"""

import codecs
import csv
import io
import string
from datetime import date, datetime

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registration.adapters.roster_files import read_roster
from registration.domain.roster import (
    COLUMN_BY_FIELD,
    RosterError,
    fold_name,
    parse_dutch_date,
    school_year_from_class,
)

TODAY = date(2025, 11, 1)
FIELDS = ("student_number", "first_name", "last_name_prefix", "last_name", "class")
FIELDS += ("date_of_birth", "email")
LATIN_LETTERS = string.ascii_letters + "éëèêïöüçñáóÉÖÜ"  # all in Windows-1252
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

word = st.text(LATIN_LETTERS + "'-", min_size=1, max_size=12).filter(lambda w: w[0] not in "'-")
name = st.lists(word, min_size=1, max_size=3).map(" ".join)
odd_name = st.tuples(name, st.sampled_from(["", ",", ";", '"', "\t"]), name).map(
    lambda t: f"{t[0]}{t[1]}{t[2]}" if t[1] != "\t" else t[0]
)
prefix = st.sampled_from(["", "de", "van", "van der", "van 't", "ter", "el", "da"])
birth = st.dates(date(2005, 1, 1), date(2014, 12, 31))
klass = st.tuples(
    st.sampled_from(["", "m", "H", "KB", "bb", "T", "vmbo-"]),
    st.integers(1, 6),
    st.sampled_from(["", "a", "B", "-2", "gt", " vmbo-k"]),
).map(lambda t: (f"{t[0]}{t[1]}{t[2]}", t[1]))
email = st.one_of(
    st.just(""), st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}@[a-z]{2,8}\.nl", fullmatch=True)
)
pupil = st.fixed_dictionaries(
    {
        "student_number": st.integers(1, 10**7).map(str),
        "first_name": odd_name,
        "last_name_prefix": prefix,
        "last_name": odd_name,
        "class": klass,
        "date_of_birth": birth,
        "email": email,
    }
)
pupils = st.lists(
    pupil,
    min_size=1,
    max_size=25,
    unique_by=(
        lambda p: p["student_number"],
        lambda p: (
            fold_name(f"{p['first_name']} {p['last_name_prefix']} {p['last_name']}"),
            p["date_of_birth"],
        ),
    ),
)
spelling = st.sampled_from([0, 1, -1])
case = st.sampled_from([str, str.upper, str.lower, str.title])


def cell(p, field):
    value = p[field]
    if field == "class":
        return value[0]
    if field == "date_of_birth":
        return value.strftime("%d-%m-%Y")
    return value


@st.composite
def csv_files(draw):
    rows = draw(pupils)
    picks = [draw(spelling) for _ in FIELDS]
    shape = draw(case)
    header = [shape(COLUMN_BY_FIELD[f].spellings[i]) for f, i in zip(FIELDS, picks, strict=True)]
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow(header)
    for p in rows:
        writer.writerow([cell(p, f) for f in FIELDS])
    return rows, out.getvalue().encode(encoding)


@st.composite
def xlsx_files(draw):
    rows = draw(pupils)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append([COLUMN_BY_FIELD[f].spellings[draw(spelling)] for f in FIELDS])
    as_date_cell = draw(st.booleans())
    for p in rows:
        values = [cell(p, f) for f in FIELDS]
        values[0] = int(p["student_number"])  # numbers stay numbers in a sheet
        if as_date_cell:
            values[5] = datetime.combine(p["date_of_birth"], datetime.min.time())
        sheet.append(values)
    out = io.BytesIO()
    workbook.save(out)
    return rows, out.getvalue()


def expected(p):
    return (
        p["student_number"],
        " ".join(p["first_name"].split()),
        p["last_name_prefix"] or None,
        " ".join(p["last_name"].split()),
        p["class"][0],
        p["class"][1],
        p["date_of_birth"],
        p["email"] or None,
    )


def got(row):
    return (
        row.student_number,
        row.first_name,
        row.last_name_prefix,
        row.last_name,
        row.class_name,
        row.school_year,
        row.date_of_birth,
        row.email,
    )


@SETTINGS
@given(csv_files())
def test_any_csv_shape_reads_back_as_the_same_pupils(file):
    rows, data = file
    roster = read_roster(data, today=TODAY)
    assert roster.problems == ()
    assert [got(r) for r in roster.rows] == [expected(p) for p in rows]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xlsx_files())
def test_any_xlsx_reads_back_as_the_same_pupils(file):
    rows, data = file
    roster = read_roster(data, today=TODAY)
    assert roster.problems == ()
    assert [got(r) for r in roster.rows] == [expected(p) for p in rows]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(str.encode),
        st.binary(max_size=500).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=500).map(lambda b: codecs.BOM_UTF8 + b),
        st.lists(st.text(';,\t"\r\n aé1-3B', max_size=20), max_size=20).map(
            lambda cells: ("Roepnaam;Achternaam;Klas;Geboortedatum\n" + ";".join(cells)).encode()
        ),
    )
)
def test_any_bytes_give_a_roster_or_a_clear_refusal(data):
    try:
        roster = read_roster(data, today=TODAY)
    except RosterError as refused:
        assert refused.message
        assert refused.message[0].isupper()
    else:
        for problem in roster.problems:
            assert problem.message
            assert problem.row >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.dates(date(1930, 1, 1), TODAY),
    st.sampled_from(
        [
            "%d-%m-%Y",
            "%d/%m/%Y",
            "%d.%m.%Y",
            "%Y-%m-%d",
            "%Y/%m/%d",
            "%d%m%Y",
            "%Y%m%d",
            "%Y-%m-%d 00:00:00",
            "unpadded",
            "excel",
        ]
    ),
)
def test_every_accepted_date_form_reads_back_as_itself(day, form):
    if form == "unpadded":
        text = f"{day.day}-{day.month}-{day.year}"
    elif form == "excel":
        text = str((day - date(1899, 12, 30)).days)
        if len(text) != 5:
            return  # serials are read for 1927-2173 only
    else:
        text = day.strftime(form)
    assert parse_dutch_date(text, TODAY) == day


@settings(max_examples=200, deadline=None)
@given(
    st.text("abcdefghkmtvBGHKMTV", max_size=3),
    st.sampled_from(["", " ", "-", "."]),
    st.integers(1, 6),
    st.sampled_from(["", "a", "B", "-2", "-a", " vmbo-k", "gt", ".04", "TL"]),
)
def test_a_level_a_year_and_a_group_read_as_that_year(level, separator, year, group):
    assert school_year_from_class(f"{level}{separator}{year}{group}") == year
