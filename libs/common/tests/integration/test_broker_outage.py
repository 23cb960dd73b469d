"""The broker goes away while a service is busy: no process dies, nothing is lost or done twice.

A broker restart (or a network cut) drops the connection that delivered the messages in flight.
Their workers finish and then ack, requeue or reply on a dead socket; the broker has already
taken the messages back and delivers them again once the service has reconnected. Before the fix
that ack raised (BrokenPipeError) out of the worker thread and nameko killed the whole service:
`CRITICAL nameko.containers ... thread exited with error`, then 500 ContainerBeingKilled.

The service talks to the real broker through a TcpProxy; `proxy.close()` cuts its connections
and refuses new ones, as a stopped broker does. Other tests and services on this machine keep
their connections.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import requests
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from lob_common import contracts
from lob_common.contracts import dump_event, new_event, queue_name
from lob_common.messaging import RpcProxy, event_handler, rpc
from lob_common.providers import Database, ServiceBase
from lob_testing import TcpProxy, base_url, poll, sample, service_test_config, vhost_queues
from reporting.adapters.tables import Base
from reporting.service import MIGRATIONS

pytestmark = pytest.mark.integration

HANDLER = "testsvc.handle_signed_up"
QUEUE = queue_name("registration", "signed_up", HANDLER)


class Holding(ServiceBase):
    """Applies each event once; `cut` (when set) drops the broker connection as a handler ends."""

    name = "testsvc"
    db = Database(Base.metadata, MIGRATIONS, relay=False)
    cut: ClassVar[Any] = None
    deliveries: ClassVar[list[str]] = []
    applied: ClassVar[list[str]] = []

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event):
        Holding.deliveries.append(event.event_id)
        if event.event_id in Holding.applied:
            return False  # a redelivery: the effect is already there (like @idempotent)
        Holding.applied.append(event.event_id)  # the effect, committed
        Holding._drop_connection()
        return True

    @rpc
    def lookup(self, key):
        Holding.deliveries.append(key)
        Holding._drop_connection()
        return {"key": key}

    @staticmethod
    def _drop_connection() -> None:
        """The broker goes away right now, before the worker acks or replies."""
        cut, Holding.cut = Holding.cut, None
        if cut:
            cut()


@pytest.fixture
def proxy():
    proxy = TcpProxy(5672)
    proxy.open()
    yield proxy
    proxy.close()


@pytest.fixture
def holding(broker, proxy, tmp_path, container_factory, monkeypatch):
    key = ("registration", "signed_up")
    monkeypatch.setitem(contracts.SUBSCRIPTIONS, key, (*contracts.SUBSCRIPTIONS[key], HANDLER))
    Holding.cut, Holding.deliveries, Holding.applied = None, [], []
    config = service_test_config("reporting", proxy.url(broker), f"sqlite:///{tmp_path}/h.db")
    container = container_factory(Holding, config)
    container.start()
    poll(lambda: _ready(base_url(config)), what="the service ready")
    yield base_url(config)
    if not proxy.is_open:
        proxy.open()  # nameko's consumer stops only once it is connected
    container.stop()


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def _send(amqp_uri: str, body: dict) -> None:
    with Connection(amqp_uri) as connection:
        connection.SimpleQueue(QUEUE).put(body, serializer="json")


def _queue_depth(amqp_uri: str) -> tuple[int, int]:
    """(messages ready, consumers) of the handler's queue."""
    with Connection(amqp_uri) as connection:
        _, ready, consumers = connection.default_channel.queue_declare(QUEUE, passive=True)
    return ready, consumers


def test_an_ack_on_a_dropped_connection_kills_nothing_and_the_event_applies_once(
    holding, broker, proxy
):
    event = new_event("signed_up", sample("signed_up"))
    Holding.cut = proxy.cut  # as the handler commits, the broker goes away
    _send(broker, dump_event(event))
    poll(lambda: Holding.applied == [event.event_id], what="the event applied")
    poll(lambda: not _ready(holding), what="not ready while the broker is away")

    proxy.open()  # the broker is back

    poll(
        lambda: Holding.deliveries == [event.event_id] * 2,
        timeout=60,
        what="the event delivered again after the reconnect (its ack was lost)",
    )
    poll(lambda: _ready(holding), timeout=30, what="ready again")
    later = new_event("signed_up", sample("signed_up"))
    _send(broker, dump_event(later))
    poll(lambda: later.event_id in Holding.applied, what="a new event handled after the outage")
    assert Holding.applied == [event.event_id, later.event_id]  # each exactly once
    poll(lambda: _queue_depth(broker) == (0, 1), what="an empty queue with its consumer")


def test_an_rpc_reply_that_cannot_be_sent_kills_nothing_and_the_call_is_answered(
    holding, broker, proxy, caplog
):
    with ClusterRpcProxy({"AMQP_URI": broker}, timeout=60) as cluster:
        Holding.cut = proxy.cut  # the broker goes away before the reply is sent
        reply = cluster.testsvc.lookup.call_async("r1")
        poll(
            lambda: "could not send the reply" in caplog.text,
            what="the reply given up while the broker is away",
        )

        proxy.open()

        assert reply.result() == {"key": "r1"}  # the request came back and was answered
    assert Holding.deliveries == ["r1", "r1"]
    poll(lambda: _ready(holding), timeout=30, what="ready again")


class Caller(ServiceBase):
    """Calls testsvc over RPC, as notifications calls registration."""

    name = "callersvc"
    db = Database(Base.metadata, MIGRATIONS, relay=False)
    testsvc = RpcProxy("testsvc")

    @rpc
    def ask(self, key):
        return self.testsvc.lookup(key)


def _reply_queues(amqp_uri: str) -> list[str]:
    names = [queue["name"] for queue in vhost_queues(amqp_uri)]
    return [name for name in names if name.startswith("rpc.reply-callersvc")]


def test_a_callers_reply_queue_goes_with_its_connection(
    holding, broker, tmp_path, container_factory
):
    """A restarted caller gets a new reply queue; the old one must not keep replies for minutes."""
    config = service_test_config("reporting", broker, f"sqlite:///{tmp_path}/c.db")
    caller = container_factory(Caller, config)
    caller.start()
    with ClusterRpcProxy({"AMQP_URI": broker}, timeout=30) as cluster:
        assert cluster.callersvc.ask("r2") == {"key": "r2"}
    assert len(_reply_queues(broker)) == 1

    caller.kill()  # its connection closes, as when the process dies

    poll(lambda: _reply_queues(broker) == [], what="the caller's reply queue gone")
