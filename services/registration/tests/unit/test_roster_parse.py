"""Reading a roster's rows of text: headers, years, dates, names, choices, duplicates, limits.

These tests hand parse_roster a table of text cells, as the file adapter would; the shapes of
files themselves (encodings, separators, XLSX) are in test_roster_files.py.
"""

from datetime import date

import pytest

from registration.domain.roster import (
    COLUMNS,
    RosterTable,
    RosterTooLarge,
    RosterUnreadable,
    column_for_header,
    parse_dutch_date,
    parse_roster,
    school_year_from_class,
    school_year_from_text,
)

TODAY = date(2025, 11, 1)
MAGISTER = [
    "Stamnummer",
    "Roepnaam",
    "Tussenvoegsel",
    "Achternaam",
    "Klas",
    "Geboortedatum",
    "E-mail",
]
SESSIONS = {
    "zorg-1": "Zorg en welzijn",
    "tech-2": "Techniek en installatie",
    "ict-3": "ICT en media",
    "horeca-4": "Horeca en bakkerij",
    "groen-5": "Dier en groen",
}


def table(*rows, first_line=1):
    return RosterTable(
        rows=[(line, list(cells)) for line, cells in enumerate(rows, first_line)], format="csv"
    )


def parse(*rows, **kwargs):
    kwargs.setdefault("today", TODAY)
    return parse_roster(table(*rows), **kwargs)


def only_problem(roster):
    assert len(roster.problems) == 1, roster.problems
    return roster.problems[0]


# --- headers -----------------------------------------------------------------------------------


def test_a_magister_export_gives_every_field():
    roster = parse(
        MAGISTER,
        ["204518", "Sanne", "de", "Vries", "3B", "14-03-2011", "sanne@leerling.farel.nl"],
        ["204519", "Daan", "", "Bakker", "4 vmbo-k", "02-11-2009", ""],
    )
    assert roster.problems == ()
    sanne, daan = roster.rows
    assert (sanne.line, sanne.student_number, sanne.first_name, sanne.last_name_prefix) == (
        2,
        "204518",
        "Sanne",
        "de",
    )
    assert (sanne.last_name, sanne.full_last_name, sanne.class_name, sanne.school_year) == (
        "Vries",
        "de Vries",
        "3B",
        3,
    )
    assert sanne.date_of_birth == date(2011, 3, 14)
    assert sanne.email == "sanne@leerling.farel.nl"
    assert (daan.last_name_prefix, daan.full_last_name, daan.school_year, daan.email) == (
        None,
        "Bakker",
        4,
        None,
    )


def test_a_somtoday_export_with_its_own_spellings():
    roster = parse(
        [
            "leerlingnummer",
            "roepnaam",
            "voorvoegsel",
            "achternaam",
            "stamgroep",
            "leerjaar",
            "geboortedatum",
            "e-mailadres",
            "e-mailadres ouder/verzorger",
        ],
        ["88123", "Fleur", "van der", "Berg", "K3a", "3", "1-7-2010", "", "ouder@example.nl"],
    )
    (row,) = roster.rows
    assert (row.student_number, row.first_name, row.full_last_name) == (
        "88123",
        "Fleur",
        "van der Berg",
    )
    assert (row.class_name, row.school_year, row.date_of_birth) == ("K3a", 3, date(2010, 7, 1))
    assert (row.email, row.parent_email) == (None, "ouder@example.nl")


