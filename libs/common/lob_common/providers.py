"""The nameko side of libs/common: dependency providers, the HTTP entrypoint and its server,
the operations endpoints.

A service class inherits `ServiceBase` (which brings /healthz, /readyz, /metrics, correlation ids
and prompt shutdown) and declares `db = Database(models.metadata, MIGRATIONS)`.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import eventlet
from eventlet import wsgi
from kombu import Connection
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WsgiApp
from nameko.web.server import WebServer as NamekoWebServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from lob_common import metrics
from lob_common.contracts import Event
from lob_common.db import DatabaseHandle, make_engine, migrate
from lob_common.http import (
    CLOSE_CONNECTION,
    HttpGuard,
    Problem,
    UnauthenticatedLimiter,
    from_http_exception,
    json_response,
)
from lob_common.logging import correlation_id, printable
from lob_common.messaging import dead_letter_counts
from lob_common.outbox import OutboxRelay

log = logging.getLogger(__name__)


def call_with_timeout(method: Any, *args: Any, timeout: float = 10.0) -> Any:
    """An RPC call that gives up: nameko 2 waits forever for a service that is down."""
    with eventlet.Timeout(timeout, TimeoutError(f"no answer within {timeout:g} s")):
        return method(*args)


class Database(DependencyProvider):
    """Engine + migrations on start + (for producers) the outbox relay; workers get a handle."""

    def __init__(self, metadata: MetaData, migrations: str | Path, relay: bool = True) -> None:
        self.metadata = metadata
        self.migrations = migrations
        self.relay_enabled = relay
        self.relay: OutboxRelay | None = None

    def setup(self) -> None:
        config = self.container.config
        self.engine = make_engine(config["DATABASE_URL"])
        if config.get("DB_MIGRATE_ON_START", True):
            migrate(self.engine, self.migrations, lock_name=self.container.service_name)
        if self.relay_enabled:
            self.relay = OutboxRelay(
                self.engine, self.metadata, self.container.service_name, config["AMQP_URI"], config
            )
        wake = self.relay.wake if self.relay else None
        self.handle = DatabaseHandle(self.engine, self.metadata, on_commit=wake)

    def start(self) -> None:
        if self.relay:
            self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")

    def stop(self) -> None:
        if self.relay:
            self.relay.stop()
        self.engine.dispose()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> DatabaseHandle:
        return self.handle


CORRELATION_HEADER = "X-Correlation-ID"


class CorrelationId(DependencyProvider):
    """Sets the log correlation id for each worker, from the HTTP header or the event."""

    def worker_setup(self, worker_ctx: Any) -> None:
        value = None
        for arg in worker_ctx.args:
            if isinstance(arg, Event):
                value = arg.correlation_id
            elif isinstance(arg, Request):
                value = arg.headers.get(CORRELATION_HEADER)
        correlation_id.set(value or str(uuid.uuid4()))


class ShutdownWaker(DependencyProvider):
    """Wakes the event loop twice a second so SIGTERM is acted on at once.

    nameko's SIGTERM handler only schedules the stop; an idle eventlet hub runs it when it next
    wakes, up to 60 s later, which made `kill` and Kubernetes stops of an HTTP-only service take
    about a minute (tests/e2e: 56-61 s without this, under 1 s with it).
    """

    def start(self) -> None:
        self._thread = eventlet.spawn(self._tick)

    def stop(self) -> None:
        self._thread.kill()

    kill = stop

    @staticmethod
    def _tick() -> None:
        while True:
            eventlet.sleep(0.5)


class _Protocol(HttpOnlyProtocol):
    """eventlet's HTTP protocol (as nameko uses it) that lets the app end the connection after its
    response: after a 413 the server must not read, to discard, the body we refused."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[CLOSE_CONNECTION] = self._close_after_response
        return environ

    def _close_after_response(self) -> None:
        self.close_connection = 1


