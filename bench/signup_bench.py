"""Sign-up benchmark: the four services as processes, N pupils signing up over HTTP.

Measures what a region notices when the sign-up opens: request latency (p50/p95/p99) and
throughput at the API, and how long until every sign-up is counted by reporting and confirmed by
email (the whole chain: outbox -> broker -> consumers -> SMTP). Runs on 127.0.0.1 only, in an
isolated vhost and fresh databases, so it never touches `make run`'s data.

    .venv/bin/python bench/signup_bench.py [--pupils 1000] [--concurrency 8] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from lob_cli.services import SERVICES
from lob_testing import (
    OPERATOR_KEY,
    isolated_postgres_database,
    isolated_vhost,
    poll,
)
from lob_testing.local import LocalSystem

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SCHOOLS = ["farel-college", "het-element", "muurhuizen", "vmbo-trivium", "t-atrium"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(pupils: int, concurrency: int, postgres: bool) -> dict:
    with contextlib.ExitStack() as stack:
        amqp_uri = stack.enter_context(isolated_vhost())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        system = LocalSystem(root, amqp_uri)
        if postgres:
            for name in SERVICES:
                system.env[f"{name.upper()}_DATABASE_URL"] = stack.enter_context(
                    isolated_postgres_database()
                )
        stack.callback(system.stop_all)
        system.lob("seed-demo")
        system.start_mail_sink()
        for name in SERVICES:
            system.start(name)
        start = datetime.now(UTC) + timedelta(days=30)
        requests.post(
            f"{system.url('registration')}/activities",
            headers=OPERATOR,
            json={
                "id": "bench",
                "kind": "career_event",
                "title": "Loopbaanevenement",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
            },
        ).raise_for_status()

        local = threading.local()
        url = f"{system.url('registration')}/registrations"

        def sign_up(n: int) -> float:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            began = time.perf_counter()
            response = session.post(
                url,
                headers=OPERATOR,
                json={
                    "activity_id": "bench",
                    "first_name": f"Leerling{n}",
                    "last_name": "Bench",
                    "email": f"pupil{n}@example.nl",
                    "date_of_birth": "2009-01-01",
                    "school_id": SCHOOLS[n % len(SCHOOLS)],
                    "school_year": 4,
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"sign-up {n}: {response.status_code} {response.text}")
            return time.perf_counter() - began

        began = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(sign_up, range(pupils)))
        accepted = time.perf_counter() - began

        def counted() -> bool:
            report = requests.get(
                f"{system.url('reporting')}/reports/participation",
                params={"activity_id": "bench"},
                headers=OPERATOR,
            ).json()
            return sum(a["participants"] for a in report["activities"]) == pupils

        poll(counted, timeout=600, interval=0.2, what="reporting to count every sign-up")
        all_counted = time.perf_counter() - began
        poll(
            lambda: len(list(system.mail.glob("*.eml"))) >= pupils,
            timeout=600,
            interval=0.2,
            what="every confirmation email",
        )
        all_mailed = time.perf_counter() - began
    return {
        "database": "postgresql" if postgres else "sqlite",
        "pupils": pupils,
        "concurrency": concurrency,
        "sign_ups_per_second": round(pupils / accepted, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p95": round(percentile(latencies, 0.95) * 1000, 1),
            "p99": round(percentile(latencies, 0.99) * 1000, 1),
        },
        "all_accepted_s": round(accepted, 1),
        "all_counted_s": round(all_counted, 1),
        "all_mailed_s": round(all_mailed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    result = run(args.pupils, args.concurrency, args.postgres)
    print(json.dumps(result))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"signup-{result['database']}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
