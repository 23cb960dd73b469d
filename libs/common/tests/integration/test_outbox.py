"""The outbox and the idempotent consumer against the real broker and both databases."""

import json
from dataclasses import replace

import pytest
from kombu import Connection
from sqlalchemy import MetaData, select

from lob_common.contracts import (
    SUBSCRIPTIONS,
    MalformedEvent,
    dump_event,
    new_event,
    queue_name,
)
from lob_common.db import DatabaseHandle, make_engine, messaging_tables
from lob_common.logging import correlation_id
from lob_common.outbox import OutboxRelay, PublishRefused
from lob_testing import TcpProxy, free_port, sample

pytestmark = pytest.mark.integration

SIGNED_UP = sample("signed_up")
SCHEDULING_QUEUE = queue_name("registration", "signed_up", "scheduling.handle_signed_up")


@pytest.fixture
def db(database_url):
    metadata = MetaData()
    messaging_tables(metadata)
    engine = make_engine(database_url)
    metadata.create_all(engine)
    yield DatabaseHandle(engine, metadata)
    engine.dispose()


def _relay(db, amqp_uri):
    return OutboxRelay(db.engine, db.metadata, "registration", amqp_uri)


def _take(amqp_uri, queue):
    with Connection(amqp_uri) as connection:
        message = connection.SimpleQueue(queue).get(block=False)
        message.ack()
        return json.loads(message.body)


def _queued(amqp_uri, queue):
    with Connection(amqp_uri) as connection:
        _, count, _ = connection.default_channel.queue_declare(queue, passive=True)
        return count


def _unpublished(db):
    outbox = db.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        return (
            connection.execute(select(outbox.c.event_id).where(outbox.c.published_at.is_(None)))
            .scalars()
            .all()
        )


def test_committed_event_reaches_every_subscriber_even_one_that_never_ran(db, broker):
    with db() as uow:
        emitted = uow.emit("signed_up", SIGNED_UP)
        uow.commit()

    assert _relay(db, broker).publish_pending() == 1

    for handler in SUBSCRIPTIONS[("registration", "signed_up")]:
        body = _take(broker, queue_name("registration", "signed_up", handler))
        assert body["event_id"] == emitted.event_id
        assert body["payload"]["registration_id"] == "r1"
    assert _unpublished(db) == []


def test_the_published_message_is_the_event_as_emitted_with_its_correlation_id(db, broker):
    """The relay publishes the outbox's JSON text as it is: the envelope and payload as
    dump_event made them, as JSON, with the correlation id in nameko's header too."""
    token = correlation_id.set("corr-outbox-1")
    try:
        with db() as uow:
            emitted = uow.emit("signed_up", SIGNED_UP)
            uow.commit()
    finally:
        correlation_id.reset(token)

    assert _relay(db, broker).publish_pending() == 1

    with Connection(broker) as connection:
        message = connection.SimpleQueue(SCHEDULING_QUEUE).get(block=False)
        message.ack()
    assert message.content_type == "application/json"
    assert message.properties["delivery_mode"] == 2
    assert message.headers["nameko.correlation_id"] == "corr-outbox-1"
    assert json.loads(message.body) == dump_event(emitted)
    assert dump_event(emitted)["correlation_id"] == "corr-outbox-1"


def test_rolled_back_work_publishes_nothing(db, broker):
    with db() as uow:
        uow.emit("signed_up", SIGNED_UP)  # no commit: the block ends in a rollback

    assert _relay(db, broker).publish_pending() == 0
    assert _queued(broker, SCHEDULING_QUEUE) == 0


def test_events_wait_in_the_outbox_while_the_broker_is_away(db, broker):
    with db() as uow:
        emitted = uow.emit("signed_up", SIGNED_UP)
        uow.commit()
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/"

    with pytest.raises(OSError):
        _relay(db, nowhere).publish_pending()
    assert _unpublished(db) == [emitted.event_id]

    assert _relay(db, broker).publish_pending() == 1
    assert _take(broker, SCHEDULING_QUEUE)["event_id"] == emitted.event_id


def test_events_are_published_in_commit_order(db, broker):
    ids = []
    for n in range(5):
        with db() as uow:
            ids.append(uow.emit("signed_up", dict(SIGNED_UP, registration_id=f"r{n}")).event_id)
            uow.commit()
    _relay(db, broker).publish_pending()
    assert [_take(broker, SCHEDULING_QUEUE)["event_id"] for _ in ids] == ids


