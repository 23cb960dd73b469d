"""Batch consumption for the events that come in thousands (sign-ups, cancellations,
attendance): many events per transaction, each acknowledged only after that commit.

One event per transaction costs a consumer a worker, a few queries and a commit per event
(reporting reached about 75 events/s end to end on the shared 2-core machine that way, and its
CPU per event was 5-10 times the batch's; docs/benchmarks.md). Here messages are collected for a
moment (EVENT_BATCH_WAIT_SECONDS, or until EVENT_BATCH_SIZE) and handed to one worker as a list;
the handler's use case claims and applies them in one transaction (lob_common.db.idempotent_batch)
and only then are they acknowledged. If the batch fails as a whole, nothing was committed, and
each of its events is handled on its own, so a bad event takes its own retry and dead-letter path
(lob_common.messaging) without holding up the rest.

Delivery guarantees are those of lob_common.messaging: a message is acknowledged after its
effect is committed (or its copy is safely in a retry or dead-letter queue); a crash before that
leaves it unacknowledged, so the broker delivers it again, and the claim makes that harmless.
Used by reporting and scheduling for registration's signed_up and the like.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from dataclasses import replace
from functools import partial
from typing import Any

import eventlet
from amqp.exceptions import AMQPError
from nameko.exceptions import ContainerBeingKilled

from lob_common import metrics
from lob_common.contracts import MalformedEvent, parse_event
from lob_common.messaging import EventHandler, QueueConsumer

log = logging.getLogger(__name__)

# How long a batch waits for more events after its first. The events it waits for are a report's
# count or a plan's input, read by people, so a quarter of a second costs nothing anyone notices;
# at a rush of 100 sign-ups/s it makes batches of about 25 instead of 5 (at 0.05 s), and the
# fixed cost of a batch (a worker, a transaction, the claims' query) is paid that much less often.
BATCH_WAIT_SECONDS = 0.25


class _Unsettled:
    """One channel's delivered messages that are not settled yet, in delivery order, and which
    of them may be acknowledged (True) or were put back (False)."""

    __slots__ = ("done", "order")

    def __init__(self) -> None:
        self.order: deque[int] = deque()
        self.done: dict[int, bool] = {}


class BatchQueueConsumer(QueueConsumer):
    """nameko's queue consumer for batches: its own prefetch, messages handed over without a
    greenthread each, and acknowledgements that go out for many messages at once.

    - Prefetch: nameko's is max_workers (10), which would cap a batch at ten messages.
    - nameko spawns a greenthread for every message only to call the handler's handle_message;
      a batch handler's only checks the message and adds it to its batch, so it runs here, on
      the consuming thread, and the batch gets the one greenthread that hands it to a worker.
    - One `basic.ack` per message costs a frame and a socket write each. Here a message is
      acknowledged once its batch is committed (or its copy is in a retry or dead-letter queue),
      and the acknowledgement goes out as one `multiple=True` for the longest run of settled
      messages at the head of the channel's deliveries. A message whose batch is still being
      written holds back the acknowledgement of those delivered after it (they go with it,
      later), so `multiple=True` never covers a message that is not done. Every batch handler
      of the service shares this consumer's channel, so the run is kept per channel; a put-back
      message is rejected at once and only ends the run's wait.
    """

    def __init__(self) -> None:
        super().__init__()
        self._unsettled: weakref.WeakKeyDictionary[Any, _Unsettled] = weakref.WeakKeyDictionary()

    @property
    def prefetch_count(self) -> int:
        return int(self.container.config.get("EVENT_BATCH_PREFETCH", 400))

    def handle_message(self, provider: Any, body: Any, message: Any) -> None:
        unsettled = self._unsettled.get(message.channel)
        if unsettled is None:
            unsettled = self._unsettled[message.channel] = _Unsettled()
        unsettled.order.append(message.delivery_tag)
        if isinstance(provider, BatchEventHandler):
            provider.receive(body, message)
        else:
            super().handle_message(provider, body, message)

    def ack_message(self, message: Any) -> None:
        self.ack_messages([message])

    def ack_messages(self, messages: list[Any]) -> None:
        """Acknowledge messages that are done, as few frames as their order allows."""
        for message in messages:
            if not self._settled(message, acked=True):
                super().ack_message(message)  # not delivered through here: on its own
        self._flush_acks(messages)

    def requeue_message(self, message: Any) -> None:
        super().requeue_message(message)
        if self._settled(message, acked=False):
            self._flush_acks([message])

    def _settled(self, message: Any, acked: bool) -> bool:
        unsettled = self._unsettled.get(message.channel)
        if unsettled is None or message.delivery_tag in unsettled.done:
            return False
        unsettled.done[message.delivery_tag] = acked
        return True

    def _flush_acks(self, messages: list[Any]) -> None:
        for channel in {id(m.channel): m.channel for m in messages}.values():
            unsettled = self._unsettled.get(channel)
            if unsettled is None:
                continue
            last = None
            while unsettled.order and unsettled.order[0] in unsettled.done:
                tag = unsettled.order.popleft()
                if unsettled.done.pop(tag):
                    last = tag  # a put-back message is no longer the broker's to acknowledge
            if last is not None:
                # No switch to another greenthread between taking the run and sending it, so
                # the frames leave in the order of their tags.
                self._settle_channel(channel, last)

    def _settle_channel(self, channel: Any, last: int) -> None:
        if not channel.connection:
            self._unsettled.pop(channel, None)
            return  # the broker has the messages back already
        try:
            channel.basic_ack(last, multiple=True)
        except (OSError, AMQPError) as exc:
            self._unsettled.pop(channel, None)
            log.warning(
                "could not acknowledge messages, the broker connection is gone (%s); they "
                "will be delivered again",
                type(exc).__name__,
            )


class BatchEventHandler(EventHandler):
    """`@batch_event_handler(source, event_type)`: the method receives a list of events."""

    queue_consumer = BatchQueueConsumer()

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.batch_size = int(config.get("EVENT_BATCH_SIZE", 200))
        self.batch_wait = float(config.get("EVENT_BATCH_WAIT_SECONDS", BATCH_WAIT_SECONDS))
        self._pending: list[tuple[Any, Any, Any]] = []
        self._timer: Any = None

    def stop(self) -> None:
        self._cancel_timer()
        super().stop()

    def kill(self) -> None:
        self._cancel_timer()
        super().kill()

    def handle_message(self, body: Any, message: Any) -> None:
        self.receive(body, message)

    def receive(self, body: Any, message: Any) -> None:
        """Check a message and add it to the batch; runs on the consuming thread, so it must not
        wait for anything (a malformed message is parked on a thread of its own)."""
        try:
            event = replace(parse_event(body, self.event_type), handler=self.handler_id)
        except MalformedEvent:
            # EventHandler's handle_message parks it in the dead-letter queue with the reason.
            park = partial(EventHandler.handle_message, self, body, message)
            self.container.spawn_managed_thread(park)
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
        # A worker may have to be waited for; not on the consuming thread or the timer.
        self.container.spawn_managed_thread(partial(self._start_batch, batch))

    def _start_batch(self, batch: list[tuple[Any, Any, Any]]) -> None:
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
            self.queue_consumer.ack_messages([message for _, _, message in batch])
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
