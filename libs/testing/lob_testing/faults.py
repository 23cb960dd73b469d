"""The fault suite's system: the four services on PostgreSQL under supervisord, behind switchable
TCP proxies, a burst of sign-ups by clients that retry, and the checks of 'nothing lost, nothing
twice' once everything has settled (tests/reliability, `make soak`).

Why proxies: a real broker or database restart (`rabbitmqctl stop_app`, stopping PostgreSQL)
would hit every other user of this machine's servers, other test runs included. The services
reach RabbitMQ and PostgreSQL through a `TcpProxy` each instead; `cut()` resets every
connection at once and refuses new ones, `open()` lets them in again: for the services that is a
server restart, for everyone else nothing happens.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import requests

from lob_cli.runner import Supervisor, mail_sink_argv, nameko_argv
from lob_cli.services import SERVICES
from lob_testing import (
    OPERATOR_KEY,
    TcpProxy,
    free_port,
    isolated_postgres_database,
    isolated_vhost,
    publish_career_event,
    vhost_queues,
)

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SCHOOLS = ["farel-college", "het-element", "muurhuizen", "vmbo-trivium", "t-atrium"]
BIN = Path(sys.executable).parent
RETRYABLE = {429, 500, 502, 503, 504}
# One row per case of a run, printed at its end in the shape of docs/reliability.md's table.
FIGURES: list[dict[str, Any]] = []


@dataclass(frozen=True)
class Settings:
    """LOB_FAULT_* from the environment; the defaults keep the suite within minutes here."""

    sign_ups: int
    clients: int
    outage_seconds: float
    settle_seconds: float
    seed: int

    @property
    def burst_seconds(self) -> float:
        """A generous bound on one burst with its faults (about 3 sign-ups a second, at worst)."""
        return 180 + self.sign_ups / 3

    @classmethod
    @functools.cache
    def from_env(cls) -> Settings:
        env = os.environ.get
        ci = env("CI", "").lower() in ("1", "true", "yes")
        return cls(
            sign_ups=int(env("LOB_FAULT_SIGN_UPS", 200)),
            clients=int(env("LOB_FAULT_CLIENTS", 8)),
            outage_seconds=float(env("LOB_FAULT_OUTAGE_SECONDS", 6)),
            settle_seconds=float(env("LOB_FAULT_SETTLE_SECONDS", 180 if ci else 120)),
            seed=int(env("LOB_FAULT_SEED", random.randrange(1_000_000))),
        )


def _psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://", 1)


class FaultSystem:
    """Mail sink + four services under supervisord (as `lob run`), on PostgreSQL, via proxies."""

    def __init__(self, root: Path, amqp_uri: str, databases: dict[str, str]) -> None:
        self.root = root
        self.mail = root / "mail"
        self.mail.mkdir(parents=True, exist_ok=True)
        self.amqp_uri = amqp_uri  # direct: the test's own look at the vhost
        self.databases = databases  # direct
        self.broker_proxy = TcpProxy(5672)
        self.database_proxy = TcpProxy(5432)
        self.ports = {name: free_port() for name in SERVICES}
        self.smtp_port = free_port()
        self._mail_seen: dict[str, tuple[str, str, str]] = {}
        base = dict(
            os.environ,
            LOB_OPERATOR_KEY=OPERATOR_KEY,
            LOG_FORMAT="json",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.smtp_port),
            # 0.25, 1, 4, 16, 64 s: an outage of a few seconds never parks an event.
            EVENT_RETRY_BASE_SECONDS="0.25",
            EVENT_MAX_ATTEMPTS="6",
            PYTHONWARNINGS="ignore",
        )
        for name, port in self.ports.items():
            base[f"{name.upper()}_HTTP"] = f"127.0.0.1:{port}"
        self.direct_env = dict(base, AMQP_URI=amqp_uri)
        self.service_env = dict(base, AMQP_URI=self.broker_proxy.url(amqp_uri))
        for name, url in databases.items():
            self.direct_env[f"{name.upper()}_DATABASE_URL"] = url
            self.service_env[f"{name.upper()}_DATABASE_URL"] = self.database_proxy.url(url)
        self.supervisor = Supervisor(root, self.service_env, log_dir=root)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.broker_proxy.open()
        self.database_proxy.open()
        subprocess.run(
            [str(BIN / "lob"), "seed-demo"],
            env=self.direct_env,
            cwd=self.root,
            check=True,
            capture_output=True,
        )
        self.supervisor.add("mail", mail_sink_argv(self.mail, self.smtp_port))
        for name in SERVICES:
            self.supervisor.add(name, nameko_argv(name))
        self.supervisor.start()
        self.supervisor.wait_until_running()
        self.wait_ready(timeout=120)

    def stop(self) -> None:
        with suppress(Exception):
            self.supervisor.stop()
        for proxy in (self.broker_proxy, self.database_proxy):
            with suppress(Exception):
                proxy.close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def ready(self, name: str) -> bool:
        try:
            return requests.get(f"{self.url(name)}/readyz", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, names: Any = None, timeout: float = 90) -> float:
        """Wait until each service answers /readyz; return the seconds it took."""
        began = time.monotonic()
        waiting = list(names or SERVICES)
        deadline = began + timeout
        while waiting:
            waiting = [name for name in waiting if not self.ready(name)]
            if waiting and time.monotonic() > deadline:
                raise AssertionError(f"not ready after {timeout:g}s: {waiting}\n{self.logs()}")
            if waiting:
                time.sleep(0.1)
        return time.monotonic() - began

    def pids(self) -> dict[str, int]:
        return {
            info["name"]: info["pid"]
            for info in self.supervisor.rpc().getAllProcessInfo()
            if info["name"] in SERVICES
        }

    def kill(self, name: str) -> float:
        """kill -9 a service; supervisord starts it again. Returns seconds until ready again."""
        before = self.pids()[name]
        began = time.monotonic()
        os.kill(before, signal.SIGKILL)
        deadline = began + 120
        while self.pids().get(name) in (before, 0):
            if time.monotonic() > deadline:
                raise AssertionError(f"supervisord did not restart {name}")
            time.sleep(0.1)
        self.wait_ready([name], timeout=120)
        return time.monotonic() - began

    def logs(self, lines: int = 15) -> str:
        out = []
        for name in SERVICES:
            path = self.root / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}.log\n" + "\n".join(tail))
        return "\n".join(out)

    # -- the data --------------------------------------------------------------------------

    def query(self, service: str, sql: str, *args: Any) -> list[tuple]:
        import psycopg2

        connection = psycopg2.connect(_psycopg_url(self.databases[service]))
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall()
        finally:
            connection.close()

    def publish_activity(self, ident: str) -> None:
        publish_career_event(self.url("registration"), ident, accept=(200, 201))

    def mails(self) -> list[tuple[str, str, str]]:
        """(To, Message-ID, Subject) of every message the sink saved; headers only, cached."""
        parser = BytesHeaderParser()
        for path in self.mail.glob("*.eml"):
            if path.name not in self._mail_seen:
                with open(path, "rb") as handle:
                    headers = parser.parse(handle)
                self._mail_seen[path.name] = (
                    str(headers["To"]),
                    str(headers["Message-ID"]),
                    str(headers["Subject"]),
                )
        return list(self._mail_seen.values())

    def participants(self, activity: str) -> int | None:
        try:
            report = requests.get(
                f"{self.url('reporting')}/reports/participation",
                params={"activity_id": activity},
                headers=OPERATOR,
                timeout=5,
            )
            if report.status_code != 200:
                return None
            return sum(a["participants"] for a in report.json()["activities"])
        except requests.RequestException:
            return None


@contextmanager
def fault_system(root: Path) -> Iterator[FaultSystem]:
    """A FaultSystem in a fresh vhost and a fresh PostgreSQL database per service, removed after."""
    with ExitStack() as stack:
        amqp_uri = stack.enter_context(isolated_vhost())
        databases = {name: stack.enter_context(isolated_postgres_database()) for name in SERVICES}
        system = FaultSystem(root, amqp_uri, databases)
        stack.callback(system.stop)
        system.start()
        yield system


# -- the burst ---------------------------------------------------------------------------------


@dataclass
class SignUp:
    n: int
    email: str
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: int | None = None
    registration_id: str | None = None
    attempts: int = 0
    errors: Counter = field(default_factory=Counter)

    @property
    def acknowledged(self) -> bool:
        return self.status in (200, 201)


class Burst:
    """`sign_ups` pupils signing up through the API, `clients` at a time, in the background.

    A client retries a connection error, a timeout, a 5xx and a 429 with the same
    Idempotency-Key (back-off 0.1 s doubling to 2 s) until `give_up_seconds`; any other answer
    is final.
    """

    def __init__(
        self,
        system: FaultSystem,
        activity: str,
        sign_ups: int,
        clients: int,
        give_up_seconds: float = 240,
    ) -> None:
        self.system = system
        self.activity = activity
        self.sign_ups = [SignUp(n, f"p{n}@{activity}.example.nl") for n in range(sign_ups)]
        self.clients = clients
        self.give_up_seconds = give_up_seconds
        self._next = iter(self.sign_ups)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.began = self.ended = 0.0

    @property
    def acknowledged(self) -> int:
        return sum(1 for s in self.sign_ups if s.acknowledged)

    @property
    def done(self) -> int:
        return sum(1 for s in self.sign_ups if s.status is not None)

    def start(self) -> Burst:
        self.began = time.monotonic()
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            raise AssertionError(
                f"the burst did not finish in {timeout:g}s ({self.done} of {len(self.sign_ups)})"
            )
        self.ended = time.monotonic()

    def _client(self) -> None:
        session = requests.Session()
        while True:
            with self._lock:
                sign_up = next(self._next, None)
            if sign_up is None:
                return
            self._sign_up(session, sign_up)

    def _sign_up(self, session: requests.Session, sign_up: SignUp) -> None:
        url = f"{self.system.url('registration')}/registrations"
        body = {
            "activity_id": self.activity,
            "first_name": f"Leerling{sign_up.n}",
            "last_name": "Storing",
            "email": sign_up.email,
            "date_of_birth": "2009-01-01",
            "school_id": SCHOOLS[sign_up.n % len(SCHOOLS)],
            "school_year": 4,
        }
        headers = {**OPERATOR, "Idempotency-Key": sign_up.key}
        deadline = time.monotonic() + self.give_up_seconds
        delay = 0.1
        while True:
            sign_up.attempts += 1
            try:
                response = session.post(url, json=body, headers=headers, timeout=15)
            except requests.RequestException as exc:
                sign_up.errors[type(exc).__name__] += 1
                session = requests.Session()
            else:
                if response.status_code not in RETRYABLE:
                    sign_up.status = response.status_code
                    if response.status_code in (200, 201):
                        sign_up.registration_id = response.json()["registration_id"]
                    return
                sign_up.errors[str(response.status_code)] += 1
            if time.monotonic() > deadline:
                sign_up.status = -1  # gave up
                return
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)


# -- duplicates --------------------------------------------------------------------------------


class Duplicator:
    """Publishes a second copy of every event a service's relay has published (read from its
    outbox), to the same exchange with the same routing key: every consumer gets it twice."""

    def __init__(self, system: FaultSystem) -> None:
        from nameko.amqp.publish import Publisher

        self.system = system
        self.publisher = Publisher(system.amqp_uri)
        # Only what is published from now on (earlier cases' events stay single).
        self.last_id = {
            service: system.query(service, "SELECT coalesce(max(id), 0) FROM outbox")[0][0]
            for service in SERVICES
        }
        self.published = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scan(self) -> int:
        """Duplicate what was published since the last scan; return how many."""
        from nameko.standalone.events import get_event_exchange

        count = 0
        for service in SERVICES:
            rows = self.system.query(
                service,
                "SELECT id, event_type, body FROM outbox "
                "WHERE published_at IS NOT NULL AND id > %s ORDER BY id",
                self.last_id[service],
            )
            for ident, event_type, body in rows:
                self.publisher.publish(
                    body,
                    exchange=get_event_exchange(service, {}),
                    routing_key=event_type,
                    headers={"nameko.correlation_id": body.get("correlation_id") or ""},
                )
                self.last_id[service] = ident
                count += 1
        self.published += count
        return count

    def start(self) -> Duplicator:
        def loop() -> None:
            while not self._stop.wait(0.2):
                with suppress(Exception):  # the next scan picks up what this one missed
                    self.scan()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


# -- the checks --------------------------------------------------------------------------------


@dataclass
class Examination:
    figures: dict[str, Any]
    problems: list[str]
    notification_problems: list[str]  # the subset about notifications' own bookkeeping
    only_sending_left: bool = False  # every unsent message of the burst is `sending`
    # Problems no waiting can undo (a mail in the sink twice, a sign-up stored twice).
    lasting: list[str] = field(default_factory=list)


def examine(system: FaultSystem, burst: Burst) -> Examination:
    """Every guarantee of ARCHITECTURE.md for this burst, as figures and a list of problems."""
    activity = burst.activity
    problems: list[str] = []
    notification_problems: list[str] = []
    sent = len(burst.sign_ups)
    acknowledged = {s.registration_id: s for s in burst.sign_ups if s.acknowledged}
    refused = Counter(s.status for s in burst.sign_ups if not s.acknowledged)
    if refused:
        problems.append(f"sign-ups not acknowledged (status: count): {dict(refused)}")

    rows = system.query(
        "registration",
        "SELECT r.id, p.email FROM registrations r JOIN persons p ON p.id = r.person_id "
        "WHERE r.activity_id = %s AND r.status = 'signed_up'",
        activity,
    )
    stored_ids = {ident for ident, _ in rows}
    per_email = Counter(email for _, email in rows)
    stored_twice = sum(c - 1 for c in per_email.values() if c > 1)
    lost = [i for i in acknowledged if i not in stored_ids]
    unexpected = [i for i in stored_ids if i not in acknowledged]
    lasting: list[str] = []
    if stored_twice:
        twice = f"{stored_twice} sign-ups stored twice"
        lasting.append(twice)
        problems.append(twice)
    if lost:
        problems.append(f"{len(lost)} acknowledged sign-ups not stored")
    if unexpected:
        problems.append(f"{len(unexpected)} stored sign-ups nobody was told about")

    ours = {s.email for s in burst.sign_ups}
    mails = [m for m in system.mails() if m[0] in ours]
    confirmations = Counter(to for to, _, subject in mails if subject.startswith("Aanmelding"))
    message_ids = Counter(mid for _, mid, _ in mails)
    mailed = len(confirmations)
    mailed_twice = sum(c - 1 for c in confirmations.values() if c > 1)
    resent = sum(c - 1 for c in message_ids.values() if c > 1)
    unmailed = [e for e in per_email if e not in confirmations]
    if mailed_twice:
        twice = f"{mailed_twice} duplicate confirmations ({resent} with the same Message-ID)"
        lasting.append(twice)
        notification_problems.append(twice)
    if unmailed:
        notification_problems.append(f"{len(unmailed)} stored sign-ups without a confirmation")
    statuses = Counter(
        status
        for registration_id, status in system.query(
            "notifications", "SELECT registration_id, status FROM messages WHERE status <> 'sent'"
        )
        if registration_id in stored_ids
    )
    pending = dict(statuses)
    if pending:
        notification_problems.append(f"messages not sent (status: count): {dict(pending)}")

    counted = system.participants(activity)
    if counted != len(stored_ids):
        problems.append(f"reporting counts {counted}, registration stores {len(stored_ids)}")

    unsent = {}
    for service in SERVICES:
        [(count,)] = system.query(service, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        if count:
            unsent[service] = count
    if unsent:
        problems.append(f"outbox rows not published: {unsent}")
    queued = {
        q["name"]: q.get("messages", 0)
        for q in vhost_queues(system.amqp_uri)
        if q.get("messages", 0) or q.get("messages_unacknowledged", 0)
    }
    if queued:
        problems.append(f"messages waiting in queues: {queued}")

    problems += notification_problems
    figures = {
        "sent": sent,
        "acknowledged": len(acknowledged),
        "stored": len(stored_ids),
        "mailed": mailed,
        "counted": counted,
        "duplicates": stored_twice + mailed_twice + max(0, (counted or 0) - len(stored_ids)),
        "losses": len(lost) + len(unmailed) + max(0, len(stored_ids) - (counted or 0)),
        "client_retries": sum(s.attempts - 1 for s in burst.sign_ups),
    }
    only_sending = bool(pending) and set(pending) == {"sending"}
    return Examination(figures, problems, notification_problems, only_sending, lasting)


def settle(
    system: FaultSystem,
    burst: Burst,
    timeout: float,
    stall_seconds: float = 100,
    before_each: Callable[[], Any] | None = None,
) -> tuple[Examination, float]:
    """Examine until nothing is wrong (or `timeout`, or nothing changed for `stall_seconds`:
    more than notifications' first retry of a message it could not send, 1 min + its 15 s timer).

    Returns the last examination and the seconds it took.
    """
    began = time.monotonic()
    last_change, last_seen = began, None
    while True:
        if before_each is not None:
            before_each()
        found = examine(system, burst)
        now = time.monotonic()
        if not found.problems:
            return found, now - began
        if set(found.problems) <= set(found.lasting):
            # Everything else holds (nothing unsent, queued or `sending` is left to change it):
            # waiting longer cannot undo a duplicate, only cost the run its stall bound.
            return found, now - began
        seen = (found.figures, found.problems)
        if seen != last_seen:
            last_change, last_seen = now, seen
        # Messages left `sending` change nothing for 10 minutes (notifications' SENDING_GRACE):
        # no need to wait out the general stall bound for them.
        stuck = found.problems == found.notification_problems and found.only_sending_left
        bound = min(stall_seconds, 30) if stuck else stall_seconds
        if now - began > timeout or now - last_change > bound:
            return found, now - began
        time.sleep(0.5)