def test_our_own_english_headers():
    header = [
        "student_number",
        "first_name",
        "last_name_prefix",
        "last_name",
        "class",
        "school_year",
        "date_of_birth",
        "email",
        "parent_email",
        "choice_1",
        "choice_2",
        "choice_3",
        "backup",
    ]
    cells = ["7", "Mo", "el", "Amrani", "4TL", "", "2009-12-31", "", "", "zorg-1"]
    cells += ["tech-2", "ict-3", "groen-5"]
    (row,) = parse(header, cells, sessions=SESSIONS).rows
    assert (row.first_name, row.full_last_name, row.school_year) == ("Mo", "el Amrani", 4)
    assert row.choices == ("zorg-1", "tech-2", "ict-3")
    assert row.backup == "groen-5"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("STAMNUMMER", "student_number"),
        ("Stamnr.", "student_number"),
        ("Leerling nummer", "student_number"),
        ("E-Mail", "email"),
        ("e mail", "email"),
        ("Émail", "email"),
        ("E-mail adres", "email"),
        ("Geb. datum", "date_of_birth"),
        ("geboorte datum", "date_of_birth"),
        ("Tussenvoegsel(s)", "last_name_prefix"),
        ("Voornaam", "first_name"),
        ("  Achternaam  ", "last_name"),
        ("KLAS", "class"),
        ("Klas / groep", "class"),
        ("Leerjaar", "school_year"),
        ("Keuze 1", "choice_1"),
        ("1e keuze", "choice_1"),
        ("Tweede keuze", "choice_2"),
        ("keuze_3", "choice_3"),
        ("Reserve", "backup"),
        ("E-mail ouder/verzorger", "parent_email"),
        ("Mobiel", None),
        ("Schooljaar", None),  # "2025-2026" in Dutch, not the grade
        ("Naam", None),
    ],
)
def test_headers_match_without_case_accents_spaces_or_punctuation(header, field):
    assert column_for_header(header) == field


def test_every_spelling_names_its_own_column():
    for column in COLUMNS:
        for spelling in column.spellings:
            assert column_for_header(spelling) == column.field, spelling
            assert column_for_header(spelling.upper()) == column.field, spelling


def test_unknown_columns_are_reported_and_their_data_is_not_kept():
    roster = parse(
        ["Roepnaam", "Achternaam", "Klas", "Geboortedatum", "Mobiel", "Adres", ""],
        ["Sanne", "Vries", "3B", "14-03-2011", "0612345678", "Kerkstraat 1", ""],
    )
    assert roster.ignored_columns == ("Mobiel", "Adres")
    assert roster.warnings == (
        "Deze kolommen worden niet gebruikt en niet bewaard: Mobiel, Adres.",
    )
    assert "0612345678" not in repr(roster.rows)
    assert "Kerkstraat" not in repr(roster.rows)


def test_two_columns_for_one_field_use_the_preferred_spelling():
    roster = parse(
        ["Voornamen", "Roepnaam", "Achternaam", "Klas", "Geboortedatum"],
        ["Johanna Maria", "Anna", "Jansen", "3B", "14-03-2011"],
    )
    assert roster.rows[0].first_name == "Anna"
    assert roster.ignored_columns == ("Voornamen",)
    assert roster.warnings == ("Kolom 'Voornamen' is niet gebruikt: 'Roepnaam' staat er ook in.",)


def test_missing_columns_are_one_problem_on_the_header_line_naming_them_all():
    roster = parse(
        ["Leerlingnummer", "Roepnaam", "Achternaam", "Mobiel"],
        ["1", "Sanne", "Vries", "06"],
    )
    problem = only_problem(roster)
    assert (problem.row, problem.field) == (1, "columns")
    assert "Geboortedatum" in problem.message
    assert "Klas (of Leerjaar)" in problem.message
    assert "Gevonden kolommen: Leerlingnummer, Roepnaam, Achternaam, Mobiel" in problem.message
    assert roster.rows == ()


def test_a_whole_name_column_gets_a_hint_to_split_it():
    roster = parse(["Naam", "Klas", "Geboortedatum"], ["Sanne de Vries", "3B", "14-03-2011"])
    message = only_problem(roster).message
    assert "Roepnaam, Achternaam" in message
    assert "Kolom 'Naam' bevat de hele naam" in message


def test_an_info_day_needs_the_choice_columns():
    roster = parse(MAGISTER, ["1", "Sanne", "", "Vries", "3B", "14-03-2011", ""], sessions=SESSIONS)
    message = only_problem(roster).message
    assert "Keuze 1, Keuze 2, Keuze 3, Reserve" in message


