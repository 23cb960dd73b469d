"""Poison: messages no retry can fix are parked with their reason, and the consumer goes on.

A malformed message, one of an unknown major version and one whose handler always raises each
end in the handler's dead-letter queue with the reason, counted in the metrics, while the good
message behind them is handled. `lob dead-letters list` says "none" when nothing is parked.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from click.testing import CliRunner
from kombu import Connection
from prometheus_client import REGISTRY

from lob_cli.main import lob
from lob_common import contracts
from lob_common.contracts import dump_event, new_event, queue_name
from lob_common.messaging import dead_letter_counts, event_handler, list_dead_letters
from lob_testing import poll, sample

pytestmark = pytest.mark.integration

HANDLER = "testsvc.handle_signed_up"
QUEUE = queue_name("registration", "signed_up", HANDLER)


class Picky:
    name = "testsvc"
    handled: ClassVar[list[str]] = []

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event):
        if event.payload["registration_id"] == "poison":
            raise ValueError("this sign-up can never be handled")
        Picky.handled.append(event.payload["registration_id"])


def _parked() -> float:
    value = REGISTRY.get_sample_value(
        "lob_events_consumed_total",
        {"event_type": "signed_up", "handler": HANDLER, "outcome": "dead_lettered"},
    )
    return value or 0.0


def test_poison_is_parked_with_its_reason_and_the_next_message_is_handled(
    broker, container_factory, monkeypatch
):
    key = ("registration", "signed_up")
    monkeypatch.setitem(contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], HANDLER))
    Picky.handled = []
    config = {"AMQP_URI": broker, "EVENT_MAX_ATTEMPTS": 2, "EVENT_RETRY_BASE_SECONDS": 0.05}
    container_factory(Picky, config).start()
    parked_before = _parked()

    newer = dump_event(new_event("signed_up", sample("signed_up", registration_id="r-new")))
    newer["schema_version"] = "2.0"
    poison = dump_event(new_event("signed_up", sample("signed_up", registration_id="poison")))
    good = dump_event(new_event("signed_up", sample("signed_up", registration_id="r-good")))
    with Connection(broker) as connection:
        queue = connection.SimpleQueue(QUEUE)
        for body in ({"event_type": "signed_up", "payload": {}}, newer, poison, good):
            queue.put(body, serializer="json")

    poll(lambda: Picky.handled == ["r-good"], what="the good message handled after the poison")
    poll(
        lambda: dead_letter_counts(broker, "testsvc").get(f"{QUEUE}.dead") == 3,
        what="the three poison messages parked",
    )
    reasons = [letter.error for letter in list_dead_letters(broker, "testsvc")]
    for reason in (
        "invalid envelope",
        "different major version",
        "ValueError: this sign-up can never be handled",
    ):
        assert [r for r in reasons if reason in r], (reason, reasons)
    assert _parked() - parked_before == 3


def test_the_dead_letter_list_says_none_when_nothing_is_parked(broker, monkeypatch):
    monkeypatch.setenv("AMQP_URI", broker)
    result = CliRunner().invoke(lob, ["dead-letters", "list", "reporting"])
    assert result.exit_code == 0, result.output
    assert result.output == "reporting: none\n"
