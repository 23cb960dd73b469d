"""The outbox relay: publishes committed events to the broker, in order, at least once.

A row is marked published only after the broker confirmed it (publisher confirms) and routed it
to at least one queue (mandatory). Before the first publish the relay declares every consumer
queue of its events (contracts.SUBSCRIPTIONS), so an event is never dropped because a consumer
has not started yet. If the broker or the database is away, the relay says so once, waits with
back-off, and carries on when they are back; nothing is lost, since the rows stay in the outbox.

A batch costs the same few round trips whatever its size: the rows are read (and, on PostgreSQL,
locked) in one query, published one after the other on one kept channel without waiting, their
confirms awaited together, and the confirmed ones marked in one UPDATE and one commit. A commit
that emitted events wakes the relay, which waits a moment (OUTBOX_BATCH_WAIT_SECONDS) so that the
events of the commits around it go in the same batch. If the broker refuses or cannot route an
event, the events before it are marked published, it keeps its error, and it and those after it
are published again on the next attempt (so a consumer may see one of those twice, which the
idempotent consumers make harmless, but never an event before the ones committed before it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import eventlet
from eventlet.event import Event as GreenEvent
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Engine, MetaData, Text, cast, func, select, update

from lob_common import metrics
from lob_common.contracts import SUBSCRIPTIONS, queue_name
from lob_common.db import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 200
PUBLISHED_RETENTION = timedelta(days=14)
CONFIRM_TIMEOUT_SECONDS = 30.0
GAUGE_SECONDS = 1.0  # the pending/oldest gauges are read at most this often
# After a commit wakes the relay, it waits this long for more before it publishes: at 50
# sign-ups/s per process that makes batches of about 3 instead of 1, where a batch costs about
# 2 ms of CPU and each event in it 0.2-0.3 ms more (bench/results, docs/benchmarks.md).
BATCH_WAIT_SECONDS = 0.05


def declare_topology(amqp_uri: str, producer: str, config: dict[str, Any] | None = None) -> int:
    """Declare the producer's event exchange and every subscribed consumer queue; return count."""
    with Connection(amqp_uri, connect_timeout=5) as connection:
        return _declare(connection.channel(), producer, config or {})


def _declare(channel: Any, producer: str, config: dict[str, Any]) -> int:
    exchange = get_event_exchange(producer, config)
    queues = [
        Queue(
            queue_name(source, event_type, handler),
            exchange=exchange,
            routing_key=event_type,
            durable=True,
            auto_delete=False,
        )
        for (source, event_type), handlers in SUBSCRIPTIONS.items()
        if source == producer
        for handler in handlers
    ]
    exchange(channel).declare()
    for queue in queues:
        queue(channel).declare()
    return len(queues)


class PublishRefused(RuntimeError):
    """The broker did not take an event: it could not route it (no queue bound) or nacked it."""


class ConfirmedChannel:
    """One kept broker connection and channel in confirm mode, publishing a batch at a time:
    every message is sent without waiting, then the confirms of all of them are awaited."""

    def __init__(self, amqp_uri: str) -> None:
        self.connection = Connection(amqp_uri, connect_timeout=5)
        self.channel = self.connection.channel()
        self.channel.confirm_select()
        self._sent = 0  # the delivery tag of the last message published on this channel
        self._first = 1  # the delivery tag of the first message of the batch in flight
        self._confirmed: dict[int, str | None] = {}
        self._returned: dict[str, str] = {}
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.events["basic_return"].add(self._on_return)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it is being thrown away anyway
            self.connection.close()

    def publish_batch(self, messages: list[dict[str, Any]]) -> list[str | None]:
        """Publish messages (dicts: event_id, exchange, routing_key, body: JSON text, headers,
        mandatory); return, for each in order, None if the broker confirmed and routed it, else
        why not."""
        self._first = self._sent + 1
        self._confirmed.clear()
        self._returned.clear()
        for m in messages:
            message = self.channel.prepare_message(
                m["body"].encode(),
                0,
                "application/json",
                "utf-8",
                m["headers"],
                {"delivery_mode": 2},
            )
            self.channel.basic_publish(
                message,
                exchange=m["exchange"],
                routing_key=m["routing_key"],
                mandatory=m["mandatory"],
            )
            self._sent += 1
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while len(self._confirmed) < len(messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the broker did not confirm the published events")
            self.connection.drain_events(timeout=remaining)
        return [
            self._confirmed[tag] or self._returned.get(m["event_id"])
            for tag, m in enumerate(messages, start=self._first)
        ]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, None)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, "the broker refused it (nack)")

    def _settle(self, delivery_tag: int, multiple: bool, refusal: str | None) -> None:
        tags = range(self._first, delivery_tag + 1) if multiple else (delivery_tag,)
        for tag in tags:
            if tag >= self._first:
                self._confirmed.setdefault(tag, refusal)

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        # RabbitMQ sends a mandatory message it cannot route back before confirming it.
        try:
            event_id = json.loads(message.body)["event_id"]
        except (ValueError, TypeError, KeyError):
            return
        self._returned[event_id] = f"no queue is bound for {exchange} {routing_key}"