def test_title_lines_above_the_header_are_skipped_and_lines_keep_their_numbers():
    roster = parse(
        ["Klassenlijst 3B", "", ""],
        ["Farel College, schooljaar 2025-2026"],
        MAGISTER,
        ["1", "Sanne", "", "Vries", "3B", "14-03-2011", ""],
        ["2", "Daan", "", "Bakker", "3B", "31-02-2011", ""],
    )
    assert roster.header_line == 3
    assert roster.rows[0].line == 4
    assert only_problem(roster).row == 5
    assert roster.warnings[:2] == (
        "Regel 1 staat boven de kolomkoppen en is overgeslagen.",
        "Regel 2 staat boven de kolomkoppen en is overgeslagen.",
    )


def test_line_numbers_are_the_files_even_with_empty_lines_between():
    rows = [
        (1, MAGISTER),
        (2, ["1", "Sanne", "", "Vries", "3B", "14-03-2011", ""]),
        (3, ["", "", "", "", "", "", ""]),
        (7, ["2", "Daan", "", "Bakker", "3B", "bla", ""]),
    ]
    roster = parse_roster(RosterTable(rows=rows, format="csv"), today=TODAY)
    assert only_problem(roster).row == 7
    assert roster.data_lines == 2


def test_no_header_row_is_unreadable_with_advice():
    with pytest.raises(RosterUnreadable) as caught:
        parse(["a", "b", "c"], ["1", "2", "3"])
    assert not caught.value.unsupported_format
    assert "Geen kolomkoppen gevonden" in caught.value.message
    assert "Stamnummer" in caught.value.message


def test_a_header_without_pupils_is_unreadable():
    with pytest.raises(RosterUnreadable, match="geen leerlingen"):
        parse(MAGISTER, ["", "", ""])


def test_an_empty_table_is_unreadable():
    with pytest.raises(RosterUnreadable, match="leeg"):
        parse(["", " "])


# --- the school year ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("class_name", "year"),
    [
        ("3B", 3),
        ("3b", 3),
        ("4 vmbo-k", 4),
        ("3KB", 3),
        ("4GT-a", 4),
        ("m3b", 3),
        ("H4a", 4),
        ("3-TL", 3),
        ("B4", 4),
        ("KB3", 3),
        ("bb4a", 4),
        ("TL4-2", 4),
        ("3.04", 3),
        ("V6", 6),
        ("mavo 4", 4),
        ("Klas 2", 2),
        ("1e klas", 1),
        ("Brugklas", 1),
        ("brugklas B", 1),
        ("M3B/H3B", 3),
        ("Pro 2", 2),
    ],
)
def test_the_school_year_is_read_from_dutch_class_codes(class_name, year):
    assert school_year_from_class(class_name) == year


@pytest.mark.parametrize(
    "class_name",
    ["3/4A", "3B+4B", "3 en 4", "examenklas", "LWT", "301", "7A", "groep 8", "2025-3B", "0A"],
)
def test_class_codes_that_name_two_years_or_none_are_not_guessed(class_name):
    assert school_year_from_class(class_name) is None


@pytest.mark.parametrize(
    ("text", "year"),
    [("3", 3), ("3e", 3), ("leerjaar 4", 4), ("3 vmbo", 3), ("5.0", 5), ("7", None), ("0", None)],
)
def test_a_year_column_is_read_leniently_within_1_to_6(text, year):
    assert school_year_from_text(text) == year


def test_an_unreadable_class_asks_for_a_year_column():
    roster = parse(MAGISTER, ["1", "Sanne", "", "Vries", "3/4A", "14-03-2011", ""])
    problem = only_problem(roster)
    assert (problem.row, problem.field) == (2, "class")
    assert problem.message == (
        "Het leerjaar is niet af te lezen uit klas '3/4A'; voeg een kolom Leerjaar toe "
        "(1 tot en met 6)."
    )


