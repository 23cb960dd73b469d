"""The outbox and idempotent-consumer helpers without servers: SQLite files and fakes only.

The integration tests (tests/integration) run the same paths against RabbitMQ and PostgreSQL;
these pin down the decisions themselves, in milliseconds.
"""

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import MetaData, func, select

from lob_common.contracts import MalformedEvent, new_event
from lob_common.db import DatabaseHandle, idempotent, make_engine, messaging_tables
from lob_common.messaging import ATTEMPT_HEADER, ERROR_HEADER, EventHandler
from lob_testing import sample


@pytest.fixture
def db(tmp_path):
    metadata = MetaData()
    messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path}/unit.db")
    metadata.create_all(engine)
    yield DatabaseHandle(engine, metadata)
    engine.dispose()


def _delivered(handler="svc.handle_signed_up"):
    return replace(new_event("signed_up", sample("signed_up")), handler=handler)


def _rows(db, table):
    with db.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(db.metadata.tables[table]))


# --- unit of work ------------------------------------------------------------------------------


def test_an_event_is_claimed_once_per_handler(db):
    event = _delivered()
    with db() as uow:
        assert uow.claim(event) is True
        uow.commit()
    with db() as uow:
        assert uow.claim(event) is False  # redelivered: the effect is already there
        assert uow.claim(replace(event, handler="other.handle_signed_up")) is True


def test_a_claim_without_commit_is_forgotten_so_the_retry_does_the_work(db):
    event = _delivered()
    with db() as uow:
        uow.claim(event)  # the handler fails before commit
    with db() as uow:
        assert uow.claim(event) is True


def test_an_idempotent_handler_applies_its_effect_once_and_commits_it_with_the_claim(db):
    applied = []

    @idempotent
    def record(uow, event, note):
        applied.append((event.event_id, note))
        uow.emit("person_erased", {"person_id": "p1", "erased_at": "2026-12-01T10:00:00+00:00"})

    event = _delivered()
    assert record(db, event, "first") is True
    assert record(db, event, "again") is False  # a redelivery changes nothing
    assert applied == [(event.event_id, "first")]
    assert _rows(db, "outbox") == 1


def test_an_idempotent_handler_that_fails_leaves_no_claim_so_the_retry_applies_it(db):
    calls = []

    @idempotent
    def record(uow, event):
        calls.append(event.event_id)
        uow.emit("person_erased", {"person_id": "p1", "erased_at": "2026-12-01T10:00:00+00:00"})
        if len(calls) == 1:
            raise RuntimeError("database went away")

    event = _delivered()
    with pytest.raises(RuntimeError):
        record(db, event)
    assert _rows(db, "outbox") == 0
    assert record(db, event) is True
    assert _rows(db, "outbox") == 1


def test_claim_needs_the_receiving_handler(db):
    with db() as uow, pytest.raises(ValueError, match="handler"):
        uow.claim(new_event("signed_up", sample("signed_up")))


def test_an_emitted_event_is_in_the_outbox_only_if_the_change_commits(db):
    with db() as uow:
        uow.emit("signed_up", sample("signed_up"))  # rolled back: no commit
    assert _rows(db, "outbox") == 0
    with db() as uow:
        uow.emit("signed_up", sample("signed_up"))
        uow.commit()
    assert _rows(db, "outbox") == 1


def test_an_event_that_breaks_its_contract_never_enters_the_outbox(db):
    with db() as uow, pytest.raises(MalformedEvent, match="registration_id"):
        uow.emit("signed_up", sample("signed_up", registration_id=""))
    assert _rows(db, "outbox") == 0


def test_many_events_enter_the_outbox_together_or_not_at_all(db):
    payloads = [sample("signed_up", registration_id=f"r{n}") for n in range(3)]
    with db() as uow:
        uow.emit_many("signed_up", payloads)  # rolled back: no commit
    with db() as uow, pytest.raises(MalformedEvent, match="registration_id"):
        uow.emit_many("signed_up", [*payloads, sample("signed_up", registration_id="")])
    assert _rows(db, "outbox") == 0
    with db() as uow:
        emitted = uow.emit_many("signed_up", payloads)
        uow.commit()
    outbox = db.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        bodies = connection.scalars(select(outbox.c.body).order_by(outbox.c.id)).all()
    assert [b["payload"]["registration_id"] for b in bodies] == ["r0", "r1", "r2"]
    assert [b["event_id"] for b in bodies] == [e.event_id for e in emitted]


