"""Sign-up benchmark: the four services as processes, pupils signing up over HTTP.

Measures what a region notices when the sign-up opens, for each database (SQLite, PostgreSQL),
each number of registration processes (1, 2: clients are spread over their ports) and each
number of concurrent clients (1, 8, 32, 64):
- request latency (p50/p95/p99) and sign-ups/s at the API;
- the end-to-end rate: sign-ups / seconds from the first request until reporting counts every
  one and every confirmation has reached the SMTP sink (outbox -> broker -> consumers -> SMTP);
- in the same run, the ceilings of this machine: the raw kombu publish+consume rate (confirmed,
  persistent, one queue) and the mail sink's rate (smtplib, one connection per mail, as
  notifications sends), and the rate at which notifications actually mailed.
Runs on 127.0.0.1 only, in an isolated vhost and fresh databases, never `make run`'s.

    .venv/bin/python bench/signup_bench.py [--pupils 200] [--clients 1,8,32,64]
        [--processes 1,2] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import smtplib
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

import requests
from kombu import Connection, Consumer, Producer, Queue

from lob_cli.services import SERVICES
from lob_testing import (
    OPERATOR_KEY,
    free_port,
    isolated_postgres_database,
    isolated_vhost,
    poll,
)
from lob_testing.local import BIN, LocalSystem

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SCHOOLS = ["farel-college", "het-element", "muurhuizen", "vmbo-trivium", "t-atrium"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kombu_rate(amqp_uri: str, messages: int = 2000) -> float:
    """Messages/s through the broker: publish (confirmed, persistent) then consume with acks."""
    queue = Queue("bench-raw", durable=True)
    body = {"event_id": "x" * 36, "payload": {"registration_id": "r" * 36, "school_year": 4}}
    began = time.perf_counter()
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection)
        for _ in range(messages):
            producer.publish(body, routing_key=queue.name, declare=[queue], delivery_mode=2)
        received = 0

        def on_message(_body: object, message: object) -> None:
            nonlocal received
            received += 1
            message.ack()

        with Consumer(connection, [queue], callbacks=[on_message], prefetch_count=100):
            while received < messages:
                connection.drain_events(timeout=30)
    return messages / (time.perf_counter() - began)


def sink_rate(port: int, mails: int = 200) -> float:
    """Mails/s into the local sink, one SMTP connection per mail (as notifications sends)."""
    began = time.perf_counter()
    for n in range(mails):
        message = EmailMessage()
        message["From"], message["To"] = "bench@example.nl", f"sink{n}@sink.example.nl"
        message["Subject"] = "sink"
        message.set_content("Beste leerling,\n" * 20)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.send_message(message)
    return mails / (time.perf_counter() - began)


class MailCounter:
    """Counts the sink's messages per recipient domain (headers only, each file once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[str, tuple[str, float]] = {}

    def domain(self, domain: str) -> list[float]:
        parser = BytesHeaderParser()
        for path in self.folder.glob("*.eml"):
            if path.name not in self.seen:
                with open(path, "rb") as handle:
                    to = str(parser.parse(handle)["To"])
                self.seen[path.name] = (to.rsplit("@", 1)[-1], path.stat().st_mtime)
        return [at for d, at in self.seen.values() if d == domain]


