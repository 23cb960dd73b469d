"""End to end: the four services as separate `nameko run` processes, a local SMTP sink, the real
broker. A pupil signs up over HTTP; the email arrives and the report counts one participant.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange

from lob_cli.local import LocalSystem
from lob_cli.services import SERVICES
from lob_common.testing import (
    OPERATOR_KEY,
    isolated_vhost,
    poll,
)

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Everything but scheduling runs; a test starts scheduling itself (late, on purpose)."""
    with isolated_vhost() as amqp_uri:
        running = LocalSystem(tmp_path_factory.mktemp("e2e"), amqp_uri)
        try:
            running.lob("seed-demo")
            running.start_mail_sink()
            for name in ("registration", "notifications", "reporting"):
                running.start(name)
            yield running
        finally:
            running.stop_all()


def publish_activity(system: LocalSystem, ident: str) -> None:
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


def sign_up(system: LocalSystem, activity: str, email: str) -> dict:
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


def participants(system: LocalSystem, activity: str) -> int:
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


def _published_signed_up(system: LocalSystem, registration_id: str) -> dict:
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
        lone = LocalSystem(tmp_path, amqp_uri)
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
