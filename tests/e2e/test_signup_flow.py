"""End to end: the four services as separate `nameko run` processes, a local SMTP sink, the real
broker. A pupil signs up over HTTP; the email arrives and the report counts one participant.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange

from lob_cli.services import SERVICES
from lob_common.testing import (
    OPERATOR_KEY,
    free_port,
    isolated_vhost,
    poll,
    port_open,
    read_mail,
)

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


class System:
    """The services as processes, with their ports, databases and the mail folder."""

    def __init__(self, root: Path, amqp_uri: str) -> None:
        self.root = root
        self.mail = root / "mail"
        self.amqp_uri = amqp_uri
        self.ports = {name: free_port() for name in SERVICES}
        self.smtp_port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = dict(
            os.environ,
            AMQP_URI=amqp_uri,
            LOB_OPERATOR_KEY=OPERATOR_KEY,
            LOG_FORMAT="json",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.smtp_port),
            EVENT_RETRY_BASE_SECONDS="0.1",
            PYTHONWARNINGS="ignore",
        )
        for name, port in self.ports.items():
            self.env[f"{name.upper()}_HTTP"] = f"127.0.0.1:{port}"
            self.env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{root}/{name}.db"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def lob(self, *args: str) -> None:
        subprocess.run(
            [str(BIN / "lob"), *args], env=self.env, cwd=self.root, check=True, capture_output=True
        )

    def start_mail_sink(self) -> None:
        self.processes["mail"] = subprocess.Popen(
            [str(BIN / "lob"), "mail-sink", "--dir", str(self.mail), "--port", str(self.smtp_port)],
            env=self.env,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        poll(lambda: port_open(self.smtp_port), what="the SMTP sink")

    def start(self, name: str) -> None:
        info = SERVICES[name]
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [str(BIN / "nameko"), "run", "--config", str(info.config_path), info.entry],
            env=self.env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        poll(lambda: self._ready(name), timeout=60, what=f"{name} to be ready")

    def _ready(self, name: str) -> bool:
        if self.processes[name].poll() is not None:
            raise AssertionError(f"{name} exited: {(self.root / f'{name}.log').read_text()}")
        try:
            return requests.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def emails_to(self, address: str) -> list:
        return read_mail(self.mail, to=address)

    def consumed(self, service: str, handler: str, outcome: str) -> float:
        text = requests.get(f"{self.url(service)}/metrics", timeout=5).text
        pattern = (
            rf'lob_events_consumed_total\{{event_type="signed_up",handler="{handler}",'
            rf'outcome="{outcome}"\}} ([0-9.]+)'
        )
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Everything but scheduling runs; a test starts scheduling itself (late, on purpose)."""
    with isolated_vhost() as amqp_uri:
        running = System(tmp_path_factory.mktemp("e2e"), amqp_uri)
        try:
            running.lob("seed-demo")
            running.start_mail_sink()
            for name in ("registration", "notifications", "reporting"):
                running.start(name)
            yield running
        finally:
            running.stop_all()


def publish_activity(system: System, ident: str) -> None:
    soon = datetime.now(UTC) + timedelta(days=40)
    response = requests.post(
        f"{system.url('registration')}/activities",
        headers=OPERATOR,
        json={
            "id": ident,
            "kind": "career_event",
            "title": "Loopbaanevenement",
            "starts_at": soon.isoformat(),
            "ends_at": (soon + timedelta(hours=2)).isoformat(),
            "location": "Amersfoort",
        },
    )
    assert response.status_code == 201, response.text


def sign_up(system: System, activity: str, email: str) -> dict:
    response = requests.post(
        f"{system.url('registration')}/registrations",
        headers=OPERATOR,
        json={
            "activity_id": activity,
            "first_name": "Noor",
            "last_name": "Bakker",
            "email": email,
            "date_of_birth": "2009-05-01",
            "school_id": "het-element",
            "school_year": 4,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def participants(system: System, activity: str) -> int:
    report = requests.get(
        f"{system.url('reporting')}/reports/participation",
        params={"activity_id": activity},
        headers=OPERATOR,
        timeout=5,
    ).json()
    return sum(a["participants"] for a in report["activities"])


def test_a_sign_up_is_mailed_counted_and_reaches_a_scheduler_that_starts_later(system):
    publish_activity(system, "e2e-signup")
    sign_up(system, "e2e-signup", "noor@example.nl")

    [mail] = poll(lambda: system.emails_to("noor@example.nl"), what="the confirmation email")
    assert mail["Subject"] == "Aanmelding ontvangen: Loopbaanevenement"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert body.startswith("Beste Noor,")
    assert "Amersfoort" in body
    assert [p.get_content_type() for p in mail.iter_attachments()] == ["text/calendar"]
    assert poll(lambda: participants(system, "e2e-signup") == 1, what="a count of 1")

    # Scheduling has never run: its queue was declared by registration, so nothing was lost.
    system.start("scheduling")
    poll(
        lambda: system.consumed("scheduling", "scheduling.handle_signed_up", "processed") >= 1,
        what="scheduling to process the sign-up made before it started",
    )


def test_the_same_message_delivered_twice_changes_nothing(system):
    publish_activity(system, "e2e-twice")
    registration = sign_up(system, "e2e-twice", "twice@example.nl")
    poll(lambda: system.emails_to("twice@example.nl"), what="the first email")
    poll(lambda: participants(system, "e2e-twice") == 1, what="a count of 1")
    before = {
        s: system.consumed(s, f"{s}.handle_signed_up", "duplicate")
        for s in ("notifications", "reporting")
    }

    body = _published_signed_up(system, registration["registration_id"])
    Publisher(system.amqp_uri).publish(
        body, exchange=get_event_exchange("registration", {}), routing_key="signed_up"
    )

    for service, count in before.items():
        poll(
            lambda s=service, c=count: system.consumed(s, f"{s}.handle_signed_up", "duplicate") > c,
            what=f"{service} to see the duplicate",
        )
    assert len(system.emails_to("twice@example.nl")) == 1
    assert participants(system, "e2e-twice") == 1


def _published_signed_up(system: System, registration_id: str) -> dict:
    """The exact message registration published, taken from its outbox."""
    with sqlite3.connect(system.root / "registration.db") as connection:
        rows = connection.execute(
            "SELECT body FROM outbox WHERE event_type = 'signed_up' AND published_at IS NOT NULL"
        ).fetchall()
    bodies = [json.loads(row[0]) for row in rows]
    [body] = [b for b in bodies if b["payload"]["registration_id"] == registration_id]
    return body


def test_every_service_stops_promptly_on_sigterm(tmp_path):
    with isolated_vhost() as amqp_uri:
        lone = System(tmp_path, amqp_uri)
        lone.start_mail_sink()
        try:
            for name in SERVICES:
                lone.start(name)
            time.sleep(1)  # let them go idle: an idle eventlet hub is the slow case
            for name in SERVICES:
                started = time.monotonic()
                lone.processes[name].send_signal(signal.SIGTERM)
                lone.processes[name].wait(timeout=30)
                assert time.monotonic() - started < 10, f"{name} took too long to stop"
        finally:
            lone.stop_all()


def test_a_sign_up_made_while_reporting_is_down_is_counted_after_its_restart(system):
    """A stopped consumer blocks nobody, and loses nothing: its queue keeps the event."""
    system.processes["reporting"].terminate()
    system.processes["reporting"].wait(timeout=15)
    publish_activity(system, "e2e-later")
    sign_up(system, "e2e-later", "later@example.nl")

    system.start("reporting")
    assert poll(
        lambda: participants(system, "e2e-later") == 1,
        what="reporting to catch up after its restart",
    )