def start_system(stack: contextlib.ExitStack, postgres: bool, processes: int) -> LocalSystem:
    amqp_uri = stack.enter_context(isolated_vhost())
    root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    system = LocalSystem(root, amqp_uri)
    if postgres:
        for name in SERVICES:
            system.env[f"{name.upper()}_DATABASE_URL"] = stack.enter_context(
                isolated_postgres_database()
            )
    system.env["LOG_LEVEL"] = "WARNING"  # the access log of every request is not measured here
    system.env["MAIL_RATE_PER_SECOND"] = "0"  # issue 14's mail target is with the limit off
    stack.callback(system.stop_all)
    system.lob("seed-demo")
    system.start_mail_sink()
    for name in SERVICES:
        system.start(name)
    system.registration_urls = [system.url("registration")]
    for extra in range(1, processes):
        port = free_port()
        env = dict(system.env, REGISTRATION_HTTP=f"127.0.0.1:{port}")
        info = SERVICES["registration"]
        process = subprocess.Popen(
            [str(BIN / "nameko"), "run", "--config", str(info.config_path), info.entry],
            env=env,
            cwd=root,
            stdout=open(root / f"registration-{extra}.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        system.processes[f"registration-{extra}"] = process
        url = f"http://127.0.0.1:{port}"
        poll(lambda u=url: _ready(u), timeout=60, what="the second registration process")
        system.registration_urls.append(url)
    return system


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def publish_activity(system: LocalSystem, ident: str) -> None:
    start = datetime.now(UTC) + timedelta(days=30)
    requests.post(
        f"{system.url('registration')}/activities",
        headers=OPERATOR,
        json={
            "id": ident,
            "kind": "career_event",
            "title": "Loopbaanevenement",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
        },
    ).raise_for_status()


def pupil(activity: str, n: int) -> dict:
    return {
        "activity_id": activity,
        "first_name": f"Leerling{n}",
        "last_name": "Bench",
        "email": f"pupil{n}@{activity}.example.nl",
        "date_of_birth": "2009-01-01",
        "school_id": SCHOOLS[n % len(SCHOOLS)],
        "school_year": 4,
    }


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mail_backlog(system: LocalSystem, mails: MailCounter, pupils: int) -> dict:
    """Notifications stopped while `pupils` sign up, then started: how fast its live path (the
    events consumed, a message queued each, the sending loop's batches) mails a backlog, which a
    rush cannot show (there mail follows the sign-ups, at their rate)."""
    activity = "bench-backlog"
    publish_activity(system, activity)
    process = system.processes["notifications"]
    process.terminate()
    process.wait(timeout=30)
    with ThreadPoolExecutor(8) as pool:
        for response in pool.map(
            lambda n: requests.post(
                f"{system.url('registration')}/registrations",
                headers=OPERATOR,
                json=pupil(activity, n),
                timeout=60,
            ),
            range(pupils),
        ):
            response.raise_for_status()
    began = time.perf_counter()
    system.start("notifications")
    ready = time.perf_counter()
    cpu_ready = cpu_seconds(system.processes["notifications"].pid)
    domain = f"{activity}.example.nl"
    poll(lambda: len(mails.domain(domain)) >= pupils, timeout=600, interval=0.1, what="mail")
    done = time.perf_counter()
    cpu = cpu_seconds(system.processes["notifications"].pid) - cpu_ready
    stamps = sorted(mails.domain(domain))
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "pupils": pupils,
        "start_to_ready_s": round(ready - began, 1),
        "ready_to_last_mail_s": round(done - ready, 1),
        "mail_per_second": round(pupils / span, 1) if span else None,
        "notifications_cpu_ms_per_mail": round(cpu * 1000 / pupils, 1),
    }


def rush(system: LocalSystem, mails: MailCounter, pupils: int, clients: int) -> dict:
    """`pupils` sign-ups by `clients` concurrent clients, then until all counted and mailed."""
    activity = f"bench-{clients}"
    publish_activity(system, activity)
    local = threading.local()
    counter = iter(range(clients * 10_000))
    lock = threading.Lock()

    def sign_up(n: int) -> float:
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
            with lock:
                index = next(counter)
            local.url = system.registration_urls[index % len(system.registration_urls)]
        began = time.perf_counter()
        response = local.session.post(
            f"{local.url}/registrations", headers=OPERATOR, json=pupil(activity, n)
        )
        if response.status_code != 201:
            raise RuntimeError(f"sign-up {n}: {response.status_code} {response.text}")
        return time.perf_counter() - began

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(sign_up, range(pupils)))
    accepted = time.perf_counter() - began

    def counted() -> bool:
        report = requests.get(
            f"{system.url('reporting')}/reports/participation",
            params={"activity_id": activity},
            headers=OPERATOR,
        ).json()
        return sum(a["participants"] for a in report["activities"]) == pupils

    poll(counted, timeout=600, interval=0.1, what="reporting to count every sign-up")
    all_counted = time.perf_counter() - began
    domain = f"{activity}.example.nl"
    poll(lambda: len(mails.domain(domain)) >= pupils, timeout=600, interval=0.1, what="mail")
    all_mailed = time.perf_counter() - began
    stamps = sorted(mails.domain(domain))
    mail_span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "clients": clients,
        "pupils": pupils,
        "sign_ups_per_second": round(pupils / accepted, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p95": round(percentile(latencies, 0.95) * 1000, 1),
            "p99": round(percentile(latencies, 0.99) * 1000, 1),
        },
        "all_accepted_s": round(accepted, 2),
        "all_counted_s": round(all_counted, 2),
        "all_mailed_s": round(all_mailed, 2),
        "end_to_end_per_second": round(pupils / max(all_counted, all_mailed), 1),
        "notifications_mail_per_second": round(pupils / mail_span, 1) if mail_span else None,
    }


def run(
    pupils: int, clients: list[int], processes: int, postgres: bool, backlog_pupils: int = 0
) -> dict:
    with contextlib.ExitStack() as stack:
        system = start_system(stack, postgres, processes)
        raw = kombu_rate(system.amqp_uri)
        sink = sink_rate(system.smtp_port)
        mails = MailCounter(system.mail)
        rushes = [rush(system, mails, pupils, c) for c in clients]
        backlog = mail_backlog(system, mails, backlog_pupils) if backlog_pupils else None
    for result in rushes:
        result["end_to_end_share_of_kombu"] = round(result["end_to_end_per_second"] / raw, 3)
    return {
        "database": "postgresql" if postgres else "sqlite",
        "registration_processes": processes,
        "kombu_publish_consume_per_second": round(raw, 1),
        "sink_mail_per_second": round(sink, 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "rushes": rushes,
        "mail_backlog": backlog,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| database | processes | clients | sign-ups/s | p50 | p95 | p99 | end-to-end/s | "
        "kombu raw/s | e2e share | notifications mail/s | sink mail/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for r in result["rushes"]:
            ms = r["latency_ms"]
            lines.append(
                f"| {result['database']} | {result['registration_processes']} | {r['clients']} | "
                f"{r['sign_ups_per_second']} | {ms['p50']:.0f} ms | {ms['p95']:.0f} ms | "
                f"{ms['p99']:.0f} ms | {r['end_to_end_per_second']} | "
                f"{result['kombu_publish_consume_per_second']:.0f} | "
                f"{r['end_to_end_share_of_kombu']:.0%} | {r['notifications_mail_per_second']} | "
                f"{result['sink_mail_per_second']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=200, help="sign-ups per client count")
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--processes", default="1,2", help="registration processes")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--mail-backlog",
        type=int,
        default=0,
        help="then this many sign-ups with notifications stopped, mailed when it starts",
    )
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    results = []
    for database in args.databases.split(","):
        for processes in (int(p) for p in args.processes.split(",")):
            result = run(
                args.pupils, clients, processes, database == "postgresql", args.mail_backlog
            )
            print(json.dumps(result), flush=True)
            results.append(result)
    print(table(results))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "signup.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
