"""The outbox and the idempotent consumer against the real broker and both databases."""

import json
from dataclasses import replace

import pytest
from kombu import Connection
from sqlalchemy import MetaData, select

from lob_common.contracts import SUBSCRIPTIONS, MalformedEvent, new_event, queue_name
from lob_common.db import DatabaseHandle, make_engine, messaging_tables
from lob_common.outbox import OutboxRelay
from lob_testing import free_port, sample

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