def test_a_year_column_wins_over_the_class_and_fills_in_where_the_class_is_unclear():
    header = ["Roepnaam", "Achternaam", "Klas", "Leerjaar", "Geboortedatum"]
    roster = parse(
        header,
        ["Sanne", "Vries", "3/4A", "4", "14-03-2011"],
        ["Daan", "Bakker", "3B", "", "14-03-2011"],
        ["Noor", "Smit", "3B", "2025-2026", "14-03-2011"],
    )
    assert [r.school_year for r in roster.rows] == [4, 3]
    problem = only_problem(roster)
    assert (problem.row, problem.field) == (4, "school_year")
    assert "Leerjaar '2025-2026' is geen leerjaar" in problem.message


def test_a_missing_class_without_a_year_is_a_problem():
    roster = parse(MAGISTER, ["1", "Sanne", "", "Vries", " ", "14-03-2011", ""])
    problem = only_problem(roster)
    assert (problem.field, problem.message) == (
        "class",
        "Klas ontbreekt; vul de klas (bijvoorbeeld 3B) of het leerjaar in.",
    )


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("14-03-2009", date(2009, 3, 14)),
        ("14/03/2009", date(2009, 3, 14)),
        ("14.03.2009", date(2009, 3, 14)),
        ("14-3-2009", date(2009, 3, 14)),
        ("4-3-2009", date(2009, 3, 4)),
        ("2009-03-14", date(2009, 3, 14)),
        ("2009/3/14", date(2009, 3, 14)),
        ("2009-03-14 00:00:00", date(2009, 3, 14)),
        ("14-03-2009 00:00", date(2009, 3, 14)),
        ("14 maart 2009", date(2009, 3, 14)),
        ("14 mrt. 2009", date(2009, 3, 14)),
        ("14-okt-2009", date(2009, 10, 14)),
        ("14-03-09", date(2009, 3, 14)),
        ("14-03-98", date(1998, 3, 14)),
        ("14032009", date(2009, 3, 14)),
        ("20090314", date(2009, 3, 14)),
        ("39886", date(2009, 3, 14)),  # Excel's serial number
        ("39886.0", date(2009, 3, 14)),
    ],
)
def test_dates_as_dutch_schools_write_them(text, day):
    assert parse_dutch_date(text, TODAY) == day


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("31-02-2009", "Geboortedatum '31-02-2009' bestaat niet; gebruik dd-mm-jjjj"),
        ("03-14-2009", "Geboortedatum '03-14-2009' bestaat niet (er is geen maand 14)"),
        ("2009-02-30", "Geboortedatum '2009-02-30' bestaat niet"),
        ("maart 2009", "Geboortedatum 'maart 2009' is geen datum; gebruik dd-mm-jjjj"),
        ("2009", "Geboortedatum '2009' is geen datum"),
        ("14-03-2031", "Geboortedatum '14-03-2031' ligt in de toekomst"),
        ("14-03-1850", "Geboortedatum '14-03-1850' ligt voor 1900"),
        ("", "Geboortedatum ontbreekt; vul de geboortedatum in (gebruik dd-mm-jjjj"),
    ],
)
def test_a_bad_birth_date_says_what_to_write(text, message):
    roster = parse(MAGISTER, ["1", "Sanne", "", "Vries", "3B", text, ""])
    problem = only_problem(roster)
    assert problem.field == "date_of_birth"
    assert problem.message.startswith(message)


def test_messages_use_the_schools_own_header():
    roster = parse(
        ["roepnaam", "achternaam", "stamgroep", "geb. datum"],
        ["Sanne", "Vries", "3B", "31-02-2009"],
    )
    assert only_problem(roster).message.startswith("Geb. datum '31-02-2009' bestaat niet")


# --- names, numbers, e-mail --------------------------------------------------------------------