def _emit(db, n, event_type="signed_up"):
    payload = dict(SIGNED_UP, registration_id=f"r{n}") if n is not None else sample(event_type)
    with db() as uow:
        event_id = uow.emit(event_type, payload).event_id
        uow.commit()
    return event_id


def test_a_batch_of_events_is_published_and_marked_at_once(db, broker):
    ids = [_emit(db, n) for n in range(120)]
    relay = _relay(db, broker)

    assert relay.publish_pending() == 120
    relay.close()

    assert _unpublished(db) == []
    assert _queued(broker, SCHEDULING_QUEUE) == 120
    assert [_take(broker, SCHEDULING_QUEUE)["event_id"] for _ in range(3)] == ids[:3]


def test_an_event_the_broker_cannot_route_waits_with_those_after_it(db, broker, monkeypatch):
    """A routing failure in the middle of a batch: the events before it are published, it and
    the ones after it stay in the outbox (commit order), and go out once a queue is there."""
    # An event type with a subscriber whose queue the relay did not declare (it is not in the
    # subscription table it declared from), so the broker cannot route it.
    key = ("registration", "person_erased")
    monkeypatch.setitem(SUBSCRIPTIONS, key, ())
    relay = _relay(db, broker)
    assert relay.publish_pending() == 0  # declares the topology without person_erased's queues
    monkeypatch.setitem(SUBSCRIPTIONS, key, ("nowhere.handle_person_erased",))
    before = _emit(db, 0)
    stuck = _emit(db, None, "person_erased")
    after = _emit(db, 2)

    with pytest.raises(PublishRefused, match="no queue is bound"):
        relay.publish_pending()
    relay.close()

    assert _unpublished(db) == [stuck, after]
    outbox = db.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        attempts, error = connection.execute(
            select(outbox.c.attempts, outbox.c.last_error).where(outbox.c.event_id == stuck)
        ).one()
    assert attempts == 1 and "no queue is bound" in error
    assert _take(broker, SCHEDULING_QUEUE)["event_id"] == before

    fresh = _relay(db, broker)  # a new process declares every subscribed queue, the new one too
    assert fresh.publish_pending() == 2
    fresh.close()
    assert _take(broker, queue_name(*key, "nowhere.handle_person_erased"))["event_id"] == stuck
    assert _take(broker, SCHEDULING_QUEUE)["event_id"] == after


def test_the_relay_publishes_on_after_its_broker_connection_was_cut(db, broker):
    proxy = TcpProxy(5672)
    proxy.open()
    try:
        relay = _relay(db, proxy.url(broker))
        first = _emit(db, 0)
        assert relay.publish_pending() == 1
        proxy.cut()  # the broker restarts between two batches
        proxy.open()
        second = _emit(db, 1)

        assert relay.publish_pending() == 1
        relay.close()
    finally:
        proxy.close()
    assert _unpublished(db) == []
    assert [_take(broker, SCHEDULING_QUEUE)["event_id"] for _ in range(2)] == [first, second]


def test_a_redelivered_event_is_claimed_only_once(db):
    delivered = replace(new_event("signed_up", SIGNED_UP), handler="scheduling.handle_signed_up")
    with db() as uow:
        assert uow.claim(delivered) is True
        uow.commit()
    with db() as uow:
        assert uow.claim(delivered) is False
    other_handler = replace(delivered, handler="reporting.handle_signed_up")
    with db() as uow:
        assert uow.claim(other_handler) is True


def test_a_claim_rolled_back_with_its_effect_can_be_made_again(db):
    delivered = replace(new_event("signed_up", SIGNED_UP), handler="x.handle_signed_up")
    with db() as uow:
        assert uow.claim(delivered)
        # the handler fails before commit: its claim must go with its effect
    with db() as uow:
        assert uow.claim(delivered) is True


def test_emit_refuses_a_payload_that_breaks_its_contract(db):
    with db() as uow, pytest.raises(MalformedEvent, match="person_id"):
        uow.emit("signed_up", {k: v for k, v in SIGNED_UP.items() if k != "person_id"})
    assert _unpublished(db) == []
