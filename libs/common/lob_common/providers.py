"""The nameko side of libs/common: dependency providers, the HTTP entrypoint, ops endpoints.

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
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from lob_common import metrics
from lob_common.contracts import Event
from lob_common.db import DatabaseHandle, make_engine, migrate
from lob_common.http import Problem, from_http_exception, json_response
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


class ConsumerHealth(DependencyProvider):
    """Whether this service's own broker consumer is connected and consuming (for /readyz).

    A fresh test connection only shows that the broker answers. After an outage nameko's
    consumer reconnects on its own schedule, and until it has, the service handles no event.
    Reads two attributes of nameko 2.14.1's QueueConsumer (the version is pinned).
    """

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.status

    def status(self) -> str:
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


class ProblemWebServer(WebServer):
    """The web server of every service: problem+json for unknown addresses, and no access
    line of eventlet's own (ApiHandler writes one per request)."""

    def get_wsgi_app(self) -> Any:
        return ProblemWsgiApp(self)

    def get_wsgi_server(
        self, sock: Any, wsgi_app: Any, protocol: Any = HttpOnlyProtocol, debug: bool = False
    ) -> Any:
        return wsgi.Server(
            sock,
            sock.getsockname(),
            wsgi_app,
            protocol=protocol,
            debug=debug,
            log=logging.getLogger("nameko.web.server"),
            log_output=False,
        )


class ApiHandler(HttpRequestHandler):
    """nameko's @http with problem+json errors, request metrics and no stack traces to clients."""

    server = ProblemWebServer()

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
            log_access(self.method, request.path, response.status_code, seconds)
        return response

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


class _Readiness:
    """Cached broker/database checks so probes stay cheap."""

    ttl = 2.0

    def __init__(self) -> None:
        self.checked_at = 0.0
        self.result: dict[str, str] = {}

    def check(self, amqp_uri: str, db: DatabaseHandle) -> dict[str, str]:
        if time.monotonic() - self.checked_at < self.ttl:
            return self.result
        result = {"database": "ok", "broker": "ok"}
        try:
            db.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            result["database"] = f"unreachable: {type(exc).__name__}"
        try:
            with Connection(amqp_uri, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001
            result["broker"] = f"unreachable: {type(exc).__name__}"
        self.checked_at, self.result = time.monotonic(), result
        return result


_readiness = _Readiness()
_dead_letters_checked = [0.0]


class ServiceBase:
    """Entry points every service has. Subclasses set `name` and `db`."""

    name: str
    db: Any
    config = Config()
    correlation = CorrelationId()
    waker = ShutdownWaker()
    consumer_health = ConsumerHealth()

    @http("GET", "/healthz")
    def healthz(self, request: Request) -> Response:
        return json_response({"status": "alive", "service": self.name})

    @http("GET", "/readyz")
    def readyz(self, request: Request) -> Response:
        checks = {**_readiness.check(self.config["AMQP_URI"], self.db)}
        checks["consumer"] = self.consumer_health()
        ready = all(value == "ok" for value in checks.values())
        return json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        self._refresh_dead_letter_gauges()
        return Response(
            generate_latest(),
            mimetype=CONTENT_TYPE_LATEST.split(";")[0],
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    def _refresh_dead_letter_gauges(self) -> None:
        if time.monotonic() - _dead_letters_checked[0] < 15:
            return
        _dead_letters_checked[0] = time.monotonic()
        try:
            for queue, count in dead_letter_counts(self.config["AMQP_URI"], self.name).items():
                metrics.DEAD_LETTERS.labels(queue).set(count)
        except Exception as exc:  # noqa: BLE001 - metrics must answer even without a broker
            log.warning("cannot read dead-letter queues: %s", type(exc).__name__)