def test_whitespace_only_names_are_missing_names():
    roster = parse(MAGISTER, ["1", "   ", "", "\u00a0", "3B", "14-03-2011", ""])
    assert [(p.field, p.message) for p in roster.problems] == [
        ("first_name", "Roepnaam ontbreekt; vul de naam in of verwijder de regel."),
        ("last_name", "Achternaam ontbreekt; vul de naam in of verwijder de regel."),
    ]


def test_names_are_trimmed_and_inner_space_collapsed_but_otherwise_kept():
    (row,) = parse(
        MAGISTER, ["  1 ", " Anne-Fleur ", " van  der ", " 't Hart\t", " 3B ", "14-03-2011", ""]
    ).rows
    assert (row.student_number, row.first_name, row.last_name_prefix, row.last_name) == (
        "1",
        "Anne-Fleur",
        "van der",
        "'t Hart",
    )


def test_overlong_names_are_refused():
    roster = parse(MAGISTER, ["1", "A" * 101, "", "Vries", "3B", "14-03-2011", ""])
    assert only_problem(roster).message == "Roepnaam is langer dan 100 tekens; kort hem in."


def test_student_numbers_lose_leading_zeros_and_excel_text_wrapping():
    roster = parse(
        MAGISTER,
        ["012345", "Sanne", "", "Vries", "3B", "14-03-2011", ""],
        ['="000777"', "Daan", "", "Bakker", "3B", "14-03-2011", ""],
        ["A-12", "Noor", "", "Smit", "3B", "14-03-2011", ""],
    )
    assert [r.student_number for r in roster.rows] == ["12345", "777", "A-12"]


def test_email_is_optional_but_checked_when_given():
    roster = parse(
        MAGISTER,
        ["1", "Sanne", "", "Vries", "3B", "14-03-2011", ""],
        ["2", "Daan", "", "Bakker", "3B", "14-03-2011", "daan@"],
        ["3", "Noor", "", "Smit", "3B", "14-03-2011", "noor@a.nl; mam@b.nl"],
    )
    assert [r.email for r in roster.rows] == [None]
    assert [(p.row, p.field, p.message) for p in roster.problems] == [
        (3, "email", "E-mail 'daan@' is geen geldig e-mailadres; verbeter het of laat het leeg."),
        (
            4,
            "email",
            "E-mail 'noor@a.nl; mam@b.nl' bevat meer dan één e-mailadres; laat er één staan.",
        ),
    ]


def test_rows_with_problems_are_left_out_and_the_others_kept():
    roster = parse(
        MAGISTER,
        ["1", "Sanne", "", "Vries", "3B", "14-03-2011", ""],
        ["2", "", "", "Bakker", "3B", "30-02-2011", ""],
        ["3", "Noor", "", "Smit", "3B", "14-03-2011", ""],
    )
    assert [r.line for r in roster.rows] == [2, 4]
    assert [(p.row, p.field) for p in roster.problems] == [(3, "first_name"), (3, "date_of_birth")]
    assert roster.problem_lines == {3}
    assert roster.data_lines == 3
    assert not roster.ok


# --- info-day choices --------------------------------------------------------------------------

CHOICE_HEADER = ["Roepnaam", "Achternaam", "Klas", "Geboortedatum"]
CHOICE_HEADER += ["Keuze 1", "Keuze 2", "Keuze 3", "Reserve"]


def test_choices_by_id_or_exact_title_in_any_case():
    (row,) = parse(
        CHOICE_HEADER,
        [
            *("Sanne", "Vries", "3B", "14-03-2011"),
            *("ZORG-1", "techniek  en installatie", "ict-3", "groen-5 - Dier en groen"),
        ],
        sessions=SESSIONS,
    ).rows
    assert row.choices == ("zorg-1", "tech-2", "ict-3")
    assert row.backup == "groen-5"


