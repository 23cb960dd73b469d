"""`lob report ...`: the region's tables from reporting's facts, and rebuilding those facts.

The forms a region's script calls:
    lob report tabel-3a --school-year 2024-2025 --format csv -o FILE
    lob report tabel-3b --school-year 2024-2025 --format csv -o FILE
    lob report programme-12-27 --calendar-year 2026 --format xlsx -o FILE
Without -o the table goes to stdout. Published figures hide small counts; --exact shows them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lob_common.config import service_config

SCHOOL_YEAR = click.option(
    "--school-year",
    "school_years",
    multiple=True,
    metavar="YYYY-YYYY",
    help="School year (1 Aug - 31 Jul), e.g. 2024-2025; year-over-year takes several.",
)
CALENDAR_YEAR = click.option("--calendar-year", type=int, help="Calendar year, e.g. 2026.")
AGE_BANDS = click.option(
    "--age-bands",
    help="Age bands, e.g. 12-17,18-27: whole bands of 12-15, 16-17, 18-22, 23-27 "
    "(default: REPORT_AGE_BANDS).",
)
OUTPUT_OPTIONS = (
    click.option(
        "--format",
        "fmt",
        type=click.Choice(["json", "csv", "xlsx"]),
        default="csv",
        show_default=True,
    ),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write to this file (default: stdout).",
    ),
    click.option(
        "--exact", is_flag=True, help="Exact figures, nothing suppressed (not to publish)."
    ),
    click.option(
        "--threshold",
        type=click.IntRange(1, 100),
        help="Suppress counts below this (default: REPORT_SUPPRESSION_THRESHOLD, 5).",
    ),
    click.option("--school-id", help="Only this school's figures."),
)


def table_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OUTPUT_OPTIONS):
        command = option(command)
    return command


@click.group()
def report() -> None:
    """The region's tables (Tabel 3a/3b, the 12-27 programme, no-shows, year over year)."""


@report.command("tabel-3a")
@SCHOOL_YEAR
@table_options
def tabel_3a(**options: Any) -> None:
    """Pupils per school and pupil activity (sign-ups), for a school year."""
    _produce("tabel-3a", **options)


@report.command("tabel-3b")
@SCHOOL_YEAR
@table_options
def tabel_3b(**options: Any) -> None:
    """Professionals who attended, per school or institution and activity, for a school year."""
    _produce("tabel-3b", **options)


@report.command("programme-12-27")
@CALENDAR_YEAR
@SCHOOL_YEAR
@AGE_BANDS
@table_options
def programme_12_27(**options: Any) -> None:
    """Young people by age band, phase and municipality per activity kind (from 2026)."""
    _produce("programme-12-27", **options)


@report.command("no-shows")
@SCHOOL_YEAR
@CALENDAR_YEAR
@table_options
def no_shows(**options: Any) -> None:
    """Signed up against attended, per activity and school."""
    _produce("no-shows", **options)


@report.command("year-over-year")
@SCHOOL_YEAR
@table_options
@click.option(
    "--table",
    "base",
    type=click.Choice(["tabel-3a", "tabel-3b"]),
    default="tabel-3a",
    show_default=True,
)
def year_over_year(**options: Any) -> None:
    """Each school's total of Tabel 3a or 3b for several school years side by side."""
    _produce("year-over-year", **options)


def _produce(
    table: str,
    *,
    fmt: str,
    output: Path | None,
    exact: bool,
    threshold: int | None,
    school_id: str | None,
    school_years: tuple[str, ...] = (),
    calendar_year: int | None = None,
    age_bands: str | None = None,
    base: str | None = None,
) -> None:
    from lob_cli.services import open_database
    from reporting import handlers
    from reporting.adapters.export import render
    from reporting.domain.periods import PeriodError

    config = service_config("reporting")
    if threshold is None:
        threshold = int(config.get("REPORT_SUPPRESSION_THRESHOLD", 5))
    try:
        request = handlers.ReportRequest.parse(
            table,
            school_years,
            calendar_year,
            base,
            age_bands or config.get("REPORT_AGE_BANDS"),
            school_id,
            None if exact else threshold,
        )
    except PeriodError as exc:
        raise click.UsageError(f"--{exc.field.replace('_', '-')}: {exc.message}") from None
    if fmt == "xlsx" and output is None and sys.stdout.isatty():
        raise click.UsageError("an xlsx file is binary; write it to a file with -o FILE")
    db = open_database("reporting")
    try:
        published = handlers.report(db, request)
    except PeriodError as exc:
        raise click.UsageError(exc.message) from None
    finally:
        db.engine.dispose()
    body, _, _ = render(published, fmt)
    data = body.encode() if isinstance(body, str) else body
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    output.write_bytes(data)
    rows = sum(len(s.rows) for s in published.sections)
    hidden = "exact figures" if published.exact else f"{published.suppressed} cell(s) suppressed"
    click.echo(
        f"{table}: {rows} rows, {len(published.table.columns)} columns, total "
        f"{published.totals.total}, {hidden} -> {output}",
        err=True,
    )


@report.command("rebuild")
def rebuild() -> None:
    """Rebuild reporting's facts from registration's current state (after a fix changed how
    facts are made): the schools, the activities, every registration and every loaded
    historical participant. The tables after equal those before, unless the fix changed them."""
    from lob_cli.services import open_database
    from registration.handlers import export_participation
    from reporting import handlers

    registration_db = open_database("registration")
    reporting_db = open_database("reporting")
    try:
        counts = handlers.rebuild(
            reporting_db, lambda: handlers.Snapshot(**export_participation(registration_db))
        )
    finally:
        registration_db.engine.dispose()
        reporting_db.engine.dispose()
    click.echo(
        f"reporting rebuilt from registration: {counts['schools']} schools, "
        f"{counts['activities']} activities, {counts['facts']} facts"
    )
