"""End to end, with the services as processes: people sign up, cancel, are waitlisted and
erased, the activity is cancelled; every mail arrives once, and no log line of any service names
a person or their address (AVG)."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from lob_testing import (
    OPERATOR_KEY,
    isolated_vhost,
    poll,
    publish_career_event,
    publish_event,
    read_mail,
    sample,
)
from lob_testing.local import LocalSystem

pytestmark = pytest.mark.e2e
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
PEOPLE = [
    ("Wilhelmina", "Oosterhuis", "wilhelmina.oosterhuis@voorbeeld.nl"),
    ("Bartholomeus", "Zwanenburg", "b.zwanenburg@voorbeeld.nl"),
    ("Fenna", "Hoogendoorn", "fenna.h@voorbeeld.nl"),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with isolated_vhost() as amqp_uri:
        running = LocalSystem(tmp_path_factory.mktemp("privacy"), amqp_uri)
        running.env["LOG_LEVEL"] = "DEBUG"
        try:
            running.lob("seed-demo")
            running.start_mail_sink()
            for name in ("registration", "notifications"):
                running.start(name)
            yield running
        finally:
            running.stop_all()


def test_every_mail_once_and_no_person_in_any_log(system):
    publish_career_event(system.url("registration"), "privacy-event")
    signed = []
    for first, last, email in PEOPLE:
        response = requests.post(
            f"{system.url('registration')}/registrations",
            headers=OPERATOR,
            json={
                "activity_id": "privacy-event",
                "first_name": first,
                "last_name": last,
                "email": email,
                "date_of_birth": "2008-05-01",
                "school_id": "het-element",
                "school_year": 4,
            },
        )
        assert response.status_code == 201, response.text
        signed.append(response.json())
    poll(lambda: len(read_mail(system.mail)) == 3, timeout=60, what="three confirmations")

    # the first cancels; the second is put on a waiting list; the activity is then called off
    requests.delete(
        f"{system.url('registration')}/registrations/{signed[0]['registration_id']}",
        headers=OPERATOR,
    ).raise_for_status()
    publish_event(
        system.amqp_uri,
        "waitlisted",
        sample(
            "waitlisted",
            activity_id="privacy-event",
            registration_id=signed[1]["registration_id"],
            person_id=signed[1]["person_id"],
        ),
    )
    poll(lambda: len(read_mail(system.mail)) == 5, timeout=60, what="cancellation + waitlist")
    requests.delete(
        f"{system.url('registration')}/activities/privacy-event", headers=OPERATOR
    ).raise_for_status()
    poll(lambda: len(read_mail(system.mail)) == 7, timeout=60, what="the activity cancelled")
    requests.delete(
        f"{system.url('registration')}/persons/{signed[2]['person_id']}", headers=OPERATOR
    ).raise_for_status()

    kinds = Counter((m["To"], m["Subject"].split(":")[0]) for m in read_mail(system.mail))
    assert kinds == Counter(
        {
            (PEOPLE[0][2], "Aanmelding ontvangen"): 1,
            (PEOPLE[1][2], "Aanmelding ontvangen"): 1,
            (PEOPLE[2][2], "Aanmelding ontvangen"): 1,
            (PEOPLE[0][2], "Afmelding bevestigd"): 1,
            (PEOPLE[1][2], "Wachtlijst"): 1,
            (PEOPLE[1][2], "Gaat niet door"): 1,
            (PEOPLE[2][2], "Gaat niet door"): 1,
        }
    )
    assert len({m["Message-ID"] for m in read_mail(system.mail)}) == 7

    system.stop_all()
    logs = {p.name: p.read_text() for p in system.root.glob("*.log")}
    assert set(logs) >= {"registration.log", "notifications.log"}
    assert all(logs.values())
    for first, last, email in PEOPLE:
        for secret in (first, last, email, email.split("@")[0]):
            found = [name for name, text in logs.items() if secret.lower() in text.lower()]
            assert not found, f"{secret!r} appears in {found}"
