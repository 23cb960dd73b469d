"""A request or an event can be followed through the logs by its correlation id."""

import logging

import pytest
import requests

from lob_common import contracts
from lob_common.contracts import new_event
from lob_common.logging import CorrelationFilter
from lob_common.messaging import event_handler
from lob_common.providers import ServiceBase, http
from lob_testing import base_url, free_port, poll, publish_event, sample

pytestmark = pytest.mark.integration
log = logging.getLogger("lob.test.correlation")


class Traced(ServiceBase):
    name = "testsvc"
    db = None

    @http("POST", "/work")
    def work(self, request):
        log.info("working")
        return "done"

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event):
        log.info("handling")


class Captured(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
        self.addFilter(CorrelationFilter("testsvc"))

    def emit(self, record):
        self.records.append(record)

    def ids_of(self, message):
        return [r.correlation_id for r in self.records if r.getMessage() == message]


@pytest.fixture
def traced(broker, container_factory, monkeypatch):
    key = ("registration", "signed_up")
    monkeypatch.setitem(
        contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], "testsvc.handle_signed_up")
    )
    captured = Captured()
    logging.getLogger().addHandler(captured)
    logging.getLogger("lob").setLevel(logging.INFO)
    config = {"AMQP_URI": broker, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
    container = container_factory(Traced, config)
    container.start()
    yield base_url(config), captured
    logging.getLogger().removeHandler(captured)


def test_the_callers_id_is_logged_and_returned(traced):
    url, captured = traced

    response = requests.post(f"{url}/work", headers={"X-Correlation-ID": "school-42-batch-7"})

    assert response.headers["X-Correlation-ID"] == "school-42-batch-7"
    assert captured.ids_of("working") == ["school-42-batch-7"]


def test_without_an_id_a_new_one_is_made_and_returned(traced):
    url, captured = traced

    response = requests.post(f"{url}/work")

    given = response.headers["X-Correlation-ID"]
    assert len(given) == 36
    assert captured.ids_of("working") == [given]


def test_an_event_handler_logs_under_the_events_correlation_id(traced, broker):
    _, captured = traced
    event = new_event("signed_up", sample("signed_up"), correlation_id="from-registration")

    publish_event(broker, "signed_up", {}, event=event)

    poll(lambda: captured.ids_of("handling"), what="the handler to log")
    assert captured.ids_of("handling") == ["from-registration"]
