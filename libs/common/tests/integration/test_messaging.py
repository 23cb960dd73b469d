"""Consuming: bounded retries, dead letters with the reason, replay; against the real broker."""

from typing import ClassVar

import pytest
from kombu import Connection

from lob_common import contracts
from lob_common.contracts import dump_event, new_event, queue_name
from lob_common.messaging import (
    dead_letter_counts,
    event_handler,
    list_dead_letters,
    replay_dead_letters,
)
from lob_testing import poll, sample

pytestmark = pytest.mark.integration

QUEUE = queue_name("registration", "signed_up", "testsvc.handle_signed_up")
PAYLOAD = sample("signed_up")


class Flaky:
    """A handler that fails while `broken` is set; records what it processed."""

    name = "testsvc"
    broken = True
    attempts: ClassVar[list[str]] = []
    processed: ClassVar[list[str]] = []

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event):
        Flaky.attempts.append(event.event_id)
        if Flaky.broken:
            raise RuntimeError("database on fire")
        Flaky.processed.append(event.event_id)


@pytest.fixture
def flaky(broker, container_factory, monkeypatch):
    key = ("registration", "signed_up")
    monkeypatch.setitem(
        contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], "testsvc.handle_signed_up")
    )
    Flaky.broken, Flaky.attempts, Flaky.processed = True, [], []
    config = {"AMQP_URI": broker, "EVENT_MAX_ATTEMPTS": 3, "EVENT_RETRY_BASE_SECONDS": 0.05}
    container = container_factory(Flaky, config)
    container.start()
    return container


def _send(amqp_uri, body):
    with Connection(amqp_uri) as connection:
        connection.SimpleQueue(QUEUE).put(body, serializer="json")


def test_a_failing_handler_is_retried_then_parked_with_the_error(flaky, broker):
    event = new_event("signed_up", PAYLOAD)
    _send(broker, dump_event(event))

    poll(
        lambda: dead_letter_counts(broker, "testsvc").get(f"{QUEUE}.dead") == 1,
        what="the message in the dead-letter queue",
    )
    assert Flaky.attempts == [event.event_id] * 3
    [letter] = list_dead_letters(broker, "testsvc")
    assert letter.event_id == event.event_id
    assert letter.attempts == 3
    assert "database on fire" in letter.error
    # Reading the list does not remove the message
    assert dead_letter_counts(broker, "testsvc")[f"{QUEUE}.dead"] == 1


def test_a_malformed_message_is_parked_at_once_and_never_handled(flaky, broker):
    _send(broker, {"event_type": "signed_up", "payload": {}})

    poll(
        lambda: dead_letter_counts(broker, "testsvc").get(f"{QUEUE}.dead") == 1,
        what="the malformed message parked",
    )
    assert Flaky.attempts == []
    [letter] = list_dead_letters(broker, "testsvc")
    assert "invalid envelope" in letter.error
    assert letter.attempts == 0


def test_replay_after_the_fix_processes_the_parked_message(flaky, broker):
    event = new_event("signed_up", PAYLOAD)
    _send(broker, dump_event(event))
    poll(
        lambda: dead_letter_counts(broker, "testsvc").get(f"{QUEUE}.dead") == 1,
        what="the message parked",
    )

    Flaky.broken = False
    assert replay_dead_letters(broker, "testsvc") == 1

    poll(lambda: Flaky.processed == [event.event_id], what="the replayed message processed")
    assert dead_letter_counts(broker, "testsvc")[f"{QUEUE}.dead"] == 0


def test_a_handler_missing_from_the_subscription_table_refuses_to_start(broker, container_factory):
    class Unlisted:
        name = "unlisted"

        @event_handler("registration", "signed_up")
        def handle_signed_up(self, event):
            pass

    container = container_factory(Unlisted, {"AMQP_URI": broker})
    with pytest.raises(RuntimeError, match="SUBSCRIPTIONS"):
        container.start()


class Picky:
    """Always fails on the events in `always`; fails once on any other."""

    name = "testsvc"
    always: ClassVar[set[str]] = set()
    attempts: ClassVar[list[str]] = []
    processed: ClassVar[list[str]] = []

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event):
        Picky.attempts.append(event.event_id)
        if event.event_id in Picky.always or Picky.attempts.count(event.event_id) == 1:
            raise RuntimeError("not now")
        Picky.processed.append(event.event_id)


def test_a_short_retry_does_not_wait_behind_a_long_one(broker, container_factory, monkeypatch):
    # Delays 0.25 s, 1 s, 4 s. A sits in its 4 s delay when B fails for the first time; B's
    # 0.25 s retry must come back long before A's (behind A's delay it would come back only
    # after A's fourth attempt). With 0.1/0.4/1.6 s, B's whole round trip through the broker
    # had to fit in 1.6 s, too little room on a busy machine.
    key = ("registration", "signed_up")
    monkeypatch.setitem(
        contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], "testsvc.handle_signed_up")
    )
    first, second = new_event("signed_up", PAYLOAD), new_event("signed_up", PAYLOAD)
    Picky.always, Picky.attempts, Picky.processed = {first.event_id}, [], []
    config = {"AMQP_URI": broker, "EVENT_MAX_ATTEMPTS": 5, "EVENT_RETRY_BASE_SECONDS": 0.25}
    container_factory(Picky, config).start()
    _send(broker, dump_event(first))
    poll(lambda: Picky.attempts.count(first.event_id) == 3, what="three attempts of the first")

    _send(broker, dump_event(second))

    poll(lambda: second.event_id in Picky.processed, what="the second one retried and done")
    assert Picky.attempts.count(first.event_id) == 3
