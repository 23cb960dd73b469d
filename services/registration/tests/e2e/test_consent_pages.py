"""A parent opens the consent link in a real (headless, phone-sized) Chromium: consent makes
the pupil's sign-up active and announced; a refusal erases the pupil from registration's
database (its dump and its file hold neither the name nor the address afterwards).

The mail itself is notifications' work; the link is the one its `contact` RPC hands out.
"""

import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook
from selenium.webdriver.common.by import By
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, poll, publish_career_event, service_test_config
from lob_testing.browser import chromium
from registration.adapters.tables import Base, Person, Registration
from registration.demo import seed
from registration.service import RegistrationService

pytestmark = pytest.mark.e2e
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


@pytest.fixture
def service(broker, tmp_path, container_factory):
    path = tmp_path / "registration.db"
    config = service_test_config("registration", broker, f"sqlite:///{path}")
    # Links point at this very service; the sweep runs often and erases at once after a refusal.
    config.update(
        PUBLIC_BASE_URL=base_url(config), CONSENT_SWEEP_SECONDS=0.2, CONSENT_ERASE_GRACE_SECONDS=0
    )
    container = container_factory(RegistrationService, config)
    container.start()
    db = DatabaseHandle(make_engine(config["DATABASE_URL"]), Base.metadata)
    seed(db, date.today())
    publish_career_event(
        base_url(config),
        "dag",
        starts_at=SOON.isoformat(),
        ends_at=(SOON + timedelta(hours=2)).isoformat(),
    )
    yield container, db, base_url(config), path
    db.engine.dispose()


def sign_up_a_fourteen_year_old(url, first_name, email):
    import requests

    # 14 on the activity's day; day 28 at most, as SOON can be 29 February (from 30 January of
    # a leap year) and replace(year=...) then fails in a common year.
    born = SOON.date().replace(year=SOON.year - 14, day=min(SOON.day, 28)) - timedelta(days=10)
    response = requests.post(
        f"{url}/registrations",
        headers=OPERATOR,
        json={
            "activity_id": "dag",
            "first_name": first_name,
            "last_name": "Verhoef",
            "email": email,
            "parent_email": "ouder.verhoef@example.nl",
            "date_of_birth": born.isoformat(),
            "school_id": "farel-college",
            "school_year": 2,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def consent_link(container, registration_id):
    with entrypoint_hook(container, "contact") as contact:
        return contact(registration_id)["links"]["consent"]


def events(db, event_type):
    outbox = db.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        return [
            row.body["payload"]
            for row in connection.execute(
                select(outbox.c.body).where(outbox.c.event_type == event_type)
            )
        ]


def test_a_parent_gives_consent_in_the_browser_and_the_sign_up_becomes_active(service):
    container, db, url, _ = service
    pupil = sign_up_a_fourteen_year_old(url, "Lotte", "lotte.verhoef@example.nl")
    link = consent_link(container, pupil["registration_id"])

    with chromium() as browser:
        browser.get(link)
        assert "Toestemming voor Lotte" in browser.title
        assert browser.find_element(By.ID, "refuse").is_displayed()
        browser.find_element(By.ID, "give").click()
        poll(lambda: "U hebt toestemming gegeven" in browser.page_source, what="the thank-you")
        withdraw = browser.find_element(By.ID, "withdraw")
        # a phone-sized page: the buttons fit the screen, no sideways scrolling
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= browser.execute_script("return window.innerWidth")
        assert withdraw.is_displayed()

    with db() as uow:
        registration = uow.session.get(Registration, pupil["registration_id"])
        assert (registration.status, registration.consent) == ("signed_up", "given")
    assert [e["registration_id"] for e in events(db, "signed_up")] == [pupil["registration_id"]]
    assert [e["registration_id"] for e in events(db, "consent_given")] == [pupil["registration_id"]]


def test_a_refusal_in_the_browser_erases_the_pupil_from_the_database(service):
    container, db, url, path = service
    pupil = sign_up_a_fourteen_year_old(url, "Mirthe", "mirthe.verhoef@example.nl")
    link = consent_link(container, pupil["registration_id"])

    with chromium() as browser:
        browser.get(link)
        browser.find_element(By.ID, "refuse").click()
        # Not "geen toestemming": the refuse button itself says so, and the browser would be
        # closed before its POST was sent.
        poll(
            lambda: "U hebt geen toestemming gegeven" in browser.page_source,
            what="the refusal page",
        )

    def erased():
        with db() as uow:
            return uow.session.get(Person, pupil["person_id"]) is None

    poll(erased, what="the sweep to erase the pupil after the grace")
    assert [e["person_id"] for e in events(db, "person_erased")] == [pupil["person_id"]]
    assert events(db, "signed_up") == []
    db.engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = "\n".join(connection.iterdump())
    raw = path.read_bytes()
    for secret in ("Mirthe", "mirthe.verhoef@example.nl", "ouder.verhoef@example.nl"):
        assert secret not in dump
        assert secret.encode() not in raw
