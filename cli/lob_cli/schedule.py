"""`lob schedule ...`: make plans from the command line (operators, benchmarks)."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import click

from scheduling.domain.infoday import (
    DEFAULT_GAP_TOLERANCE,
    DEFAULT_TIME_LIMIT_S,
    InfoDayInstance,
    InstanceError,
    assign_programmes,
)


def _progress(started: float) -> Any:
    def show(stage: str, fraction: float) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {fraction:4.0%} {stage}", err=True)

    return show


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the {what} {path}: {exc}") from None


@click.group()
def schedule() -> None:
    """Make programmes: the info day, orientation afternoons, bus tours."""


@schedule.command()
@click.argument("instance_path", metavar="INSTANCE", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "plan_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the plan (JSON).",
)
@click.option(
    "--previous",
    type=click.Path(path_type=Path),
    help="An earlier plan to keep as much of as possible (re-planning).",
)
@click.option(
    "--time-limit",
    type=float,
    default=DEFAULT_TIME_LIMIT_S,
    show_default=True,
    help="Seconds the search may take; the best plan found by then is written.",
)
@click.option(
    "--gap",
    "gap_tolerance",
    type=float,
    default=DEFAULT_GAP_TOLERANCE,
    show_default=True,
    help="Stop once the wish utility is within this share of its upper bound (0: only a "
    "proven optimum stops the search early).",
)
def infoday(
    instance_path: Path,
    plan_path: Path,
    previous: Path | None,
    time_limit: float,
    gap_tolerance: float,
) -> None:
    """Plan an information-day INSTANCE file (format: shared/bench/infoday/README.md).

    Always writes a valid plan; prints its metrics, the upper bound and the gap as JSON, and a
    warning when the search stopped short of its tolerance."""
    try:
        instance = InfoDayInstance.from_dict(_read_json(instance_path, "instance"))
    except InstanceError as exc:
        raise click.ClickException(f"{instance_path}: {exc}") from None
    kept = None
    if previous:
        raw = _read_json(previous, "previous plan")
        rows = raw.get("assignments") if isinstance(raw, dict) else None
        if not isinstance(rows, dict) or not all(isinstance(r, list) for r in rows.values()):
            raise click.ClickException(
                f"{previous}: a plan needs 'assignments': {{pupil id: [session or null, ...]}}"
            )
        kept = {pupil: tuple(row) for pupil, row in rows.items()}
    started = time.perf_counter()
    plan = assign_programmes(
        instance,
        previous=kept,
        time_limit_s=time_limit,
        gap_tolerance=gap_tolerance,
        progress=_progress(started),
    )
    seconds = time.perf_counter() - started
    plan_path.write_text(json.dumps(plan.to_dict()), encoding="utf-8")
    if plan.warning:
        click.echo(f"warning: {plan.warning}", err=True)
    summary = plan.summary()
    summary.update(
        instance=instance.name,
        pupils=len(instance.pupils),
        moved=plan.moved if kept else None,
        seconds=round(seconds, 2),
        peak_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    )
    click.echo(json.dumps(summary))


@schedule.command()
@click.argument("activity_id")
def run(activity_id: str) -> None:
    """Plan ACTIVITY now from the sign-ups scheduling holds, store it and announce it."""
    from lob_cli.services import open_database
    from lob_common.config import service_config
    from scheduling.domain.plan import CannotPlan, NothingToPlan, PlanSuperseded, Settings
    from scheduling.handlers import run_schedule

    settings = Settings.from_config(service_config("scheduling"))
    started = time.perf_counter()
    try:
        summary = run_schedule(
            open_database("scheduling"), activity_id, settings, progress=_progress(started)
        )
    except (NothingToPlan, CannotPlan, PlanSuperseded) as exc:
        raise click.ClickException(str(exc)) from None
    warning = summary["metrics"].get("warning")
    if warning:
        click.echo(f"warning: {warning}", err=True)
    click.echo(json.dumps(summary))
    click.echo(
        f"plan version {summary['version']} stored; the scheduling service publishes its "
        f"{summary['assigned']} programmes",
        err=True,
    )
