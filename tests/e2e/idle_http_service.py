"""Test-only services for the shutdown tests: `ServiceBase` with HTTP entrypoints and nothing else.

This is the case `ShutdownWaker` exists for. A service with an AMQP consumer wakes its eventlet hub
every second anyway (kombu's drain loop), so it stops promptly even without the waker; an
HTTP-only service has nothing that wakes the hub, and without the waker it ignores SIGTERM for
up to 60 s (measured 56-61 s). Started by the tests with
`nameko run idle_http_service:IdleHttpService`.

The database is reporting's schema on a SQLite file without the outbox relay (the relay would
talk to the broker); the broker is touched only by /readyz.
"""

from __future__ import annotations

from lob_common.providers import Database, ServiceBase
from reporting.adapters.tables import Base
from reporting.service import MIGRATIONS


class IdleHttpService(ServiceBase):
    """Only the /healthz, /readyz and /metrics entrypoints of `ServiceBase`."""

    name = "idle_http"
    db = Database(Base.metadata, MIGRATIONS, relay=False)


class IdleHttpServiceWithoutWaker(IdleHttpService):
    """The same without `ShutdownWaker`: the control that shows the stop tests can fail."""

    name = "idle_http_without_waker"
    waker = None  # nameko finds dependencies by class attribute; None hides the inherited one
