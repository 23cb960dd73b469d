"""Reporting benchmark: the region's tables over a million facts, and event ingestion.

Tables: a fresh database (SQLite file or PostgreSQL) holds 1 000 000 participation facts in
school year 2024-2025 and another 1 000 000 in calendar year 2026, so each measured table reads
a full million (and has to skip the other million). Measured is what `lob report` does: the
query, the table, suppression and the CSV; once cold (first run after loading) and then
`--runs` times warm (median and worst).

Ingestion: reporting runs as one `nameko run` process on an isolated vhost and a fresh
database. `--events` signed_up events wait in its queue before it starts (the backlog of a busy
sign-up morning); the rate is the number of events over the time from the first fact stored to
the last.

    .venv/bin/python bench/reporting_bench.py [--facts 1000000] [--events 20000]
        [--backend sqlite|postgresql|both] [--only tables|ingest] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from kombu import Connection, Producer
from nameko.standalone.events import get_event_exchange
from sqlalchemy import func, select, text

from lob_cli.services import SERVICES
from lob_common.contracts import dump_event, new_event
from lob_common.db import DatabaseHandle, make_engine, migrate
from lob_common.outbox import declare_topology
from lob_testing import isolated_postgres_database, isolated_vhost, poll, sample
from lob_testing.local import BIN, LocalSystem, cpu_seconds
from reporting import handlers
from reporting.adapters import repository
from reporting.adapters.export import render
from reporting.adapters.tables import Base, Participation, ParticipationCount
from reporting.service import MIGRATIONS

MUNICIPALITIES = (
    "Amersfoort",
    "Baarn",
    "Barneveld",
    "Bunschoten",
    "Leusden",
    "Nijkerk",
    "Soest",
    "Woudenberg",
)
KINDS_2024 = (
    ("infoday", date(2024, 11, 14)),
    ("orientation_day", date(2024, 11, 28)),
    ("orientation_day", date(2025, 2, 13)),
    ("orientation_day", date(2025, 3, 6)),
    ("career_event", date(2025, 6, 5)),
    ("bus_tour", date(2024, 10, 17)),
    ("bus_tour", date(2025, 2, 20)),
    ("network_meeting", date(2024, 12, 12)),
    ("network_meeting", date(2025, 5, 14)),
    ("decanen_meeting", date(2024, 10, 24)),
)
KINDS_2026 = (
    ("orientation_day", date(2026, 2, 12)),
    ("orientation_day", date(2026, 3, 19)),
    ("career_event", date(2026, 6, 4)),
    ("network_meeting", date(2026, 5, 13)),
    ("infoday", date(2026, 11, 19)),
    ("orientation_day", date(2026, 12, 10)),
    ("bus_tour", date(2026, 10, 15)),
)
PROFESSIONAL_KINDS = {"bus_tour", "network_meeting", "decanen_meeting"}


def catalogue(db: DatabaseHandle) -> list[tuple[str, str, date]]:
    """40 schools and the two seasons' activities, through reporting's own use cases."""
    activities = []
    at = datetime(2024, 8, 1, tzinfo=UTC)
    for n in range(40):
        kind = "mbo" if n >= 36 else "vmbo"
        event = new_event(
            "school_registered",
            {
                "school_id": f"school-{n}",
                "name": f"School {n:02d}",
                "kind": kind,
                "municipality": MUNICIPALITIES[n % 8],
            },
        )
        handlers.record_school(db, _delivered(event, at))
    for season, kinds in (("a", KINDS_2024), ("b", KINDS_2026)):
        for n, (kind, day) in enumerate(kinds):
            activity_id = f"{season}-{kind}-{n}"
            starts = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
            payload = {
                **sample("activity_published"),
                "activity_id": activity_id,
                "kind": kind,
                "title": f"{kind} {day}",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=3)).isoformat(),
            }
            handlers.record_activity(db, _delivered(new_event("activity_published", payload), at))
            activities.append((activity_id, kind, day))
    return activities


def _delivered(event, at):
    from dataclasses import replace

    return replace(event, handler=f"reporting.handle_{event.event_type}", occurred_at=at)


def facts(activities: list[tuple[str, str, date]], per_season: int, seed: int = 7):
    """`per_season` facts in 2024-2025 and as many in 2026. Pupils live mostly in their
    school's municipality and are 12-17; young adults come without a school; professionals
    have no age band or phase (what registration sends)."""
    rng = random.Random(seed)
    bands = ("12-15", "16-17", "18-22", "23-27", None)
    phases = ("mbo", "hbo", "working", "neither", None)
    for season in ("a", "b"):
        own = [a for a in activities if a[0].startswith(season)]
        pupils = [a for a in own if a[1] not in PROFESSIONAL_KINDS]
        staff = [a for a in own if a[1] in PROFESSIONAL_KINDS]
        for n in range(per_season):
            draw = rng.random()
            role = "pupil" if draw < 0.8 else "young_adult" if draw < 0.92 else "professional"
            activity_id, kind, day = rng.choice(staff if role == "professional" else pupils)
            school_n = rng.randrange(40)
            home = MUNICIPALITIES[school_n % 8]
            municipality = home if rng.random() < 0.85 else rng.choice(MUNICIPALITIES)
            band = phase = None
            if role == "pupil":
                band, phase = rng.choice(bands[:2]), "vo" if school_n < 36 else "pro_vso"
            elif role == "young_adult":
                band, phase = rng.choice(bands), rng.choice(phases)
            yield (
                f"{season}{n}",
                f"{season}{n}",
                activity_id,
                kind,
                day,
                None if role == "young_adult" else f"school-{school_n}",
                role,
                band,
                phase,
                municipality if rng.random() < 0.98 else None,
                "cancelled" if rng.random() < 0.04 else "signed_up",
                rng.choice((True, True, True, False, None)),
            )


# The facts table's columns, in the order the bulk load writes them.
COLUMNS = repository.FACT_FIELDS


def load_facts(db: DatabaseHandle, rows) -> float:
    started = time.perf_counter()
    engine = db.engine
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join(_pg(v) for v in row) + "\n")
            buffer.seek(0)
            cursor.copy_expert(f"COPY participation ({', '.join(COLUMNS)}) FROM STDIN", buffer)
        else:
            marks = ", ".join("?" for _ in COLUMNS)
            cursor.executemany(
                f"INSERT INTO participation ({', '.join(COLUMNS)}) VALUES ({marks})",
                ((*r[:4], r[4].isoformat(), *r[5:]) for r in rows),
            )
        raw.commit()
    finally:
        raw.close()
    with db() as uow:  # the counts the tables read, as `lob report rebuild` makes them
        repository.recount(uow.session)
        uow.commit()
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return time.perf_counter() - started


def _pg(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


TABLES = (
    ("tabel-3a", {"school_years": ["2024-2025"]}),
    ("tabel-3b", {"school_years": ["2024-2025"]}),
    ("programme-12-27", {"calendar_year": 2026}),
    ("programme-12-27", {"school_years": ["2025-2026"]}),
    ("no-shows", {"school_years": ["2024-2025"]}),
)


def bench_tables(url: str, per_season: int, runs: int) -> list[dict]:
    engine = make_engine(url)
    migrate(engine, MIGRATIONS)
    db = DatabaseHandle(engine, Base.metadata)
    with db() as uow:
        loaded = uow.session.scalar(select(func.count()).select_from(ParticipationCount))
    loading = 0.0
    if not loaded:  # a kept database (--sqlite-file) is loaded once
        activities = catalogue(db)
        loading = load_facts(db, facts(activities, per_season))
    with db() as uow:
        total = uow.session.scalar(select(func.count()).select_from(Participation))
        combinations = uow.session.scalar(select(func.count()).select_from(ParticipationCount))
    results = []
    for name, period in TABLES:
        request = handlers.ReportRequest.parse(name, **period)
        seconds = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            published = handlers.report(db, request)
            render(published, "csv")
            seconds.append(time.perf_counter() - started)
        read = sum(
            row.total if isinstance(row.total, int) else 0
            for s in published.sections
            for row in s.rows
        )
        results.append(
            {
                "backend": engine.dialect.name,
                "table": name,
                "period": period,
                "facts_in_database": total,
                "count_rows": combinations,
                "load_seconds": round(loading, 1),
                "cold_s": round(seconds[0], 3),
                "warm_median_s": round(statistics.median(seconds[1:]), 3),
                "warm_max_s": round(max(seconds[1:]), 3),
                "suppressed_cells": published.suppressed,
                "shown_total": published.totals.total,
                "rows_shown_sum": read,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    engine.dispose()
    return results


def bench_ingest(database_url: str | None, events: int) -> dict:
    with contextlib.ExitStack() as stack:
        amqp_uri = stack.enter_context(isolated_vhost())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        system = LocalSystem(root, amqp_uri)
        if database_url:
            system.env["REPORTING_DATABASE_URL"] = database_url
        url = system.env["REPORTING_DATABASE_URL"]
        stack.callback(system.stop_all)
        declare_topology(amqp_uri, "registration")
        exchange = get_event_exchange("registration", {})
        published = time.perf_counter()
        with Connection(amqp_uri) as connection:
            producer = Producer(connection.channel(), exchange=exchange)
            for n in range(events):
                payload = sample(
                    "signed_up",
                    registration_id=f"r{n}",
                    person_id=f"p{n}",
                    school_id=f"school-{n % 40}",
                )
                producer.publish(
                    dump_event(new_event("signed_up", payload)),
                    routing_key="signed_up",
                    serializer="json",
                    delivery_mode=2,
                )
        published = time.perf_counter() - published
        engine = make_engine(url)
        migrate(engine, MIGRATIONS)

        def stored() -> int:
            with engine.connect() as connection:
                return connection.scalar(select(func.count()).select_from(Participation))

        _start_busy(system, "reporting")
        pid = system.processes["reporting"].pid
        first = poll(lambda: stored() > 0 and time.perf_counter(), timeout=120, what="a fact")
        at_first, cpu_first = stored(), cpu_seconds(pid)
        poll(lambda: stored() >= events, timeout=900, interval=0.2, what=f"{events} facts")
        seconds, cpu = time.perf_counter() - first, cpu_seconds(pid) - cpu_first
        engine.dispose()
        result = {
            "backend": "postgresql" if url.startswith("postgresql") else "sqlite",
            "events": events,
            "publish_seconds": round(published, 1),
            "consume_seconds": round(seconds, 2),
            "events_per_second": round((events - at_first) / seconds),
            # What one process can do with a core to itself (the machine is shared).
            "consumer_cpu_seconds": round(cpu, 2),
            "events_per_cpu_second": round((events - at_first) / cpu),
            "load_average": os.getloadavg()[0],
        }
        print(json.dumps(result), flush=True)
        return result


def _start_busy(system: LocalSystem, name: str) -> None:
    """Start a service that will be busy at once (a backlog waits): no readiness poll, which
    would compete with the backlog for its attention."""
    info = SERVICES[name]
    log = open(system.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    system.processes[name] = subprocess.Popen(
        [str(BIN / "nameko"), "run", "--config", str(info.config_path), info.entry],
        env=system.env,
        cwd=system.root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=1_000_000, help="facts per season")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", choices=("tables", "ingest"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--sqlite-file", type=Path, help="keep the SQLite tables database here (load it once)"
    )
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results: list[dict] = []
    for backend in backends:
        with contextlib.ExitStack() as stack:
            if backend == "postgresql":
                url = stack.enter_context(isolated_postgres_database())
                ingest_url = stack.enter_context(isolated_postgres_database())
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                url, ingest_url = f"sqlite:///{args.sqlite_file or folder / 'tables.db'}", None
            if args.only != "ingest":
                results += bench_tables(url, args.facts, args.runs)
            if args.only != "tables":
                results.append(bench_ingest(ingest_url, args.events))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (out / f"reporting-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
