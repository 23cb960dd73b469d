"""Parental consent end to end, the four services as processes and a real SMTP sink: a
14-year-old signs up, the parent's mail arrives, a real headless Chromium opens its link and
clicks; with consent the pupil is planned and mailed, with a refusal the pupil is told and then
gone from every service's database."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from selenium.webdriver.common.by import By

from lob_testing import OPERATOR_KEY, isolated_vhost, poll, publish_career_event
from lob_testing.browser import chromium
from lob_testing.local import LocalSystem

pytestmark = pytest.mark.e2e
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SERVICES = ("registration", "scheduling", "notifications", "reporting")
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
LINK = re.compile(r"https?://\S+/toestemming/[A-Za-z0-9_\-]+")


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with isolated_vhost() as amqp_uri:
        running = LocalSystem(tmp_path_factory.mktemp("consent"), amqp_uri)
        # Links point at this registration; the sweep erases soon after a refusal, once the
        # grace has given notifications (on a busy CI machine too) time to fetch the addresses.
        running.env.update(
            PUBLIC_BASE_URL=running.url("registration"),
            CONSENT_SWEEP_SECONDS="0.5",
            CONSENT_ERASE_GRACE_SECONDS="20",
        )
        try:
            running.lob("seed-demo")
            running.start_mail_sink()
            running.start_all(list(SERVICES))
            publish_career_event(
                running.url("registration"),
                "consent-event",
                capacity=50,
                starts_at=SOON.isoformat(),
                ends_at=(SOON + timedelta(hours=2)).isoformat(),
            )
            yield running
        finally:
            running.stop_all()


def sign_up_a_fourteen_year_old(system: LocalSystem, first: str, email: str, parent: str) -> dict:
    born = date(SOON.year - 14, 1, 15)
    response = requests.post(
        f"{system.url('registration')}/registrations",
        headers=OPERATOR,
        json={
            "activity_id": "consent-event",
            "first_name": first,
            "last_name": "Verhoef",
            "email": email,
            "parent_email": parent,
            "date_of_birth": born.isoformat(),
            "school_id": "het-element",
            "school_year": 2,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def subjects(system: LocalSystem, address: str) -> list[str]:
    return [m["Subject"] for m in system.emails_to(address)]


def consent_link(system: LocalSystem, parent: str) -> str:
    poll(lambda: system.emails_to(parent), timeout=60, what="the parent's consent request")
    [mail] = system.emails_to(parent)
    assert mail["Subject"].startswith("Toestemming gevraagd")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    [link] = set(LINK.findall(text))
    assert link.startswith(system.url("registration"))
    return link


def test_consent_in_the_browser_gets_the_pupil_planned_and_mailed(system):
    pupil, parent = "lotte.verhoef@example.nl", "ouders.verhoef@example.nl"
    sign_up_a_fourteen_year_old(system, "Lotte", pupil, parent)
    link = consent_link(system, parent)
    # Before the parent answers: the pupil is told their parent was asked, nothing more.
    poll(lambda: subjects(system, pupil), timeout=60, what="the pupil's 'parent asked' mail")
    assert not any(
        s.startswith(("Je programma", "Aanmelding ontvangen")) for s in subjects(system, pupil)
    )

    with chromium() as browser:
        browser.get(link)
        browser.find_element(By.ID, "give").click()
        poll(lambda: "U hebt toestemming gegeven" in browser.page_source, what="the thank-you")

    poll(
        lambda: any(s.startswith("Je programma") for s in subjects(system, pupil)),
        timeout=90,
        what="the pupil's place to be confirmed (planned after consent)",
    )
    mailed = subjects(system, pupil)
    assert sum(s.startswith("Je programma") for s in mailed) == 1
    assert sum(s.startswith("Aanmelding ontvangen") for s in mailed) == 1
    assert len(system.emails_to(parent)) == 2  # the request and the 'consent recorded' mail


def test_a_refusal_tells_the_pupil_and_erases_them_from_every_service(system):
    pupil, parent = "mirthe.verhoef@example.nl", "familie.verhoef@example.nl"
    sign_up_a_fourteen_year_old(system, "Mirthe", pupil, parent)
    link = consent_link(system, parent)

    with chromium() as browser:
        browser.get(link)
        browser.find_element(By.ID, "refuse").click()
        # Not "geen toestemming": the refuse button itself says so, and the browser would be
        # closed before its POST was sent.
        poll(
            lambda: "U hebt geen toestemming gegeven" in browser.page_source,
            what="the refusal page",
        )

    poll(
        lambda: any(s.startswith("Je aanmelding is vervallen") for s in subjects(system, pupil)),
        timeout=60,
        what="the pupil's mail that the sign-up is void",
    )
    assert not any(s.startswith("Je programma") for s in subjects(system, pupil))

    def nowhere() -> bool:
        return not any(traces(system, name) for name in SERVICES)

    poll(nowhere, timeout=90, what="the pupil to be erased from every service's database")
    # The mails themselves are in the sink (the mailbox), not in any service.
    assert subjects(system, pupil)


def traces(system: LocalSystem, service: str) -> list[str]:
    """What of Mirthe a service's database still holds (its logical content, then its file)."""
    path = system.root / f"{service}.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = "\n".join(connection.iterdump())
    raw = path.read_bytes()
    secrets = ("Mirthe", "mirthe.verhoef@example.nl", "familie.verhoef@example.nl")
    return [s for s in secrets if s in dump or s.encode() in raw]
