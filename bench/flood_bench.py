"""Hostile flood: what a well-behaved client notices while someone floods the API with
unauthenticated requests.

Registration runs as a process (with the broker, a fresh vhost and SQLite). A well-behaved client
on 127.0.0.1 reads an activity with its key (GET /activities/{id}) at a steady pace, first alone,
then while `--flooders` threads in a separate process send requests without a key as fast as
they can from another source address (127.0.0.2, so the per-address limit of HttpGuard is what
it meets, not the good client's address). The flood starts at 401 and, once its burst is used,
gets 429 without costing a worker or a key lookup.

    .venv/bin/python bench/flood_bench.py [--seconds 15] [--flooders 16] [--rate 20]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

from lob_testing import OPERATOR_KEY, isolated_vhost
from lob_testing.local import LocalSystem, percentile

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


def well_behaved(url: str, seconds: float, rate: float) -> dict:
    """GET the activity `rate` times a second for `seconds`; latency and answers."""
    session = requests.Session()
    latencies, statuses = [], Counter()
    interval = 1 / rate
    end = time.perf_counter() + seconds
    next_at = time.perf_counter()
    while time.perf_counter() < end:
        began = time.perf_counter()
        try:
            status = session.get(url, headers=OPERATOR, timeout=30).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        latencies.append(time.perf_counter() - began)
        statuses[status] += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    return {
        "requests": len(latencies),
        "answers": dict(statuses),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def _flood_thread(port: int, stop_at: float, counts: dict) -> None:
    connection = None
    while time.time() < stop_at:
        try:
            if connection is None:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0)
                )
            connection.request(
                "POST",
                "/registrations",
                body=b'{"activity_id": "x"}',
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            counts[response.status] = counts.get(response.status, 0) + 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            counts["error"] = counts.get("error", 0) + 1
            connection = None


def _flood(port: int, flooders: int, seconds: float, out: multiprocessing.Queue) -> None:
    import threading

    stop_at = time.time() + seconds
    counts: list[dict] = [{} for _ in range(flooders)]
    threads = [threading.Thread(target=_flood_thread, args=(port, stop_at, c)) for c in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total: Counter = Counter()
    for c in counts:
        total.update(c)
    out.put(dict(total))


def run(seconds: float, flooders: int, rate: float) -> dict:
    with contextlib.ExitStack() as stack:
        amqp_uri = stack.enter_context(isolated_vhost())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        system = LocalSystem(root, amqp_uri)
        system.env["LOG_LEVEL"] = "WARNING"
        stack.callback(system.stop_all)
        system.lob("seed-demo")
        system.start("registration")
        activities = requests.get(
            f"{system.url('registration')}/activities", headers=OPERATOR, timeout=30
        ).json()["activities"]
        url = f"{system.url('registration')}/activities/{activities[0]['id']}"
        well_behaved(url, 2, rate)  # warm up
        alone = well_behaved(url, seconds, rate)
        port = system.ports["registration"]
        results: multiprocessing.Queue = multiprocessing.Queue()
        flood = multiprocessing.Process(target=_flood, args=(port, flooders, seconds + 1, results))
        flood.start()
        time.sleep(0.5)  # let the flood reach its 429s: the steady state is what is measured
        during = well_behaved(url, seconds, rate)
        flooded = results.get(timeout=seconds + 60)
        flood.join()
    return {
        "seconds": seconds,
        "flooders": flooders,
        "good_client_rate": rate,
        "alone": alone,
        "during_flood": during,
        "flood_answers": flooded,
        "flood_requests_per_second": round(sum(flooded.values()) / (seconds + 1), 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--flooders", type=int, default=16)
    parser.add_argument("--rate", type=float, default=20, help="good client requests/s")
    args = parser.parse_args()
    result = run(args.seconds, args.flooders, args.rate)
    print(json.dumps(result))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "flood.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
