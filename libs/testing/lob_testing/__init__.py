"""Helpers for the tests of every service: isolated vhosts and databases, polling, ports.

Tests poll with a deadline instead of sleeping: they finish as soon as the effect is there and
fail with a clear message when it never comes.
"""

from __future__ import annotations

import copy
import os
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import requests

RABBIT_HOST = os.environ.get("LOB_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_API = os.environ.get("LOB_TEST_RABBIT_API", f"http://{RABBIT_HOST}:15672/api")
PG_ADMIN_URL = os.environ.get("LOB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OPERATOR_KEY = "test-operator-key"

T = TypeVar("T")


# One valid payload per event type: the contract tests round-trip them, service tests start from
# them with `sample(event_type, **changes)`.
AT = "2030-12-10T13:00:00+00:00"
SAMPLES = {
    "activity_published": {
        "activity_id": "orientatiedag-1",
        "kind": "orientation_day",
        "title": "Oriëntatiedag 1",
        "starts_at": AT,
        "ends_at": "2030-12-10T15:00:00+00:00",
        "location": "Amersfoort",
        "workshops": [{"workshop_id": "w1", "title": "Techniek", "capacity": 16}],
        "sessions": [{"session_id": "S01", "title": "Zorg", "capacity": 30, "rounds": [1, 2]}],
        "rounds": [{"round": 1, "starts_at": AT, "ends_at": AT}],
        "buses": [{"bus_id": "bus-1", "seats": 24}],
        "stops": [{"stop_id": "ede", "name": "Aeres MBO Ede", "visit_minutes": 60}],
    },
    "activity_cancelled": {
        "activity_id": "a1",
        "cancelled_at": AT,
        "reason": "te weinig aanmeldingen",
    },
    "school_registered": {
        "school_id": "farel-college",
        "name": "Farel College",
        "kind": "vmbo",
        "municipality": "Amersfoort",
    },
    "signed_up": {
        "registration_id": "r1",
        "activity_id": "a1",
        "activity_kind": "infoday",
        "activity_starts_at": AT,
        "person_id": "p1",
        "role": "pupil",
        "school_id": "farel-college",
        "school_year": 3,
        "age_band": "12-15",
        "phase": "vo",
        "municipality": "Amersfoort",
        "consent_required": True,
        "preferences": {"choices": ["S01", "S02", "S03"], "backup": "S04"},
        "signed_up_at": AT,
    },
    "sign_up_cancelled": {
        "registration_id": "r1",
        "activity_id": "a1",
        "person_id": "p1",
        "cancelled_at": AT,
        "reason": "ziek",
    },
    "consent_requested": {
        "registration_id": "r1",
        "activity_id": "a1",
        "person_id": "p1",
        "requested_at": AT,
        "expires_at": "2030-12-24T13:00:00+00:00",
    },
    "consent_given": {
        "person_id": "p1",
        "registration_id": "r1",
        "given_at": AT,
        "activity_id": "a1",
    },
    "consent_refused": {
        "registration_id": "r1",
        "activity_id": "a1",
        "person_id": "p1",
        "refused_at": AT,
        "reason": "refused",
    },
    "attendance_recorded": {
        "registration_id": "r1",
        "activity_id": "a1",
        "person_id": "p1",
        "attended": True,
        "recorded_at": AT,
    },
    "person_erased": {"person_id": "p1", "erased_at": AT},
    "participation_imported": {
        "record_id": "h1",
        "activity_id": "a1",
        "activity_kind": "bus_tour",
        "activity_starts_at": AT,
        "role": "professional",
        "school_id": "farel-college",
        "age_band": None,
        "phase": None,
        "municipality": "Amersfoort",
        "attended": True,
        "recorded_at": AT,
    },
    "programme_assigned": {
        "activity_id": "a1",
        "registration_id": "r1",
        "person_id": "p1",
        "plan_version": 1,
        "sessions": [{"round": 1, "session_id": "S01", "title": "Zorg"}],
    },
    "programme_changed": {
        "activity_id": "a1",
        "registration_id": "r1",
        "person_id": "p1",
        "plan_version": 2,
        "previous_plan_version": 1,
        "workshop": {"workshop_id": "w1"},
    },
    "waitlisted": {
        "activity_id": "a1",
        "registration_id": "r1",
        "person_id": "p1",
        "position": 3,
        "item_id": "w1",
    },
    "schedule_published": {"activity_id": "a1", "plan_version": 1, "assigned": 1300},
    "notification_sent": {
        "notification_id": "n1",
        "template": "sign_up_confirmation",
        "person_id": "p1",
        "sent_at": AT,
    },
    "notification_failed": {
        "notification_id": "n1",
        "template": "sign_up_confirmation",
        "reason": "550 no such user",
        "failed_at": AT,
    },
}


def sample(event_type: str, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(SAMPLES[event_type]), **changes}


def poll(
    check: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "the expected state",
) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def isolated_vhost() -> Iterator[str]:
    vhost = f"lobtest-{uuid.uuid4().hex[:12]}"
    _create_vhost(vhost)
    try:
        yield f"amqp://guest:guest@{RABBIT_HOST}:5672/{quote(vhost, safe='')}"
    finally:
        _delete_vhost(vhost)


def _create_vhost(vhost: str) -> None:
    try:
        auth = ("guest", "guest")
        requests.put(f"{RABBIT_API}/vhosts/{vhost}", auth=auth, timeout=10).raise_for_status()
        requests.put(
            f"{RABBIT_API}/permissions/{vhost}/guest",
            auth=auth,
            timeout=10,
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
    except requests.ConnectionError:
        # No management plugin: the CLI does the same, slower.
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
        )


def vhost_of(amqp_uri: str) -> str:
    """The vhost name in an AMQP URI (percent-decoded)."""
    from urllib.parse import unquote

    return unquote(amqp_uri.rsplit("/", 1)[1]) or "/"


def vhost_queues(amqp_uri: str) -> list[dict[str, Any]]:
    """Every queue of the URI's vhost with its counts, from the management API."""
    vhost = quote(vhost_of(amqp_uri), safe="")
    try:
        response = requests.get(f"{RABBIT_API}/queues/{vhost}", auth=("guest", "guest"), timeout=10)
    except requests.ConnectionError:
        # No management plugin: the CLI gives the same counts (and without the API's lag).
        listed = subprocess.run(
            [
                *("rabbitmqctl", "-q", "list_queues", "-p", vhost_of(amqp_uri)),
                *("--no-table-headers", "name", "messages"),
                *("messages_ready", "messages_unacknowledged"),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        fields = ("messages", "messages_ready", "messages_unacknowledged")
        return [
            {"name": name, **dict(zip(fields, map(int, counts), strict=True))}
            for name, *counts in (line.split("\t") for line in listed.splitlines() if line)
        ]
    response.raise_for_status()
    return response.json()


def close_connections(amqp_uri: str) -> int:
    """Close every client connection to the URI's vhost, as a broker restart does; return count.

    The broker sends each client connection.close (320 CONNECTION_FORCED), then drops it. Only
    this vhost's clients notice: other tests on the machine keep theirs.
    """
    auth = ("guest", "guest")
    vhost = quote(vhost_of(amqp_uri), safe="")
    connections = requests.get(f"{RABBIT_API}/vhosts/{vhost}/connections", auth=auth, timeout=10)
    connections.raise_for_status()
    for connection in connections.json():
        requests.delete(
            f"{RABBIT_API}/connections/{quote(connection['name'], safe='')}",
            auth=auth,
            headers={"X-Reason": "test: broker restart"},
            timeout=10,
        )
    return len(connections.json())


def _delete_vhost(vhost: str) -> None:
    try:
        requests.delete(f"{RABBIT_API}/vhosts/{vhost}", auth=("guest", "guest"), timeout=10)
    except requests.ConnectionError:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)


@contextmanager
def isolated_postgres_database() -> Iterator[str]:
    import psycopg2

    name = f"lobtest_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            # FORCE (PostgreSQL 13+) ends the test's connections and drops in one step; a pool
            # could reconnect between a separate terminate and the drop.
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def migrated_database(url: str, migrations: Any, metadata: Any) -> Iterator[Any]:
    """A service's database at `url`, migrated to head, as a lob_common DatabaseHandle; its
    engine is disposed afterwards."""
    from lob_common.db import DatabaseHandle, make_engine, migrate

    engine = make_engine(url)
    try:
        migrate(engine, migrations)
        yield DatabaseHandle(engine, metadata)
    finally:
        engine.dispose()


def service_test_config(
    service: str, amqp_uri: str, database_url: str, **overrides: Any
) -> dict[str, Any]:
    """A service's own config.yml with this test's broker, database and a free HTTP port."""
    from lob_common.config import service_config

    config = service_config(service)
    config.pop("LOGGING", None)
    config.update(
        {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": database_url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "OPERATOR_KEY": OPERATOR_KEY,
            "EVENT_RETRY_BASE_SECONDS": 0.05,
            "EVENT_MAX_ATTEMPTS": 3,
            # Tests knock with wrong keys on purpose (authorisation matrices, generated
            # requests); the guard's own test sets a small burst to see it bite.
            "HTTP_UNAUTHENTICATED_BURST": 10_000,
        }
    )
    config.update(overrides)
    return config


def base_url(config: dict[str, Any]) -> str:
    return f"http://{config['WEB_SERVER_ADDRESS']}"


class TcpProxy:
    """A switchable TCP forwarder to a real server, to test 'the broker is away, then back'.

    While closed, connecting to its port is refused; `open()` starts forwarding to the target,
    `close()` stops listening and cuts every forwarded connection (like a broker restart);
    `cut()` does the same at an exact moment, with a reset.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.target = (target_host, target_port)
        self._server: Any = None
        self._threads: list[Any] = []
        self._sockets: list[Any] = []

    @property
    def is_open(self) -> bool:
        return self._server is not None

    def url(self, vhost_uri: str) -> str:
        """The given AMQP URI, pointed at this proxy instead."""
        return vhost_uri.replace(f":{self.target[1]}/", f":{self.port}/", 1)

    def open(self) -> None:
        import eventlet

        self._server = eventlet.listen(("127.0.0.1", self.port))
        self._threads.append(eventlet.spawn(self._accept))

    def close(self) -> None:
        for thread in self._threads:
            thread.kill()
        for sock in [*self._sockets, self._server]:
            if sock is not None:
                sock.close()
        self._threads, self._sockets, self._server = [], [], None

    def cut(self) -> None:
        """Reset every forwarded connection (TCP RST) and stop listening, without yielding.

        Unlike close(), the caller's green thread carries on before any other has run, so a test
        can drop the connection at an exact moment (say, as a handler commits) and the code under
        test meets the dead socket before its consumer thread has noticed: the order a real
        broker outage takes under load.
        """
        import eventlet

        sockets, threads = [*self._sockets, self._server], self._threads
        self._threads, self._sockets, self._server = [], [], None
        for sock in sockets:
            if sock is None:
                continue
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        eventlet.spawn_n(lambda: [thread.kill() for thread in threads])

    def _accept(self) -> None:
        import eventlet

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # cut(): the listening socket is closed
                return
            upstream = eventlet.connect(self.target)
            self._sockets += [client, upstream]
            pair: dict[str, Any] = {"sockets": (client, upstream), "ended": False}
            there = eventlet.spawn(self._pipe, client, upstream)
            back = eventlet.spawn(self._pipe, upstream, client)
            there.link(self._ended, pair, back)
            back.link(self._ended, pair, there)
            self._threads += [there, back]

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        with suppress(OSError, EOFError):  # the other side went away
            while data := source.recv(65536):
                sink.sendall(data)

    @staticmethod
    def _ended(_thread: Any, pair: dict[str, Any], peer: Any) -> None:
        """One direction ended: stop the other, then close both sockets (in that order).

        The other direction waits in recv on one of the sockets; closing it under that wait
        would leave eventlet's hub listening on a closed descriptor, and the next socket that gets
        the same number (a database connection of the test, say) fails with "Second simultaneous
        read on fileno N".
        """
        if pair["ended"]:
            return
        pair["ended"] = True
        peer.kill()
        for sock in pair["sockets"]:
            with suppress(OSError):
                sock.close()


def publish_event(
    amqp_uri: str, event_type: str, payload: dict[str, Any], event: Any = None
) -> Any:
    """Publish an event as its producer would (same exchange and envelope); returns it."""
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    from lob_common.contracts import dump_event, new_event

    event = event or new_event(event_type, payload)
    Publisher(amqp_uri).publish(
        dump_event(event), routing_key=event_type, exchange=get_event_exchange(event.producer, {})
    )
    return event


def publish_career_event(
    registration_url: str,
    ident: str,
    *,
    days_ahead: int = 40,
    accept: tuple[int, ...] = (201,),
    **fields: Any,
) -> dict[str, Any]:
    """Publish a two-hour career event through registration's API as an operator, starting
    `days_ahead` days from now (open for sign-up); extra `fields` (capacity, ...) go into the
    body. Fails unless the answer's status is one of `accept`; returns the activity."""
    starts = datetime.now(UTC) + timedelta(days=days_ahead)
    response = requests.post(
        f"{registration_url}/activities",
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        json={
            "id": ident,
            "kind": "career_event",
            "title": "Loopbaanevenement",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "location": "Amersfoort",
            **fields,
        },
        timeout=30,
    )
    assert response.status_code in accept, f"{response.status_code} {response.text}"
    return response.json()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


@contextmanager
def mail_sink(folder: Any, port: int) -> Iterator[None]:
    """The `lob mail-sink` SMTP server as a process, saving each message to `folder`."""
    import sys
    from pathlib import Path

    lob = Path(sys.executable).parent / "lob"
    process = subprocess.Popen(
        [str(lob), "mail-sink", "--dir", str(folder), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll(lambda: port_open(port), what="the SMTP sink to listen")
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def read_mail(folder: Any, to: str | None = None) -> list[Any]:
    """The messages the sink saved (parsed), optionally only those to one address."""
    from email import policy
    from email.parser import BytesParser
    from pathlib import Path

    parsed = [
        BytesParser(policy=policy.default).parsebytes(p.read_bytes())
        for p in sorted(Path(folder).glob("*.eml"))
    ]
    return [m for m in parsed if to is None or m["To"] == to]