class WebServer(NamekoWebServer):
    """nameko's web server, made safe to expose.

    - It binds its port exclusively. eventlet.listen sets SO_REUSEPORT by default, so a second
      process on the same port started without error and the kernel shared the connections
      between the two; now the second one fails at start with "address in use".
    - A connection that sends nothing for HTTP_READ_TIMEOUT_SECONDS (10) is closed, so slow or
      stalled clients cannot hold connections and green threads for ever.
    - HttpGuard refuses oversized bodies and floods of unauthenticated requests before any work.
    - An unknown address or method is answered as problem+json (ProblemWsgiApp).
    - One access line per request, ours (ApiHandler); eventlet's own line is off.
    """

    def start(self) -> None:
        if not self._starting:
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, reuse_port=False)
            self._sock.settimeout(None)  # as nameko: https://github.com/celery/kombu/issues/838
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def get_wsgi_app(self) -> Any:
        config = self.container.config
        return HttpGuard(
            ProblemWsgiApp(self),
            # The outer bound, above every endpoint's own (JSON 1 MiB, a roster file 5 MiB).
            max_body_bytes=int(config.get("HTTP_MAX_BODY_BYTES", 8 * 1024 * 1024)),
            limiter=UnauthenticatedLimiter(
                burst=int(config.get("HTTP_UNAUTHENTICATED_BURST", 20)),
                per_second=float(config.get("HTTP_UNAUTHENTICATED_PER_SECOND", 1)),
            ),
            trust_forwarded_for=_flag(config.get("HTTP_TRUST_X_FORWARDED_FOR", False)),
        )

    def get_wsgi_server(
        self, sock: Any, wsgi_app: Any, protocol: Any = _Protocol, debug: bool = False
    ) -> Any:
        return wsgi.Server(
            sock,
            sock.getsockname(),
            wsgi_app,
            protocol=protocol,
            debug=debug,
            log_output=False,
            socket_timeout=float(self.container.config.get("HTTP_READ_TIMEOUT_SECONDS", 10)),
        )


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and scrapes: no access log


def log_access(method: str, path: str, status: int, seconds: float) -> None:
    """The one access line of a request. Paths only (ids, never query strings or bodies),
    escaped: a %0A in a URL must not start a line of its own in the log."""
    log.info("%s %s %d %.0f ms", printable(method), printable(path), status, seconds * 1000)


class ProblemWsgiApp(WsgiApp):
    """nameko's WSGI app, but an unknown address or method is answered as problem+json (and
    logged once, like every request)."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        adapter = self.url_map.bind_to_environ(environ)
        try:
            adapter.match()
        except HTTPException as exc:
            request = Request(environ, shallow=True)
            response = from_http_exception(exc).response()
            log_access(request.method, request.path, response.status_code, 0.0)
            metrics.HTTP_REQUESTS.labels(request.method, "(unknown)", str(exc.code)).inc()
            return response(environ, start_response)
        return super().__call__(environ, start_response)


class ApiHandler(HttpRequestHandler):
    """nameko's @http with problem+json errors, request metrics and no stack traces to clients."""

    server = WebServer()

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("expected_exceptions", (Problem,))
        super().__init__(method, url, **kwargs)

    def handle_request(self, request: Request) -> Response:
        """Every request gets a correlation id (the caller's, or a new one) that the worker, its
        log lines and the events it emits carry, and that the response returns to the caller."""
        started = time.perf_counter()
        given = request.headers.get(CORRELATION_HEADER, "")[:64]
        value = given or str(uuid.uuid4())
        request.environ["HTTP_X_CORRELATION_ID"] = value  # what the worker reads
        correlation_id.set(value)
        response = super().handle_request(request)
        response.headers[CORRELATION_HEADER] = value
        seconds = time.perf_counter() - started
        metrics.HTTP_REQUESTS.labels(self.method, self.url, str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(self.method, self.url).observe(seconds)
        if self.url not in QUIET_PATHS:
            log_access(self.method, self.logged_path(request), response.status_code, seconds)
        return response

    def logged_path(self, request: Request) -> str:
        """The path the access log shows; an entrypoint whose path holds a secret (a link's
        token) logs its route instead."""
        return request.path

    def response_from_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Problem):
            return exc.response()
        if isinstance(exc, HTTPException):  # e.g. werkzeug's 413 while reading a body
            return from_http_exception(exc).response()
        log.error("unexpected %s in %s %s", type(exc).__name__, self.method, self.url)
        return Problem(
            500,
            "internal-error",
            "Er ging iets mis aan onze kant",
            "Probeer het later opnieuw; de beheerders zijn gewaarschuwd.",
        ).response()