class OutboxRelay:
    """Moves outbox rows to the broker. Safe to run in several replicas on PostgreSQL."""

    def __init__(
        self,
        engine: Engine,
        metadata: MetaData,
        producer: str,
        amqp_uri: str,
        config: dict[str, Any] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.outbox = metadata.tables["outbox"]
        self.producer = producer
        self.amqp_uri = amqp_uri
        self.config = config or {}
        self.poll_seconds = poll_seconds
        self.batch_wait = float(self.config.get("OUTBOX_BATCH_WAIT_SECONDS", BATCH_WAIT_SECONDS))
        self.exchange = get_event_exchange(producer, self.config)
        self._channel: ConfirmedChannel | None = None
        self._wakeup = GreenEvent()
        self._stopping = False
        self._topology_ready = False
        self._last_cleanup = 0.0
        self._gauges_at = 0.0
        self._lock = threading.Lock()  # one batch at a time within a process

    def wake(self) -> None:
        """Called after a commit that emitted events: publish now instead of at the next poll."""
        if not self._wakeup.ready():
            self._wakeup.send(True)

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    def run(self) -> None:
        """Loop until stopped; every failure is logged and retried with back-off."""
        delay = self.poll_seconds
        failing = False
        try:
            while not self._stopping:
                # A commit from now on wakes the next round, also one during this batch.
                self._wakeup = GreenEvent()
                try:
                    published = self.publish_pending()
                    if failing:
                        log.info("outbox relay of %s is publishing again", self.producer)
                    failing, delay = False, self.poll_seconds
                except Exception as exc:  # noqa: BLE001 - any failure: wait and retry, never die
                    metrics.OUTBOX_PUBLISH_ERRORS.inc()
                    if not failing:
                        log.warning(
                            "outbox relay of %s cannot publish (%s: %s); retrying",
                            self.producer,
                            type(exc).__name__,
                            exc,
                        )
                    failing, published = True, 0
                    delay = min(delay * 2, 30.0)
                if published >= BATCH_SIZE and not failing:
                    continue
                self._wait(delay)
        finally:
            self._disconnect()

    def _wait(self, seconds: float) -> None:
        if self._wakeup.wait(timeout=seconds) and self.batch_wait and not self._stopping:
            eventlet.sleep(self.batch_wait)  # let the commits around this one join its batch

    def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; return how many were published."""
        with self._lock:
            if not self._topology_ready:
                self._confirmed_channel()  # declares the queues, even before the first event
            published = self._publish_batch()
            self._update_gauges()
            self._cleanup()
            return published

    def _publish_batch(self) -> int:
        locking = self.engine.dialect.name == "postgresql"
        # The body as the JSON text emit stored (published as it is, not decoded and encoded
        # again), and the one field the message's headers need.
        query = (
            select(self.outbox.c.id, self.outbox.c.event_id, self.outbox.c.event_type)
            .add_columns(
                cast(self.outbox.c.body, Text).label("body"),
                self.outbox.c.body["correlation_id"].as_string().label("correlation_id"),
            )
            .where(self.outbox.c.published_at.is_(None))
            .order_by(self.outbox.c.id)
            .limit(BATCH_SIZE)
        )
        if locking:
            query = query.with_for_update(skip_locked=True)
        # On PostgreSQL the rows stay locked while we publish (other replicas skip them).
        # On SQLite (one process) we must not hold a write lock across network I/O: read,
        # publish, then mark in a short transaction of its own.
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            if not locking:
                connection.commit()
            if not rows:
                return 0
            try:
                refusals = self._publish(rows)
            except Exception:
                connection.rollback()
                raise
            done = []
            for row, refusal in zip(rows, refusals, strict=True):
                if refusal is not None:
                    self._mark(connection, done, failed_id=row.id, error=refusal)
                    raise PublishRefused(f"{self.producer}.{row.event_type}: {refusal}")
                done.append(row.id)
            self._mark(connection, done)
        for row in rows:
            metrics.EVENTS_PUBLISHED.labels(row.event_type).inc()
        return len(done)

    def _publish(self, rows: list[Any]) -> list[str | None]:
        # An event with subscribers must reach their queues (mandatory: a routing failure is
        # retried, never dropped); one nobody subscribes to yet is published as a plain fact.
        messages = [
            {
                "event_id": row.event_id,
                "exchange": self.exchange.name,
                "routing_key": row.event_type,
                "body": row.body,
                "headers": {"nameko.correlation_id": row.correlation_id or ""},
                "mandatory": bool(SUBSCRIPTIONS.get((self.producer, row.event_type))),
            }
            for row in rows
        ]
        reused = self._channel is not None
        try:
            return self._confirmed_channel().publish_batch(messages)
        except Exception:
            self._disconnect()
            if not reused:
                raise
        # The kept connection was dead (e.g. the broker restarted since the last batch): once
        # more on a new one. A message the broker got before it failed goes out twice.
        return self._confirmed_channel().publish_batch(messages)

    def _confirmed_channel(self) -> ConfirmedChannel:
        if self._channel is None:
            channel = ConfirmedChannel(self.amqp_uri)
            if not self._topology_ready:
                try:
                    count = _declare(channel.channel, self.producer, self.config)
                except Exception:
                    channel.close()
                    raise
                log.info("declared %s.events and %d consumer queues", self.producer, count)
                self._topology_ready = True
            self._channel = channel
        return self._channel

    def close(self) -> None:
        """Let go of the broker connection (the relay's run does so when it stops)."""
        with self._lock:
            self._disconnect()

    def _disconnect(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def _mark(
        self,
        connection: Any,
        ids: list[int],
        failed_id: int | None = None,
        error: str | None = None,
    ) -> None:
        if ids:
            connection.execute(
                update(self.outbox).where(self.outbox.c.id.in_(ids)).values(published_at=utcnow())
            )
        if failed_id is not None:
            connection.execute(
                update(self.outbox)
                .where(self.outbox.c.id == failed_id)
                .values(attempts=self.outbox.c.attempts + 1, last_error=str(error)[:1000])
            )
        connection.commit()

    def _update_gauges(self) -> None:
        """The backlog gauges: read at most once a second, not after every batch."""
        now = time.monotonic()
        if now - self._gauges_at < GAUGE_SECONDS:
            return
        self._gauges_at = now
        with self.engine.connect() as connection:
            pending, oldest = connection.execute(
                select(func.count(), func.min(self.outbox.c.created_at)).where(
                    self.outbox.c.published_at.is_(None)
                )
            ).one()
        metrics.OUTBOX_PENDING.set(pending)
        if oldest is None:
            metrics.OUTBOX_OLDEST_SECONDS.set(0)
            return
        metrics.OUTBOX_OLDEST_SECONDS.set((utcnow() - oldest).total_seconds())

    def _cleanup(self) -> None:
        """Forget published rows after a retention period (hourly)."""
        if time.monotonic() - self._last_cleanup < 3600:
            return
        self._last_cleanup = time.monotonic()
        with self.engine.begin() as connection:
            connection.execute(
                self.outbox.delete().where(
                    self.outbox.c.published_at < utcnow() - PUBLISHED_RETENTION
                )
            )
