"""Batch consumption for the events that come in thousands (sign-ups, cancellations,
attendance): many events per transaction, each acknowledged only after that commit.

One event per transaction costs reporting a worker, a few queries and a commit per event, and
reached about 75 events/s end to end on the shared 2-core machine (docs/benchmarks.md). Here
messages are collected for a moment (EVENT_BATCH_WAIT_SECONDS, or until EVENT_BATCH_SIZE) and
handed to one worker as a list; the handler's use case claims and applies them in one
transaction (handlers.idempotent_batch), and only then are they acknowledged. If the batch fails
as a whole, nothing was committed, and each of its events is handled on its own, so a bad event
takes its own retry and dead-letter path (lob_common.messaging) without holding up the rest.

Delivery guarantees are those of lob_common.messaging: a message is acknowledged after its
effect is committed (or its copy is safely in a retry or dead-letter queue); a crash before that
leaves it unacknowledged, so the broker delivers it again, and the claim makes that harmless.

This builds on lob_common.messaging.EventHandler and is the candidate to move there if another
service needs it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import Any

import eventlet
from nameko.exceptions import ContainerBeingKilled

from lob_common import metrics
from lob_common.contracts import MalformedEvent, parse_event
from lob_common.messaging import EventHandler, QueueConsumer

log = logging.getLogger(__name__)


class BatchQueueConsumer(QueueConsumer):
    """nameko's queue consumer with its own prefetch, so a batch can fill up: nameko's uses
    max_workers (10), which would cap a batch at ten messages."""

    @property
    def prefetch_count(self) -> int:
        return int(self.container.config.get("EVENT_BATCH_PREFETCH", 400))


class BatchEventHandler(EventHandler):
    """`@batch_event_handler(source, event_type)`: the method receives a list of events."""

    queue_consumer = BatchQueueConsumer()

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.batch_size = int(config.get("EVENT_BATCH_SIZE", 200))
        self.batch_wait = float(config.get("EVENT_BATCH_WAIT_SECONDS", 0.05))
        self._pending: list[tuple[Any, Any, Any]] = []
        self._timer: Any = None

    def stop(self) -> None:
        self._cancel_timer()
        super().stop()

    def kill(self) -> None:
        self._cancel_timer()
        super().kill()

    def handle_message(self, body: Any, message: Any) -> None:
        try:
            event = replace(parse_event(body, self.event_type), handler=self.handler_id)
        except MalformedEvent:
            super().handle_message(body, message)  # parks it in the dead-letter queue
            return
        self._pending.append((event, body, message))
        if len(self._pending) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = eventlet.spawn_after(self.batch_wait, self._flush)

    def _cancel_timer(self) -> None:
        # Cancelling switches greenthreads (others may append meanwhile): forget it first.
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._cancel_timer()
        if not batch:
            return
        context_data = self.unpack_message_headers(batch[0][2])
        try:
            self.container.spawn_worker(
                self,
                ([event for event, _, _ in batch],),
                {},
                context_data=context_data,
                handle_result=partial(self._batch_result, batch),
            )
        except ContainerBeingKilled:
            for _, _, message in batch:
                self.queue_consumer.requeue_message(message)

    def _batch_result(
        self,
        batch: list[tuple[Any, Any, Any]],
        worker_ctx: Any,
        result: Any = None,
        exc_info: Any = None,
    ) -> tuple[Any, Any]:
        if exc_info is None:
            new = int(result or 0)
            counter = metrics.EVENTS_CONSUMED.labels
            counter(self.event_type, self.handler_id, "processed").inc(new)
            counter(self.event_type, self.handler_id, "duplicate").inc(len(batch) - new)
            for _, _, message in batch:
                self.queue_consumer.ack_message(message)
            log.info(
                "%s processed %d %s events in one batch (%d duplicates)",
                self.handler_id,
                new,
                self.event_type,
                len(batch) - new,
            )
            return result, exc_info
        log.warning(
            "%s: a batch of %d %s events failed (%s: %s); handling each on its own",
            self.handler_id,
            len(batch),
            self.event_type,
            exc_info[0].__name__,
            exc_info[1],
        )
        self.container.spawn_managed_thread(partial(self._one_by_one, batch))
        return result, exc_info

    def _one_by_one(self, batch: list[tuple[Any, Any, Any]]) -> None:
        for event, body, message in batch:
            try:
                self.container.spawn_worker(
                    self,
                    ([event],),
                    {},
                    context_data=self.unpack_message_headers(message),
                    handle_result=partial(self._single_result, message, body),
                )
            except ContainerBeingKilled:
                self.queue_consumer.requeue_message(message)

    def _single_result(
        self, message: Any, body: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        # lob_common's result handling: acks, or retries / parks a failure; False = duplicate.
        return self._handle_result(
            message, body, worker_ctx, bool(result) if exc_info is None else result, exc_info
        )


batch_event_handler = BatchEventHandler.decorator