def test_committing_with_events_wakes_the_relay(db):
    woken = []
    handle = DatabaseHandle(db.engine, db.metadata, on_commit=lambda: woken.append(1))
    with handle() as uow:
        uow.claim(_delivered())
        uow.commit()  # nothing emitted: the relay has nothing to do
    with handle() as uow:
        uow.emit("signed_up", sample("signed_up"))
        uow.commit()
    assert woken == [1]


# --- what the consumer does with a handler's result ----------------------------------------------


class FakeQueueConsumer:
    def __init__(self):
        self.acked, self.requeued = [], []

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)


class FakePublisher:
    def __init__(self, fails=False):
        self.fails, self.published = fails, []

    def publish(self, body, **kwargs):
        if self.fails:
            raise ConnectionError("broker away")
        self.published.append((body, kwargs))


def _handler(max_attempts=3, publisher=None):
    handler = EventHandler("registration", "signed_up")
    handler.container = SimpleNamespace(service_name="svc")
    handler.method_name = "handle_signed_up"
    handler.queue = SimpleNamespace(name="evt-q")
    handler.max_attempts, handler.retry_base = max_attempts, 2.0
    handler.publisher = publisher or FakePublisher()
    handler.queue_consumer = FakeQueueConsumer()
    handler.dead_queue = SimpleNamespace(name="evt-q.dead")
    return handler


def _failed(exc=None):
    exc = exc or RuntimeError("database on fire")
    return (type(exc), exc, None)


def test_success_is_acknowledged_and_nothing_is_forwarded():
    handler, message = _handler(), SimpleNamespace(headers={})
    handler._handle_result(message, {"event_id": "e1"}, None, result=True)
    assert handler.queue_consumer.acked == [message]
    assert handler.publisher.published == []


def test_a_first_failure_goes_to_the_shortest_delay_queue_with_the_error():
    handler, message = _handler(), SimpleNamespace(headers={})

    handler._handle_result(message, {"event_id": "e1"}, None, exc_info=_failed())

    [(body, kwargs)] = handler.publisher.published
    assert body == {"event_id": "e1"}
    assert kwargs["routing_key"] == "evt-q.retry.2000ms"
    assert kwargs["headers"][ATTEMPT_HEADER] == 1
    assert "database on fire" in kwargs["headers"][ERROR_HEADER]
    assert handler.queue_consumer.acked == [message]  # only after the copy is confirmed


def test_each_later_attempt_waits_four_times_longer():
    handler = _handler(max_attempts=5)
    for attempt in (1, 2, 3):
        message = SimpleNamespace(headers={ATTEMPT_HEADER: attempt})
        handler._handle_result(message, {}, None, exc_info=_failed())
    queues = [kwargs["routing_key"] for _, kwargs in handler.publisher.published]
    assert queues == ["evt-q.retry.8000ms", "evt-q.retry.32000ms", "evt-q.retry.128000ms"]


def test_the_last_attempt_parks_the_message_in_the_dead_letter_queue():
    handler, message = _handler(max_attempts=3), SimpleNamespace(headers={ATTEMPT_HEADER: 2})

    handler._handle_result(message, {}, None, exc_info=_failed())

    [(_, kwargs)] = handler.publisher.published
    assert kwargs["routing_key"] == "evt-q.dead"
    assert kwargs["headers"][ATTEMPT_HEADER] == 3


def test_if_the_copy_cannot_be_made_the_original_goes_back_instead_of_being_lost():
    handler = _handler(publisher=FakePublisher(fails=True))
    message = SimpleNamespace(headers={})

    handler._handle_result(message, {}, None, exc_info=_failed())

    assert handler.queue_consumer.acked == []
    assert handler.queue_consumer.requeued == [message]
