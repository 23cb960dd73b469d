"""Consuming events reliably: validation, bounded retries with back-off, dead letters, replay.

nameko's own event handler acknowledges a message whose handler raised, so the message is gone.
Ours never forgets one:
- a malformed message (fails its contract) is parked at once in `<queue>.dead` with the reason;
- a handler error is retried via a delay queue `<queue>.retry.<delay>ms` whose messages expire
  back into the handler's queue; one queue per delay (2 s, 8 s, 32 s, ...), because RabbitMQ
  expires only the message at the head of a queue: a 2 s retry behind a 128 s one in a shared
  queue would wait 128 s. After EVENT_MAX_ATTEMPTS attempts the message is parked;
- the original is acknowledged only after its copy is safely in the retry or dead queue (publisher
  confirms); if that fails the original is requeued.
`lob dead-letters replay` moves parked messages back to their queue once the cause is fixed.

Losing the broker connection costs no process. When the broker restarts (or the network drops)
while workers are busy, the broker takes their unacknowledged messages back and delivers them
again after the reconnect; the workers, finishing on the dead connection, must let go quietly.
nameko 2.14.1 ignores only amqp's ConnectionError there, but a reset socket raises OSError
(ConnectionResetError, BrokenPipeError) out of the worker thread, and nameko then kills the whole
service (`CRITICAL nameko.containers ... thread exited with error`). So every consumer here (our
event handler, `rpc`, and the reply queue behind `RpcProxy`) shares a `QueueConsumer` whose ack
and requeue survive a dead connection, and an RPC reply that cannot be sent puts the request
back. Services import `rpc` and `RpcProxy` from here, not from nameko.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from amqp.exceptions import AMQPError
from kombu import Connection, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY, SERIALIZER_CONFIG_KEY
from nameko.events import SERVICE_POOL
from nameko.events import EventHandler as NamekoEventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import QueueConsumer as NamekoQueueConsumer
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, Responder, get_rpc_exchange
from nameko.rpc import ReplyListener as NamekoReplyListener
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcConsumer as NamekoRpcConsumer
from nameko.rpc import RpcProxy as NamekoRpcProxy

from lob_common import metrics
from lob_common.contracts import SUBSCRIPTIONS, MalformedEvent, parse_event, queue_name

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-lob-attempt"
ERROR_HEADER = "x-lob-error"
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BASE_SECONDS = 2.0


# A reply that cannot be sent within this is given up: its caller gives up after 10 s anyway, and
# the request goes back to the queue to be answered after the reconnect.
REPLY_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5}
# An RPC reply queue lives as long as its process's connection (auto-delete); this is the
# backstop for one whose consumer never attached.
REPLY_QUEUE_EXPIRES_MS = 60_000


class QueueConsumer(NamekoQueueConsumer):
    """nameko's queue consumer, whose ack and requeue let go quietly of a dead connection."""

    def ack_message(self, message: Any) -> None:
        self._settle(message, message.ack, "acknowledge")

    def requeue_message(self, message: Any) -> None:
        self._settle(message, message.requeue, "requeue")

    @staticmethod
    def _settle(message: Any, settle: Any, what: str) -> None:
        if not message.channel.connection:
            return  # the connection was closed: the broker has the message back already
        try:
            settle()
        except (OSError, AMQPError) as exc:
            # The connection died under us. The broker takes the message back and delivers it
            # again after the reconnect; the handler is idempotent, so that changes nothing.
            log.warning(
                "could not %s a message, the broker connection is gone (%s); it will be "
                "delivered again",
                what,
                type(exc).__name__,
            )


def retry_queue(name: str, delay_seconds: float) -> Queue:
    """The delay queue for one retry delay; the delay is in its name, as its TTL can't change."""
    milliseconds = max(int(delay_seconds * 1000), 1)
    return Queue(
        f"{name}.retry.{milliseconds}ms",
        durable=True,
        queue_arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": name,
            "x-message-ttl": milliseconds,
        },
    )


def dead_queue(name: str) -> Queue:
    return Queue(f"{name}.dead", durable=True)


