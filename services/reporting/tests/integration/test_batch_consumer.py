"""Batch consumption keeps lob_common's promises: every event handled, each acknowledged after
its batch is done, a bad one retried and parked on its own while the rest go through."""

from __future__ import annotations

from typing import ClassVar

import pytest
from kombu import Connection

from lob_common import contracts
from lob_common.contracts import dump_event, new_event, queue_name
from lob_common.messaging import dead_letter_counts, list_dead_letters
from lob_testing import poll, sample
from reporting.consumer import batch_event_handler

pytestmark = pytest.mark.integration

QUEUE = queue_name("registration", "signed_up", "batchsvc.handle_signed_up")


class Batches:
    """Records the batches it gets; a batch holding the poisoned event fails as a whole."""

    name = "batchsvc"
    batches: ClassVar[list[list[str]]] = []
    done: ClassVar[list[str]] = []

    @batch_event_handler("registration", "signed_up")
    def handle_signed_up(self, events):
        ids = [e.payload["registration_id"] for e in events]
        Batches.batches.append(ids)
        if "poison" in ids:
            raise RuntimeError("cannot store the poisoned one")
        Batches.done.extend(ids)
        return len(ids)


@pytest.fixture
def batches(broker, container_factory, monkeypatch):
    key = ("registration", "signed_up")
    monkeypatch.setitem(
        contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], "batchsvc.handle_signed_up")
    )
    Batches.batches, Batches.done = [], []
    config = {
        "AMQP_URI": broker,
        "EVENT_MAX_ATTEMPTS": 2,
        "EVENT_RETRY_BASE_SECONDS": 0.05,
        "EVENT_BATCH_SIZE": 50,
        "EVENT_BATCH_WAIT_SECONDS": 0.2,
    }
    return container_factory(Batches, config)


def _backlog(amqp_uri, registration_ids):
    with Connection(amqp_uri) as connection:
        queue = connection.SimpleQueue(QUEUE)
        for rid in registration_ids:
            queue.put(dump_event(new_event("signed_up", sample("signed_up", registration_id=rid))))
        queue.close()


def _waiting(amqp_uri):
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(QUEUE, passive=True).message_count


def test_a_backlog_is_handled_in_batches_and_acknowledged(batches, broker):
    ids = [f"r{n}" for n in range(120)]
    _backlog(broker, ids)

    batches.start()

    poll(lambda: sorted(Batches.done) == sorted(ids), what="all 120 handled")
    assert max(len(b) for b in Batches.batches) == 50
    assert len(Batches.batches) <= 6
    poll(lambda: _waiting(broker) == 0, what="every message acknowledged")


def test_a_bad_event_is_parked_alone_and_its_batch_mates_are_handled(batches, broker):
    ids = ["r1", "r2", "poison", "r3"]
    _backlog(broker, ids)

    batches.start()

    poll(
        lambda: dead_letter_counts(broker, "batchsvc").get(f"{QUEUE}.dead") == 1,
        what="the poisoned event parked",
    )
    assert sorted(Batches.done) == ["r1", "r2", "r3"]
    [letter] = list_dead_letters(broker, "batchsvc")
    assert "cannot store the poisoned one" in letter.error
    assert letter.attempts == 2
