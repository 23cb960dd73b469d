"""Batch consumption keeps lob_common's promises: every event handled, each acknowledged after
its batch is done, a bad one retried and parked on its own while the rest go through."""

from __future__ import annotations

from typing import Any, ClassVar

import eventlet.event
import pytest
from kombu import Connection

from lob_common import contracts
from lob_common.batch import batch_event_handler
from lob_common.contracts import dump_event, new_event, queue_name
from lob_common.messaging import dead_letter_counts, list_dead_letters
from lob_testing import TcpProxy, poll, sample

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


CANCELLED = queue_name("registration", "sign_up_cancelled", "slowsvc.handle_sign_up_cancelled")
SIGNED_UP = queue_name("registration", "signed_up", "slowsvc.handle_signed_up")


class SlowAndFast:
    """Two batch handlers on one channel: sign-ups are held until `release`, cancellations go
    through at once (their acknowledgement goes out with `multiple=True`)."""

    name = "slowsvc"
    release: ClassVar[Any] = None
    cancelled: ClassVar[list[str]] = []

    @batch_event_handler("registration", "signed_up")
    def handle_signed_up(self, events):
        SlowAndFast.release.wait()
        return len(events)

    @batch_event_handler("registration", "sign_up_cancelled")
    def handle_sign_up_cancelled(self, events):
        SlowAndFast.cancelled.extend(e.payload["registration_id"] for e in events)
        return len(events)


def _put(amqp_uri, queue, bodies):
    with Connection(amqp_uri) as connection:
        simple = connection.SimpleQueue(queue)
        for body in bodies:
            simple.put(body)
        simple.close()


@pytest.fixture
def slow_and_fast(broker, container_factory, monkeypatch):
    """The service with 10 sign-ups delivered and held, and 30 cancellations handled since."""
    for event_type in ("signed_up", "sign_up_cancelled"):
        key = ("registration", event_type)
        handler = f"slowsvc.handle_{event_type}"
        monkeypatch.setitem(contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], handler))
    SlowAndFast.release, SlowAndFast.cancelled = eventlet.event.Event(), []
    config = {"AMQP_URI": broker, "EVENT_BATCH_SIZE": 50, "EVENT_BATCH_WAIT_SECONDS": 0.1}
    container = container_factory(SlowAndFast, config)
    sign_ups = [sample("signed_up", registration_id=f"s{n}") for n in range(10)]
    _put(broker, SIGNED_UP, [dump_event(new_event("signed_up", p)) for p in sign_ups])
    container.start()
    poll(lambda: _ready_in(broker, SIGNED_UP) == 0, what="the sign-ups delivered (held)")
    cancellations = [f"c{n}" for n in range(30)]
    _put(
        broker,
        CANCELLED,
        [
            dump_event(
                new_event("sign_up_cancelled", sample("sign_up_cancelled", registration_id=rid))
            )
            for rid in cancellations
        ],
    )
    poll(lambda: sorted(SlowAndFast.cancelled) == sorted(cancellations), what="cancellations")
    return container


def test_acknowledging_one_batch_never_acknowledges_a_batch_still_being_written(
    slow_and_fast, broker
):
    slow_and_fast.kill()  # the process dies while the sign-ups are still being written

    # Not one sign-up was acknowledged with the cancellations. The cancellations, delivered
    # after them on the same channel, wait for them to be acknowledged (one `multiple=True`
    # covers a run from the oldest delivery), so they come back too; their claim makes the
    # second delivery harmless.
    poll(lambda: _ready_in(broker, SIGNED_UP) == 10, what="every held sign-up back in its queue")
    assert _ready_in(broker, CANCELLED) == 30


def test_once_the_held_batch_is_written_every_message_is_acknowledged(slow_and_fast, broker):
    SlowAndFast.release.send()
    # Stopping waits for the running batch; what is not acknowledged by then goes back.
    slow_and_fast.stop()

    assert (_ready_in(broker, SIGNED_UP), _ready_in(broker, CANCELLED)) == (0, 0)


def _ready_in(amqp_uri, queue):
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue, passive=True).message_count


class Cutting:
    """Applies each sign-up once; `cut` (when set) drops the broker connection as a batch ends,
    before its acknowledgement goes out."""

    name = "cutsvc"
    cut: ClassVar[Any] = None
    deliveries: ClassVar[list[str]] = []
    applied: ClassVar[list[str]] = []

    @batch_event_handler("registration", "signed_up")
    def handle_signed_up(self, events):
        ids = [e.payload["registration_id"] for e in events]
        Cutting.deliveries.extend(ids)
        new = [rid for rid in ids if rid not in Cutting.applied]  # the claim
        Cutting.applied.extend(new)
        cut, Cutting.cut = Cutting.cut, None
        if cut:
            cut()
        return len(new)


def test_a_batch_acknowledgement_lost_with_the_broker_kills_nothing_and_applies_once(
    broker, container_factory, monkeypatch
):
    key = ("registration", "signed_up")
    handler = "cutsvc.handle_signed_up"
    monkeypatch.setitem(contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], handler))
    queue = queue_name("registration", "signed_up", handler)
    Cutting.deliveries, Cutting.applied = [], []
    proxy = TcpProxy(5672)
    proxy.open()
    try:
        config = {
            "AMQP_URI": proxy.url(broker),
            "EVENT_BATCH_SIZE": 50,
            "EVENT_BATCH_WAIT_SECONDS": 0.1,
        }
        container = container_factory(Cutting, config)
        ids = [f"r{n}" for n in range(5)]
        _put(
            broker,
            queue,
            [
                dump_event(new_event("signed_up", sample("signed_up", registration_id=r)))
                for r in ids
            ],
        )
        Cutting.cut = proxy.cut  # the broker goes away as the batch is committed
        container.start()
        poll(lambda: sorted(Cutting.applied) == ids, what="the batch applied")

        proxy.open()  # the broker is back

        poll(
            lambda: sorted(Cutting.deliveries) == sorted(ids * 2),
            timeout=60,
            what="the batch delivered again after the reconnect (its acknowledgement was lost)",
        )
        later = dump_event(new_event("signed_up", sample("signed_up", registration_id="later")))
        _put(broker, queue, [later])
        poll(lambda: "later" in Cutting.applied, timeout=30, what="a new event after the outage")
        assert sorted(Cutting.applied) == sorted([*ids, "later"])  # each exactly once
        poll(lambda: _ready_in(broker, queue) == 0, what="nothing left in the queue")
        container.stop()  # a clean stop: the service survived; nothing comes back unacknowledged
        assert _ready_in(broker, queue) == 0
    finally:
        proxy.close()