class EventHandler(NamekoEventHandler):
    """`@event_handler(source, event_type)`: the method receives a validated contracts.Event."""

    queue_consumer = QueueConsumer()

    def __init__(self, source_service: str, event_type: str, **kwargs: Any) -> None:
        super().__init__(
            source_service,
            event_type,
            handler_type=SERVICE_POOL,
            reliable_delivery=True,
            requeue_on_error=False,
            **kwargs,
        )

    @property
    def handler_id(self) -> str:
        return f"{self.container.service_name}.{self.method_name}"

    def setup(self) -> None:
        subscribers = SUBSCRIPTIONS.get((self.source_service, self.event_type), ())
        if self.handler_id not in subscribers:
            raise RuntimeError(
                f"{self.handler_id} handles {self.source_service}.{self.event_type} but is not in "
                "lob_common.contracts.SUBSCRIPTIONS; add it so the producer declares its queue"
            )
        super().setup()
        config = self.container.config
        self.max_attempts = int(config.get("EVENT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
        self.retry_base = float(config.get("EVENT_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS))
        self.publisher = Publisher(config["AMQP_URI"], use_confirms=True, retry=True)
        self.dead_queue = dead_queue(self.queue.name)

    def handle_message(self, body: Any, message: Any) -> None:
        try:
            evt = replace(parse_event(body, self.event_type), handler=self.handler_id)
        except MalformedEvent as exc:
            log.error("parking malformed %s message: %s", self.event_type, exc)
            self._forward(
                message, body, self.dead_queue, attempt=0, error=str(exc), outcome="dead_lettered"
            )
            return
        context_data = self.unpack_message_headers(message)
        handle_result = partial(self._handle_result, message, body)
        try:
            self.container.spawn_worker(
                self, (evt,), {}, context_data=context_data, handle_result=handle_result
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def _handle_result(
        self, message: Any, body: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        if exc_info is None:
            outcome = "duplicate" if result is False else "processed"
            metrics.EVENTS_CONSUMED.labels(self.event_type, self.handler_id, outcome).inc()
            log.info(
                "%s %s %s event %s",
                self.handler_id,
                outcome,
                self.event_type,
                body.get("event_id") if isinstance(body, dict) else None,
            )
            self.queue_consumer.ack_message(message)
            return result, exc_info
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 0)) + 1
        error = f"{exc_info[0].__name__}: {exc_info[1]}"
        if attempt < self.max_attempts:
            delay = self.retry_base * (4 ** (attempt - 1))
            log.warning(
                "%s failed on %s (attempt %d of %d, next in %.0fs): %s",
                self.handler_id,
                self.event_type,
                attempt,
                self.max_attempts,
                delay,
                error,
            )
            queue = retry_queue(self.queue.name, delay)
            self._forward(message, body, queue, attempt, error, "retried")
        else:
            log.error(
                "%s failed on %s %d times; parked in %s: %s",
                self.handler_id,
                self.event_type,
                attempt,
                self.dead_queue.name,
                error,
            )
            self._forward(message, body, self.dead_queue, attempt, error, "dead_lettered")
        return result, exc_info

    def _forward(
        self,
        message: Any,
        body: Any,
        queue: Queue,
        attempt: int,
        error: str,
        outcome: str,
    ) -> None:
        headers = dict(message.headers or {})
        headers.update(
            {
                ATTEMPT_HEADER: attempt,
                ERROR_HEADER: error[:2000],
                "x-lob-failed-at": datetime.now(UTC).isoformat(),
                "x-lob-queue": self.queue.name,
            }
        )
        try:
            self.publisher.publish(
                body,
                exchange="",
                routing_key=queue.name,
                headers=headers,
                declare=[queue],
            )
        except Exception:
            log.exception(
                "could not move a %s message to %s; requeueing it", self.event_type, queue.name
            )
            self.queue_consumer.requeue_message(message)
            return
        metrics.EVENTS_CONSUMED.labels(self.event_type, self.handler_id, outcome).inc()
        self.queue_consumer.ack_message(message)


event_handler = EventHandler.decorator


class _Responder(Responder):
    publisher_cls = partial(Publisher, retry_policy=REPLY_RETRY_POLICY)


class RpcConsumer(NamekoRpcConsumer):
    """nameko's RPC consumer; a reply that cannot be sent puts the request back, never kills."""

    queue_consumer = QueueConsumer()

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        config = self.container.config
        responder = _Responder(
            config["AMQP_URI"],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, "json"),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        try:
            result, exc_info = responder.send_response(result, exc_info)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the caller retries or waits
            log.warning(
                "could not send the reply to %s (%s); the request goes back to the queue",
                message.delivery_info.get("routing_key"),
                type(exc).__name__,
            )
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info


class Rpc(NamekoRpc):
    rpc_consumer = RpcConsumer()


rpc = Rpc.decorator


class ReplyListener(NamekoReplyListener):
    """nameko's RPC reply listener on our QueueConsumer, with a queue that goes with its process.

    nameko's reply queue outlives its process by 5 minutes (x-expires), keeping replies nobody
    will read; ours is deleted as soon as its consumer is gone (auto-delete). A reply in flight
    during a reconnect is lost with it; the caller's timeout covers that.
    """

    queue_consumer = QueueConsumer()

    def setup(self) -> None:
        reply_queue_uuid = uuid.uuid4()
        self.routing_key = str(reply_queue_uuid)
        self.queue = Queue(
            RPC_REPLY_QUEUE_TEMPLATE.format(self.container.service_name, reply_queue_uuid),
            exchange=get_rpc_exchange(self.container.config),
            routing_key=self.routing_key,
            auto_delete=True,
            queue_arguments={"x-expires": REPLY_QUEUE_EXPIRES_MS},
        )
        self.queue_consumer.register_provider(self)


class RpcProxy(NamekoRpcProxy):
    """`RpcProxy("service")`: calls another service; see ReplyListener."""

    rpc_reply_listener = ReplyListener()


def handler_queues(service: str) -> list[str]:
    """The event queues a service consumes from (from the subscription table)."""
    return [
        queue_name(source, event_type, handler)
        for (source, event_type), handlers in SUBSCRIPTIONS.items()
        for handler in handlers
        if handler.split(".", 1)[0] == service
    ]


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    event_type: str
    event_id: str
    attempts: int
    error: str
    failed_at: str


def dead_letter_counts(amqp_uri: str, service: str) -> dict[str, int]:
    """Messages waiting in each dead-letter queue of a service (0 where none was ever parked)."""
    counts: dict[str, int] = {}
    with Connection(amqp_uri, connect_timeout=5) as connection:
        for name in handler_queues(service):
            queue = dead_queue(name)
            channel = connection.channel()
            try:
                _, count, _ = queue(channel).queue_declare()
            finally:
                channel.close()
            counts[queue.name] = count
    return counts


def _drain(amqp_uri: str, service: str, limit: int | None) -> Iterator[tuple[str, Any, Any]]:
    with Connection(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        taken = 0
        for name in handler_queues(service):
            queue = dead_queue(name)(channel)
            queue.declare()
            while limit is None or taken < limit:
                message = queue.get(no_ack=False)
                if message is None:
                    break
                taken += 1
                yield name, message, channel


def list_dead_letters(amqp_uri: str, service: str, limit: int = 100) -> list[DeadLetter]:
    """Look at parked messages without removing them.

    They are read unacknowledged, so closing the connection puts every one back.
    """
    return [_describe(name, message) for name, message, _ in _drain(amqp_uri, service, limit)]


def replay_dead_letters(amqp_uri: str, service: str, limit: int | None = None) -> int:
    """Move parked messages back to their handler's queue with a fresh attempt count."""
    publisher = Publisher(amqp_uri, use_confirms=True, retry=True)
    moved = 0
    for name, message, _ in _drain(amqp_uri, service, limit):
        headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-lob")}
        publisher.publish(json.loads(message.body), exchange="", routing_key=name, headers=headers)
        message.ack()
        moved += 1
    return moved


def _describe(queue: str, message: Any) -> DeadLetter:
    headers = message.headers or {}
    try:
        body = json.loads(message.body)
    except (ValueError, TypeError):
        body = {}
    body = body if isinstance(body, dict) else {}
    return DeadLetter(
        queue=queue,
        event_type=str(body.get("event_type", "?")),
        event_id=str(body.get("event_id", "?")),
        attempts=int(headers.get(ATTEMPT_HEADER, 0)),
        error=str(headers.get(ERROR_HEADER, "")),
        failed_at=str(headers.get("x-lob-failed-at", "")),
    )
