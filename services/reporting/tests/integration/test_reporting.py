"""Reporting counts participation from events, exactly once, and never keeps who it was."""

from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import (
    OPERATOR_KEY,
    TcpProxy,
    base_url,
    poll,
    publish_event,
    sample,
    service_test_config,
)
from reporting.adapters.tables import Base, Participation
from reporting.service import ReportingService

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).isoformat()


@pytest.fixture
def reporting(broker, database_url, container_factory):
    config = service_test_config("reporting", broker, database_url)
    container = container_factory(ReportingService, config)
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    yield Reporting(base_url(config), broker, db)
    db.engine.dispose()


class Reporting:
    def __init__(self, url, broker, db):
        self.url, self.broker, self.db = url, broker, db

    def report(self, activity_id="a1"):
        response = requests.get(
            f"{self.url}/reports/participation",
            params={"activity_id": activity_id},
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        )
        assert response.status_code == 200, response.text
        [row] = response.json()["activities"] or [{"participants": 0}]
        return row

    def sign_up(self, registration_id="r1", person_id="p1"):
        return publish_event(
            self.broker,
            "signed_up",
            sample("signed_up", registration_id=registration_id, person_id=person_id),
        )

    def facts(self):
        with self.db() as uow:
            return uow.session.scalars(select(Participation)).all()


def test_a_sign_up_is_counted_once_even_when_delivered_twice(reporting):
    event = reporting.sign_up()
    poll(lambda: reporting.report()["participants"] == 1, what="the count of 1")

    publish_event(reporting.broker, "signed_up", {}, event=event)
    reporting.sign_up(registration_id="r2", person_id="p2")

    poll(lambda: reporting.report()["participants"] == 2, what="the second pupil counted")
    assert len(reporting.facts()) == 2


def test_cancellation_and_attendance_update_the_figures(reporting):
    reporting.sign_up("r1", "p1")
    reporting.sign_up("r2", "p2")
    poll(lambda: reporting.report()["participants"] == 2, what="two sign-ups")

    publish_event(
        reporting.broker,
        "sign_up_cancelled",
        sample("sign_up_cancelled", registration_id="r1", person_id="p1"),
    )
    publish_event(
        reporting.broker,
        "attendance_recorded",
        sample("attendance_recorded", registration_id="r2", person_id="p2", attended=True),
    )

    row = poll(
        lambda: (r := reporting.report())["attended"] == 1 and r["cancelled"] == 1 and r,
        what="cancellation and attendance applied",
    )
    assert row["participants"] == 1


def test_erasure_removes_the_link_to_the_person_but_keeps_the_count(reporting):
    reporting.sign_up("r1", "p1")
    poll(lambda: reporting.report()["participants"] == 1, what="the sign-up")

    publish_event(reporting.broker, "person_erased", {"person_id": "p1", "erased_at": NOW})

    poll(lambda: reporting.facts()[0].person_id is None, what="the person link removed")
    [fact] = reporting.facts()
    assert fact.registration_id is None
    assert reporting.report()["participants"] == 1


def test_the_figures_need_the_operator_key(reporting):
    response = requests.get(f"{reporting.url}/reports/participation")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_after_a_broker_outage_it_is_not_ready_until_its_consumer_is_back(
    broker, tmp_path, container_factory
):
    proxy = TcpProxy(5672)
    proxy.open()
    config = service_test_config("reporting", proxy.url(broker), f"sqlite:///{tmp_path}/r.db")
    container = container_factory(ReportingService, config)
    container.start()
    url = base_url(config)
    try:
        poll(lambda: _readiness(url) == (200, "ok"), what="ready with the consumer connected")

        proxy.close()  # the broker goes away and every connection to it is cut

        poll(lambda: _readiness(url)[0] == 503, what="not ready while the broker is away")
        assert _readiness(url)[1] != "ok"
        proxy.open()
        poll(
            lambda: _readiness(url) == (200, "ok"),
            timeout=60,
            what="ready again once the consumer has reconnected",
        )
    finally:
        if not proxy.is_open:
            proxy.open()
        container.stop()
        proxy.close()


def _readiness(url):
    response = requests.get(f"{url}/readyz", timeout=5)
    return response.status_code, response.json()["checks"].get("consumer")