http = ApiHandler.decorator


class Operations(DependencyProvider):
    """/healthz, /readyz and /metrics, answered by the web server's own green thread.

    They never wait for a worker. Workers are few (max_workers) and may all be busy: in
    notifications each one waited up to 10 s on an RPC to registration while registration was
    down, and /readyz, queued behind them, hung. A probe that hangs gets the pod killed; this one
    answers at once, whatever the workers do.

    /readyz is 200 only when the database answers, the broker answers, and this service's own
    consumer is connected and consuming: after a broker outage nameko's consumer reconnects on
    its own schedule, and until it has, the service handles no event.
    """

    server = WebServer()
    checks_ttl = 2.0  # cached broker/database checks keep probes cheap
    dead_letters_ttl = 15.0

    def setup(self) -> None:
        self.server.register_provider(self)
        self._checked_at, self._checks = 0.0, {}
        self._dead_letters_checked_at = 0.0

    def stop(self) -> None:
        self.server.unregister_provider(self)

    kill = stop

    def get_url_rule(self) -> Rule:
        return Rule("/<any(healthz, readyz, metrics):probe>", methods=["GET"])

    def handle_request(self, request: Request) -> Response:
        probe = request.path_values["probe"]
        if probe == "healthz":
            return json_response({"status": "alive", "service": self.container.service_name})
        if probe == "readyz":
            checks = {**self._cached_checks(), "consumer": self.consumer_status()}
            ready = all(value == "ok" for value in checks.values())
            return json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)
        self._refresh_dead_letter_gauges()
        return Response(
            generate_latest(),
            mimetype=CONTENT_TYPE_LATEST.split(";")[0],
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    def _cached_checks(self) -> dict[str, str]:
        if time.monotonic() - self._checked_at < self.checks_ttl:
            return self._checks
        checks = {"database": "ok", "broker": "ok"}
        try:
            self._database().ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            with Connection(self.container.config["AMQP_URI"], connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        self._checked_at, self._checks = time.monotonic(), checks
        return checks

    def _database(self) -> DatabaseHandle:
        [database] = [d for d in self.container.dependencies if isinstance(d, Database)]
        return database.handle

    def consumer_status(self) -> str:
        """Whether this service's own broker consumer is connected and consuming.

        A fresh test connection only shows that the broker answers. Reads two attributes of
        nameko 2.14.1's QueueConsumer (the version is pinned). A service that only serves HTTP
        has no consumer, and is then "ok".
        """
        for consumer in self.container.subextensions:
            if not isinstance(consumer, QueueConsumer):
                continue
            if not consumer._consumers_ready.ready():
                return "connecting"
            for queue_consumer in consumer._consumers.values():
                connection = getattr(queue_consumer.channel, "connection", None)
                if connection is None or not connection.connected:
                    return "reconnecting"
        return "ok"

    def _refresh_dead_letter_gauges(self) -> None:
        if time.monotonic() - self._dead_letters_checked_at < self.dead_letters_ttl:
            return
        self._dead_letters_checked_at = time.monotonic()
        service = self.container.service_name
        try:
            for queue, count in dead_letter_counts(
                self.container.config["AMQP_URI"], service
            ).items():
                metrics.DEAD_LETTERS.labels(queue).set(count)
        except Exception as exc:  # noqa: BLE001 - metrics must answer even without a broker
            log.warning("cannot read dead-letter queues: %s", type(exc).__name__)


class ServiceBase:
    """What every service has: config, correlation ids, prompt shutdown, and the operations
    endpoints /healthz, /readyz, /metrics. Subclasses set `name` and `db`."""

    name: str
    db: Any
    config = Config()
    correlation = CorrelationId()
    waker = ShutdownWaker()
    operations = Operations()


class ConfigTimer(Timer):
    """nameko's @timer whose interval is a config setting (seconds), read when the service
    starts, so tests and deployments set it without code: @config_timer("SWEEP_SECONDS", 60)."""

    def __init__(self, setting: str, default: float, **kwargs: Any) -> None:
        super().__init__(interval=default, **kwargs)
        self.setting = setting

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.setting, self.interval))
        super().setup()


config_timer = ConfigTimer.decorator
