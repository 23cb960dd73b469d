"""Sign-up benchmark: the four services as processes, pupils signing up over HTTP.

Measures what a region notices when the sign-up opens, for each database (SQLite, PostgreSQL),
each number of registration processes (1, 2: requests are spread over their ports) and either
each number of concurrent clients (closed loop: 1, 8, 32, 64 clients, each sending its next
sign-up when the last is answered) or each arrival rate (open loop, `--rate`: sign-ups start at
a fixed rate for `--seconds`, answered or not, so a slow server shows as queueing):
- request latency (p50/p95/p99; in the open loop from each request's scheduled start) and
  sign-ups/s at the API;
- CPU per sign-up of each process (user+sys from /proc: registration, its database backends on
  PostgreSQL, the other services, the mail sink, this load generator, and the broker, which
  other users of this machine share): while the API accepts the rush, and until it is settled;
- the end-to-end rate: sign-ups / seconds from the first request until reporting counts every
  one and every confirmation has reached the SMTP sink (outbox -> broker -> consumers -> SMTP);
- in the same run, the ceilings of this machine: the raw kombu publish+consume rate (confirmed,
  persistent, one queue) and the mail sink's rate (smtplib, one connection per mail, as
  notifications sends), and the rate at which notifications actually mailed.
Runs on 127.0.0.1 only, in an isolated vhost and fresh databases, never `make run`'s.

    .venv/bin/python bench/signup_bench.py [--pupils 200] [--clients 1,8,32,64]
        [--processes 1,2] [--databases sqlite,postgresql]
    .venv/bin/python bench/signup_bench.py --rate 50,100 --seconds 20 [--no-end-to-end]
        [--processes 2] [--databases postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import queue
import smtplib
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from kombu import Connection, Consumer, Producer, Queue
from sqlalchemy.engine import make_url

from lob_cli.services import SERVICES
from lob_testing import (
    OPERATOR_KEY,
    RABBIT_API,
    free_port,
    isolated_postgres_database,
    isolated_vhost,
    poll,
    publish_career_event,
    vhost_of,
)
from lob_testing.local import BIN, LocalSystem, cpu_seconds, percentile

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SCHOOLS = ["farel-college", "het-element", "muurhuizen", "vmbo-trivium", "t-atrium"]


def processes_named(predicate: object) -> list[int]:
    """The pids whose command line (as read from /proc) satisfies `predicate`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if predicate(cmdline):  # type: ignore[operator]
                found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds per group of processes between two snapshots.

    Groups: each service (both registration processes together), the mail sink, this load
    generator, on PostgreSQL each service's database backends (found by database name in their
    process title; a backend that ends between the snapshots is missed, one that starts counts
    whole), and the RabbitMQ node, which every user of this machine's broker shares.
    """

    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.broker = processes_named(lambda c: "beam.smp" in c and "rabbit" in c)

    def groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for name, process in self.system.processes.items():
            group = "registration" if name.startswith("registration") else name
            group = "mail_sink" if group == "mail" else group
            groups.setdefault(group, []).append(process.pid)
        groups["load_generator"] = [os.getpid()]
        for service, database in self.system.database_names.items():
            groups[f"postgresql_{service}"] = processes_named(
                lambda c, d=database: c.startswith("postgres:") and f" {d} " in c
            )
        if self.broker:
            groups["rabbitmq_shared"] = self.broker
        return groups

    def snapshot(self) -> dict[str, dict[int, float]]:
        return {
            group: {pid: s for pid in pids if (s := cpu_seconds(pid)) is not None}
            for group, pids in self.groups().items()
        }

    @staticmethod
    def ms_per(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], count: int
    ) -> dict[str, float]:
        """CPU milliseconds per unit (`count` sign-ups) of each group between the snapshots."""
        spent = {
            group: sum(s - before.get(group, {}).get(pid, 0.0) for pid, s in pids.items())
            for group, pids in after.items()
        }
        return {group: round(s * 1000 / count, 2) for group, s in spent.items()}


KOMBU_MESSAGES = 2000


def kombu_rate(amqp_uri: str, messages: int = KOMBU_MESSAGES) -> float:
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


def broker_counts(amqp_uri: str) -> tuple[int, int] | None:
    """Messages published into and delivered from the run's vhost so far (RabbitMQ's management
    API; None without it). The broker refreshes these counters every few seconds."""
    try:
        answer = requests.get(
            f"{RABBIT_API}/vhosts/{quote(vhost_of(amqp_uri), safe='')}",
            auth=("guest", "guest"),
            timeout=10,
        )
        answer.raise_for_status()
    except requests.RequestException:
        return None
    stats = answer.json().get("message_stats") or {}
    return int(stats.get("publish", 0)), int(stats.get("deliver_get", 0))


def settled_broker_counts(amqp_uri: str, patience: float = 40.0) -> tuple[int, int] | None:
    """broker_counts once they stop moving: the same on two reads a refresh interval apart."""
    deadline = time.monotonic() + patience
    last = broker_counts(amqp_uri)
    while last is not None and time.monotonic() < deadline:
        time.sleep(6)  # RabbitMQ's statistics interval is 5 s: waiting on a counter, not an event
        now = broker_counts(amqp_uri)
        if now == last:
            return now
        last = now
    return last


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
    system.database_names = {}
    if postgres:
        for name in SERVICES:
            url = stack.enter_context(isolated_postgres_database())
            system.env[f"{name.upper()}_DATABASE_URL"] = url
            system.database_names[name] = make_url(url).database
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
    publish_career_event(system.url("registration"), ident)


def sign_up_body(activity: str, n: int) -> dict:
    return {
        "activity_id": activity,
        "first_name": f"Leerling{n}",
        "last_name": "Bench",
        "email": f"pupil{n}@{activity}.example.nl",
        "date_of_birth": "2009-01-01",
        "school_id": SCHOOLS[n % len(SCHOOLS)],
        "school_year": 4,
    }


def latency_ms(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p95": None, "p99": None}
    return {
        "p50": round(statistics.median(latencies) * 1000, 1),
        "p95": round(percentile(latencies, 0.95) * 1000, 1),
        "p99": round(percentile(latencies, 0.99) * 1000, 1),
    }


def settle(
    system: LocalSystem, mails: MailCounter, activity: str, pupils: int, began: float
) -> dict:
    """Wait until reporting counts every sign-up and every confirmation reached the sink."""

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
        "all_counted_s": round(all_counted, 2),
        "all_mailed_s": round(all_mailed, 2),
        "end_to_end_per_second": round(pupils / max(all_counted, all_mailed), 1),
        "notifications_mail_per_second": round(pupils / mail_span, 1) if mail_span else None,
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
            f"{local.url}/registrations", headers=OPERATOR, json=sign_up_body(activity, n)
        )
        if response.status_code != 201:
            raise RuntimeError(f"sign-up {n}: {response.status_code} {response.text}")
        return time.perf_counter() - began

    meter = CpuMeter(system)
    cpu_before = meter.snapshot()
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(sign_up, range(pupils)))
    accepted = time.perf_counter() - began
    cpu_accepted = meter.snapshot()
    settled = settle(system, mails, activity, pupils, began)
    return {
        "clients": clients,
        "pupils": pupils,
        "sign_ups_per_second": round(pupils / accepted, 1),
        "latency_ms": latency_ms(latencies),
        "all_accepted_s": round(accepted, 2),
        **settled,
        "cpu_ms_per_sign_up": CpuMeter.ms_per(cpu_before, cpu_accepted, pupils),
        "cpu_ms_per_sign_up_until_settled": CpuMeter.ms_per(cpu_before, meter.snapshot(), pupils),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


class OpenLoop:
    """Sign-ups that start at a fixed rate whether or not earlier ones were answered.

    A scheduler hands each request its start time; a worker thread (each with its own
    keep-alive connection per registration process) sends it. A new worker is started whenever
    every worker is busy, so a request never waits for the generator's own threads: its latency,
    counted from the scheduled start, is the server's (queueing included). The generator's own
    lateness (dispatch after the scheduled start, e.g. for the CPU) is reported apart.
    """

    MAX_THREADS = 1000

    def __init__(self, urls: list[str], activity: str) -> None:
        self.urls = urls
        self.activity = activity
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.threads: list[threading.Thread] = []
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.errors: dict[str, int] = {}
        self.last_answer = 0.0

    # The server closes a connection idle for HTTP_READ_TIMEOUT_SECONDS (10 s); a POST sent on
    # it just then fails. A worker idle longer than this opens a new one instead.
    IDLE_CONNECTION_SECONDS = 5.0

    def _work(self) -> None:
        # http.client with one kept connection per registration process: `requests` cost the
        # generator about 1.4 ms of CPU per sign-up on the cores the services share.
        connections: dict[str, tuple[http.client.HTTPConnection, float]] = {}
        headers = {**OPERATOR, "Content-Type": "application/json"}
        while (job := self.jobs.get()) is not None:
            n, scheduled, dispatched = job
            url = self.urls[n % len(self.urls)]
            connection, last_used = connections.get(url, (None, 0.0))
            if connection is None or time.perf_counter() - last_used > self.IDLE_CONNECTION_SECONDS:
                if connection is not None:
                    connection.close()
                connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=60)
            error = None
            try:
                body = json.dumps(sign_up_body(self.activity, n))
                connection.request("POST", "/registrations", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 201:
                    error = str(response.status)
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
                connection.close()
            finished = time.perf_counter()
            connections[url] = (connection, finished)
            with self.lock:
                self.in_flight -= 1
                self.last_answer = max(self.last_answer, finished)
                self.lags.append(dispatched - scheduled)
                if error is None:
                    self.latencies.append(finished - scheduled)
                else:
                    self.errors[error] = self.errors.get(error, 0) + 1

    def run(self, rate: float, total: int) -> float:
        """Send `total` sign-ups at `rate` per second; returns the start time."""
        began = time.perf_counter()
        for n in range(total):
            scheduled = began + n / rate
            wait = scheduled - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            with self.lock:
                self.in_flight += 1
                grow = self.in_flight > len(self.threads) < self.MAX_THREADS
            if grow:
                thread = threading.Thread(target=self._work, daemon=True)
                thread.start()
                self.threads.append(thread)
            self.jobs.put((n, scheduled, time.perf_counter()))
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        return began


OPEN_LOOP_RUNS = itertools.count(1)


def open_loop(
    system: LocalSystem, mails: MailCounter, rate: float, seconds: float, end_to_end: bool
) -> dict:
    """Sign-ups arriving at `rate` per second for `seconds`, spread over the processes."""
    # One activity per run, so the same rate may be asked twice (--rate 100,100).
    activity = f"bench-rate-{rate:g}-{next(OPEN_LOOP_RUNS)}".replace(".", "-")
    publish_activity(system, activity)
    total = max(1, round(rate * seconds))
    generator = OpenLoop(system.registration_urls, activity)
    meter = CpuMeter(system)
    cpu_before = meter.snapshot()
    began = generator.run(rate, total)
    accepted = generator.last_answer - began
    cpu_accepted = meter.snapshot()
    ok = len(generator.latencies)
    result = {
        "offered_per_second": rate,
        "seconds": seconds,
        "pupils": total,
        "sign_ups_per_second": round(ok / accepted, 1) if accepted > 0 else None,
        "accepted": ok,
        "errors": generator.errors,
        "latency_ms": latency_ms(generator.latencies),
        "generator_lag_ms": latency_ms(generator.lags),
        "generator_threads": len(generator.threads),
        "all_accepted_s": round(accepted, 2),
        "cpu_ms_per_sign_up": CpuMeter.ms_per(cpu_before, cpu_accepted, max(ok, 1)),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }
    if end_to_end and ok == total:
        result.update(settle(system, mails, activity, total, began))
        result["cpu_ms_per_sign_up_until_settled"] = CpuMeter.ms_per(
            cpu_before, meter.snapshot(), total
        )
    return result


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
                json=sign_up_body(activity, n),
                timeout=60,
            ),
            range(pupils),
        ):
            response.raise_for_status()
    began = time.perf_counter()
    system.start("notifications")
    ready = time.perf_counter()
    cpu_ready = cpu_seconds(system.processes["notifications"].pid) or 0.0
    domain = f"{activity}.example.nl"
    poll(lambda: len(mails.domain(domain)) >= pupils, timeout=600, interval=0.1, what="mail")
    done = time.perf_counter()
    cpu = (cpu_seconds(system.processes["notifications"].pid) or 0.0) - cpu_ready
    stamps = sorted(mails.domain(domain))
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "pupils": pupils,
        "start_to_ready_s": round(ready - began, 1),
        "ready_to_last_mail_s": round(done - ready, 1),
        "mail_per_second": round(pupils / span, 1) if span else None,
        "notifications_cpu_ms_per_mail": round(cpu * 1000 / pupils, 1),
    }


def run(
    pupils: int,
    clients: list[int],
    processes: int,
    postgres: bool,
    rates: list[float] = (),
    seconds: float = 20,
    end_to_end: bool = True,
    backlog_pupils: int = 0,
) -> dict:
    with contextlib.ExitStack() as stack:
        system = start_system(stack, postgres, processes)
        raw = kombu_rate(system.amqp_uri)
        sink = sink_rate(system.smtp_port)
        mails = MailCounter(system.mail)
        rushes = [rush(system, mails, pupils, c) for c in clients]
        rates_run = [open_loop(system, mails, r, seconds, end_to_end) for r in rates]
        backlog = mail_backlog(system, mails, backlog_pupils) if backlog_pupils else None
        counts = settled_broker_counts(system.amqp_uri)
    signed_up = sum(r["pupils"] for r in rushes + rates_run) + backlog_pupils
    # Per sign-up, the messages the pipeline moves through the broker (events to each consumer,
    # the contacts RPC and its reply), without the kombu ceiling's own 2000.
    per_sign_up = (
        {
            "published": round((counts[0] - KOMBU_MESSAGES) / signed_up, 2),
            "delivered": round((counts[1] - KOMBU_MESSAGES) / signed_up, 2),
        }
        if counts and signed_up
        else None
    )
    for result in rushes + rates_run:
        if "end_to_end_per_second" in result:
            result["end_to_end_share_of_kombu"] = round(result["end_to_end_per_second"] / raw, 3)
            if per_sign_up:
                # The same share counted in broker messages: what the pipeline publishes (and
                # delivers) per second at its end-to-end rate, against raw kombu's messages/s.
                result["broker_messages_share_of_kombu"] = round(
                    result["end_to_end_per_second"] * per_sign_up["published"] / raw, 3
                )
    return {
        "database": "postgresql" if postgres else "sqlite",
        "registration_processes": processes,
        "kombu_publish_consume_per_second": round(raw, 1),
        "sink_mail_per_second": round(sink, 1),
        "broker_messages_per_sign_up": per_sign_up,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "rushes": rushes,
        "open_loop": rates_run,
        "mail_backlog": backlog,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| database | processes | clients | sign-ups/s | p50 | p95 | p99 | end-to-end/s | "
        "kombu raw/s | e2e share | notifications mail/s | sink mail/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for r in result.get("rushes", []):
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


def open_loop_table(results: list[dict]) -> str:
    lines = [
        "| database | processes | offered/s | achieved/s | accepted | errors | p50 | p95 | p99 | "
        "generator lag p99 | end-to-end/s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for r in result.get("open_loop", []):
            ms = r["latency_ms"]
            lines.append(
                f"| {result['database']} | {result['registration_processes']} | "
                f"{r['offered_per_second']:g} | {r['sign_ups_per_second']} | "
                f"{r['accepted']}/{r['pupils']} | {sum(r['errors'].values())} | "
                f"{ms['p50']} ms | {ms['p95']} ms | {ms['p99']} ms | "
                f"{r['generator_lag_ms']['p99']} ms | {r.get('end_to_end_per_second', '-')} | "
                f"{r['load_average_1min']} |"
            )
    return "\n".join(lines)


CPU_GROUPS = (
    "registration",
    "postgresql_registration",
    "scheduling",
    "reporting",
    "notifications",
    "mail_sink",
    "load_generator",
    "rabbitmq_shared",
)


def cpu_table(results: list[dict]) -> str:
    """CPU ms per sign-up while the API accepted the rush; the other PostgreSQL backends
    (scheduling, reporting, notifications) summed as `pg others`."""
    lines = [
        "| database | processes | load | " + " | ".join(CPU_GROUPS) + " | pg others |",
        "|---|---|---|" + "---|" * (len(CPU_GROUPS) + 1),
    ]
    for result in results:
        for r in result.get("rushes", []) + result.get("open_loop", []):
            cpu = r["cpu_ms_per_sign_up"]
            load = f"{r['clients']} clients" if "clients" in r else f"{r['offered_per_second']:g}/s"
            others = sum(
                v
                for k, v in cpu.items()
                if k.startswith("postgresql_") and k != "postgresql_registration"
            )
            lines.append(
                f"| {result['database']} | {result['registration_processes']} | {load} | "
                + " | ".join(str(cpu.get(g, "-")) for g in CPU_GROUPS)
                + f" | {round(others, 2) if others else '-'} |"
            )
    return "\n".join(lines)


def broker_table(results: list[dict]) -> str:
    """What a sign-up costs the broker, and the end-to-end rate counted in broker messages."""
    lines = [
        "Broker messages per sign-up, and the end-to-end share of raw kombu in messages:",
        "| database | processes | published | delivered | end-to-end share (sign-ups) | "
        "(messages) |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        per = result.get("broker_messages_per_sign_up") or {}
        shares = [
            (r["end_to_end_share_of_kombu"], r.get("broker_messages_share_of_kombu"))
            for r in result.get("rushes", []) + result.get("open_loop", [])
            if "end_to_end_share_of_kombu" in r
        ]
        lines.append(
            f"| {result['database']} | {result['registration_processes']} | "
            f"{per.get('published', '-')} | {per.get('delivered', '-')} | "
            + ", ".join(f"{a:.0%}" for a, _ in shares)
            + " | "
            + ", ".join(f"{b:.0%}" if b is not None else "-" for _, b in shares)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=200, help="sign-ups per client count")
    parser.add_argument(
        "--clients", default=None, help="closed loop (default 1,8,32,64 unless --rate)"
    )
    parser.add_argument("--rate", default="", help="open loop: sign-ups/s, e.g. 50,100")
    parser.add_argument("--seconds", type=float, default=20, help="open loop: how long")
    parser.add_argument(
        "--no-end-to-end",
        dest="end_to_end",
        action="store_false",
        help="open loop: do not wait for reporting and mail to settle",
    )
    parser.add_argument(
        "--mail-backlog",
        type=int,
        default=0,
        help="then this many sign-ups with notifications stopped, mailed when it starts",
    )
    parser.add_argument("--processes", default="1,2", help="registration processes")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--out", default="signup.json", help="file name in bench/results")
    args = parser.parse_args()
    rates = [float(r) for r in args.rate.split(",") if r]
    clients_arg = args.clients if args.clients is not None else ("" if rates else "1,8,32,64")
    clients = [int(c) for c in clients_arg.split(",") if c]
    results = []
    for database in args.databases.split(","):
        for processes in (int(p) for p in args.processes.split(",")):
            result = run(
                args.pupils,
                clients,
                processes,
                database == "postgresql",
                rates,
                args.seconds,
                args.end_to_end,
                args.mail_backlog,
            )
            print(json.dumps(result), flush=True)
            results.append(result)
    if clients:
        print(table(results))
    if rates:
        print(open_loop_table(results))
    print("CPU ms per sign-up while the API accepted:")
    print(cpu_table(results))
    print(broker_table(results))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
