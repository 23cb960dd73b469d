"""The outbox relay: publishes committed events to the broker, in order, at least once.

A row is marked published only after the broker confirmed it (publisher confirms) and routed it
to at least one queue (mandatory). Before the first publish the relay declares every consumer
queue of its events (contracts.SUBSCRIPTIONS), so an event is never dropped because a consumer
has not started yet. If the broker or the database is away, the relay says so once, waits with
back-off, and carries on when they are back; nothing is lost, since the rows stay in the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from eventlet.event import Event as GreenEvent
from kombu import Connection, Queue
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Engine, MetaData, func, select, update

from lob_common import metrics
from lob_common.contracts import SUBSCRIPTIONS, queue_name
from lob_common.db import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 200
PUBLISHED_RETENTION = timedelta(days=14)


def declare_topology(amqp_uri: str, producer: str, config: dict[str, Any] | None = None) -> int:
    """Declare the producer's event exchange and every subscribed consumer queue; return count."""
    exchange = get_event_exchange(producer, config or {})
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
    with Connection(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        exchange(channel).declare()
        for queue in queues:
            queue(channel).declare()
    return len(queues)


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
        self.exchange = get_event_exchange(producer, self.config)
        self.publisher = Publisher(amqp_uri, use_confirms=True, retry=False)
        self._wakeup = GreenEvent()
        self._stopping = False
        self._topology_ready = False
        self._last_cleanup = 0.0
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
        while not self._stopping:
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

    def _wait(self, seconds: float) -> None:
        self._wakeup.wait(timeout=seconds)
        self._wakeup = GreenEvent()

    def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; return how many were published."""
        with self._lock:
            if not self._topology_ready:
                count = declare_topology(self.amqp_uri, self.producer, self.config)
                log.info("declared %s.events and %d consumer queues", self.producer, count)
                self._topology_ready = True
            published = self._publish_batch()
            self._update_gauges()
            self._cleanup()
            return published

    def _publish_batch(self) -> int:
        locking = self.engine.dialect.name == "postgresql"
        query = (
            select(self.outbox.c.id, self.outbox.c.event_type, self.outbox.c.body)
            .where(self.outbox.c.published_at.is_(None))
            .order_by(self.outbox.c.id)
            .limit(BATCH_SIZE)
        )
        if locking:
            query = query.with_for_update(skip_locked=True)
        done: list[int] = []
        # On PostgreSQL the rows stay locked while we publish (other replicas skip them).
        # On SQLite (one process) we must not hold a write lock across network I/O: read,
        # publish, then mark in a short transaction of its own.
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            if not locking:
                connection.commit()
            try:
                for row in rows:
                    self._publish(row.event_type, row.body)
                    done.append(row.id)
            except Exception as exc:
                self._mark(connection, done, failed_id=rows[len(done)].id, error=exc)
                raise
            self._mark(connection, done)
        return len(done)

    def _publish(self, event_type: str, body: dict[str, Any]) -> None:
        # An event with subscribers must reach their queues (mandatory: a routing failure is
        # retried, never dropped); one nobody subscribes to yet is published as a plain fact.
        subscribed = bool(SUBSCRIPTIONS.get((self.producer, event_type)))
        try:
            self.publisher.publish(
                body,
                exchange=self.exchange,
                routing_key=event_type,
                mandatory=subscribed,
                headers={"nameko.correlation_id": body.get("correlation_id") or ""},
            )
        except UndeliverableMessage:
            raise RuntimeError(f"no queue is bound for {self.producer}.{event_type}") from None
        metrics.EVENTS_PUBLISHED.labels(event_type).inc()

    def _mark(
        self,
        connection: Any,
        ids: list[int],
        failed_id: int | None = None,
        error: Exception | None = None,
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