def test_an_unknown_or_ambiguous_choice_is_a_problem_on_its_column():
    sessions = dict(SESSIONS, extra="ICT en media")
    roster = parse(
        CHOICE_HEADER,
        ["Sanne", "Vries", "3B", "14-03-2011", "zorg-1", "Bakkerij", "ICT en media", "groen-5"],
        sessions=sessions,
    )
    assert [(p.field, p.message) for p in roster.problems] == [
        (
            "choice_2",
            "Keuze 2 'Bakkerij' is geen voorlichting van deze dag; gebruik de code of de "
            "precieze titel (zie het sjabloon).",
        ),
        (
            "choice_3",
            "Keuze 3 'ICT en media' is de titel van meer voorlichtingen; gebruik de code "
            "(ict-3, extra).",
        ),
    ]


def test_empty_choices_are_left_for_the_sign_up_rules_to_count():
    (row,) = parse(
        CHOICE_HEADER,
        ["Sanne", "Vries", "3B", "14-03-2011", "zorg-1", "", "ict-3", ""],
        sessions=SESSIONS,
    ).rows
    assert row.choices == ("zorg-1", "ict-3")
    assert row.backup is None


def test_choice_columns_of_another_activity_are_ignored_with_a_warning():
    roster = parse(CHOICE_HEADER, ["Sanne", "Vries", "3B", "14-03-2011", "x", "y", "z", "w"])
    assert roster.problems == ()
    assert roster.rows[0].choices == ()
    assert roster.ignored_columns == ("Keuze 1", "Keuze 2", "Keuze 3", "Reserve")


# --- duplicates, the example line, limits ------------------------------------------------------


def test_the_same_student_number_twice_is_a_problem_on_the_later_line():
    roster = parse(
        MAGISTER,
        ["012345", "Sanne", "", "Vries", "3B", "14-03-2011", ""],
        ["2", "Daan", "", "Bakker", "3B", "14-03-2011", ""],
        ["12345", "Sanne", "de", "Vries", "3B", "14-03-2011", ""],
    )
    assert [r.line for r in roster.rows] == [2, 3]
    problem = only_problem(roster)
    assert (problem.row, problem.field) == (4, "row")
    assert problem.message == (
        "Deze leerling staat al op regel 2 (zelfde stamnummer); verwijder een van beide regels."
    )


def test_the_same_name_and_birth_date_twice_is_a_problem_on_the_later_line():
    roster = parse(
        ["Roepnaam", "Tussenvoegsel", "Achternaam", "Klas", "Geboortedatum"],
        ["Zoë", "van", "Dijk", "3B", "14-03-2011"],
        ["Zoe", "", "VAN DIJK", "3C", "2011-03-14"],
        ["Zoë", "van", "Dijk", "3B", "15-03-2011"],  # another pupil: another birthday
    )
    assert [r.line for r in roster.rows] == [2, 4]
    problem = only_problem(roster)
    assert problem.row == 3
    assert "(zelfde naam en geboortedatum)" in problem.message


def test_the_templates_example_line_is_skipped():
    roster = parse(
        MAGISTER,
        ["123456", "Sanne", "de", "Voorbeeld", "3B", "14-03-2011", ""],
        ["1", "Daan", "", "Bakker", "3B", "14-03-2011", ""],
    )
    assert [r.first_name for r in roster.rows] == ["Daan"]
    assert "Regel 2 is de voorbeeldregel van het sjabloon en is overgeslagen." in roster.warnings
    assert roster.data_lines == 1


def pupils(n):
    return [[str(i), "Kim", "", f"Jansen{i}", "3B", "14-03-2011", ""] for i in range(n)]


def test_up_to_the_row_limit_is_fine_and_one_more_is_too_large():
    assert len(parse(MAGISTER, *pupils(50), max_rows=50).rows) == 50
    with pytest.raises(RosterTooLarge) as caught:
        parse(MAGISTER, *pupils(51), max_rows=50)
    assert caught.value.limit == "rows"
    assert caught.value.message == (
        "Het bestand heeft meer dan 50 leerlingen; splits het, bijvoorbeeld per klas."
    )
