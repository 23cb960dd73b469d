"""`lob report ...` in the forms the region's script calls, on the 2024-2025 season as reporting
holds it after the season's events (sent through reporting's own use cases, no servers)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from click.testing import CliRunner

from lob_cli import season_2024_2025 as season
from lob_cli.main import lob
from lob_cli.services import SERVICES, open_database
from lob_common.contracts import new_event
from reporting import handlers

from .test_season_2024_2025 import REPORT_3A

USE_CASES = {
    "school_registered": handlers.record_school,
    "activity_published": handlers.record_activity,
    "signed_up": lambda db, event: handlers.record_sign_ups(db, [event]),
    "attendance_recorded": lambda db, event: handlers.record_attendances(db, [event]),
}


def deliver(db, event_type, payload, at):
    event = replace(
        new_event(event_type, payload), handler=f"reporting.handle_{event_type}", occurred_at=at
    )
    USE_CASES[event_type](db, event)


def replay_season(db):
    """The events registration emits for the season, in order, into reporting."""
    at = datetime(2024, 9, 1, tzinfo=UTC)
    for payload in season.school_events():
        deliver(db, "school_registered", payload, at)
    for payload in season.activity_events():
        deliver(db, "activity_published", payload, at)
    starts = {a.id: a.starts_at.isoformat() for a in season.ACTIVITIES}
    kinds = {a.id: a.kind for a in season.ACTIVITIES}
    for n, p in enumerate(season.participants()):
        at += timedelta(seconds=1)
        deliver(
            db,
            "signed_up",
            {
                "registration_id": f"r{n}",
                "activity_id": p.activity_id,
                "activity_kind": kinds[p.activity_id],
                "activity_starts_at": starts[p.activity_id],
                "person_id": f"p{n}",
                "role": p.role,
                "school_id": p.school_id,
                "age_band": "16-17" if p.role == "pupil" else None,
                "phase": "vo" if p.role == "pupil" else None,
                "municipality": p.municipality,
                "signed_up_at": at.isoformat(),
            },
            at,
        )
        if p.attended is not None:
            deliver(
                db,
                "attendance_recorded",
                {
                    "registration_id": f"r{n}",
                    "activity_id": p.activity_id,
                    "person_id": f"p{n}",
                    "attended": p.attended,
                    "recorded_at": starts[p.activity_id],
                },
                at,
            )


@pytest.fixture(scope="module")
def reporting_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lob")
    patch = pytest.MonkeyPatch()
    for name in SERVICES:
        patch.setenv(f"{name.upper()}_DATABASE_URL", f"sqlite:///{folder}/{name}.db")
    db = open_database("reporting")
    replay_season(db)
    yield db
    db.engine.dispose()
    patch.undo()


def run(*args):
    result = CliRunner().invoke(lob, ["report", *args])
    assert result.exit_code == 0, result.output
    return result


def read_csv(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))


def test_tabel_3a_to_a_csv_file_is_the_reports_table(reporting_db, tmp_path):
    out = tmp_path / "tabel-3a.csv"

    result = run("tabel-3a", "--school-year", "2024-2025", "--format", "csv", "-o", str(out))

    lines = read_csv(out)
    assert lines[0] == [
        "School",
        "Voorlichtingsdag MBO-beroepen (14-11-2024)",
        "Loopbaanevenement (05-06-2025)",
        "Totaal",
    ]
    assert lines[1:-1] == [[name, str(a), str(b), str(t)] for name, a, b, t in REPORT_3A]
    assert lines[-1] == ["TOTAAL", "1249", "151", "1400"]
    assert "total 1400, 0 cell(s) suppressed" in result.stderr


def test_tabel_3b_to_csv_hides_small_counts_and_exact_gives_the_reports_totals(
    reporting_db, tmp_path
):
    published, exact = tmp_path / "3b.csv", tmp_path / "3b-exact.csv"

    run("tabel-3b", "--school-year", "2024-2025", "--format", "csv", "-o", str(published))
    run("tabel-3b", "--school-year", "2024-2025", "--format", "csv", "-o", str(exact), "--exact")

    exact_lines = read_csv(exact)
    assert exact_lines[-1] == ["TOTAAL", "22", "14", "38", "55", "24", "40", "22", "17", "232"]
    assert exact_lines[-2][0] == "Overige instellingen"
    shown = [cell for line in read_csv(published)[1:] for cell in line[1:]]
    assert "<5" in shown and "x" in shown
    assert not {"1", "2", "3", "4"} & set(shown)


def test_without_o_the_table_goes_to_stdout(reporting_db):
    result = run("tabel-3a", "--school-year", "2024-2025", "--format", "json")

    table = json.loads(result.stdout)
    assert table["table"] == "tabel-3a"
    assert table["totals"]["total"] == 1400


def test_programme_12_27_for_a_calendar_year_to_xlsx(reporting_db, tmp_path):
    at = datetime(2026, 1, 5, tzinfo=UTC)
    deliver(
        reporting_db,
        "activity_published",
        {
            **season.activity_events()[0],
            "activity_id": "orientatiedag-2026",
            "kind": "orientation_day",
            "title": "MBO-oriëntatiedag",
            "starts_at": "2026-02-12T14:00:00+01:00",
            "ends_at": "2026-02-12T16:00:00+01:00",
        },
        at,
    )
    for n in range(12):
        deliver(
            reporting_db,
            "signed_up",
            {
                "registration_id": f"y{n}",
                "activity_id": "orientatiedag-2026",
                "activity_kind": "orientation_day",
                "activity_starts_at": "2026-02-12T14:00:00+01:00",
                "person_id": f"y{n}",
                "role": "pupil" if n < 9 else "young_adult",
                "school_id": "farel-college" if n < 9 else None,
                "age_band": "12-15" if n < 9 else "18-22",
                "phase": "vo" if n < 9 else "working",
                "municipality": "Amersfoort",
                "signed_up_at": at.isoformat(),
            },
            at,
        )
    out = tmp_path / "programma.xlsx"

    run("programme-12-27", "--calendar-year", "2026", "--format", "xlsx", "-o", str(out))

    sheet = openpyxl.load_workbook(out).active
    assert sheet["A1"].value.startswith("Programma 12-27: deelnemers kalenderjaar 2026")
    values = [row for row in sheet.iter_rows(values_only=True) if row[0]]
    assert ("Indeling", "MBO-oriëntatiedag", "Totaal") in values
    assert ("12-15", 9, 9) in values
    assert ("18-22", "<5", "<5") in values  # the three young adults
    assert any(str(row[0]).startswith("<5: minder dan 5") for row in values)
    exact = run("programme-12-27", "--calendar-year", "2026", "--format", "json", "--exact")
    assert json.loads(exact.stdout)["totals"]["total"] == 12


def test_no_shows_and_year_over_year(reporting_db, tmp_path):
    no_shows = run("no-shows", "--school-year", "2024-2025", "--format", "csv")
    years = run(
        "year-over-year",
        "--table",
        "tabel-3a",
        "--school-year",
        "2023-2024",
        "--school-year",
        "2024-2025",
        "--format",
        "csv",
        "--exact",
    )

    lines = list(csv.reader(io.StringIO(no_shows.stdout), delimiter=";"))
    assert lines[0] == [
        "Activiteit",
        "School",
        "Aanwezig",
        "Afwezig",
        "Niet geregistreerd",
        "Aangemeld",
    ]
    by_school = {line[0]: line[1:] for line in csv.reader(io.StringIO(years.stdout), delimiter=";")}
    assert by_school["Farel College"] == ["0", "97", "97"]
    assert by_school["TOTAAL"] == ["0", "1400", "1400"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tabel-3a", "--school-year", "2024/2025"], "--school-year: Schooljaar '2024/2025'"),
        (["tabel-3a"], "Geef het schooljaar"),
        (["tabel-3a", "--school-year", "2026-2027"], "programme-12-27"),
        (["programme-12-27", "--calendar-year", "2025"], "begint op 1 januari 2026"),
        (["programme-12-27", "--calendar-year", "2026", "--age-bands", "12-16"], "past niet"),
    ],
)
def test_a_wrong_period_is_refused_in_plain_words(reporting_db, args, message):
    result = CliRunner().invoke(lob, ["report", *args])

    assert result.exit_code == 2
    assert message in result.output
