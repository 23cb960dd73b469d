"""Helpers for the tests of every service: isolated vhosts and databases, polling, ports.

Tests poll with a deadline instead of sleeping: they finish as soon as the effect is there and
fail with a clear message when it never comes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import requests

RABBIT_HOST = os.environ.get("LOB_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_API = os.environ.get("LOB_TEST_RABBIT_API", f"http://{RABBIT_HOST}:15672/api")
PG_ADMIN_URL = os.environ.get("LOB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OPERATOR_KEY = "test-operator-key"

T = TypeVar("T")


def poll(
    check: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "the expected state",
) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def isolated_vhost() -> Iterator[str]:
    vhost = f"lobtest-{uuid.uuid4().hex[:12]}"
    _create_vhost(vhost)
    try:
        yield f"amqp://guest:guest@{RABBIT_HOST}:5672/{quote(vhost, safe='')}"
    finally:
        _delete_vhost(vhost)


def _create_vhost(vhost: str) -> None:
    try:
        auth = ("guest", "guest")
        requests.put(f"{RABBIT_API}/vhosts/{vhost}", auth=auth, timeout=10).raise_for_status()
        requests.put(
            f"{RABBIT_API}/permissions/{vhost}/guest",
            auth=auth,
            timeout=10,
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
    except requests.ConnectionError:
        # No management plugin: the CLI does the same, slower.
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
        )


def _delete_vhost(vhost: str) -> None:
    try:
        requests.delete(f"{RABBIT_API}/vhosts/{vhost}", auth=("guest", "guest"), timeout=10)
    except requests.ConnectionError:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)


@contextmanager
def isolated_postgres_database() -> Iterator[str]:
    import psycopg2

    name = f"lobtest_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def service_test_config(
    service: str, amqp_uri: str, database_url: str, **overrides: Any
) -> dict[str, Any]:
    """A service's own config.yml with this test's broker, database and a free HTTP port."""
    from lob_common.config import service_config

    config = service_config(service)
    config.pop("LOGGING", None)
    config.update(
        {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": database_url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "OPERATOR_KEY": OPERATOR_KEY,
            "EVENT_RETRY_BASE_SECONDS": 0.05,
            "EVENT_MAX_ATTEMPTS": 3,
        }
    )
    config.update(overrides)
    return config


def base_url(config: dict[str, Any]) -> str:
    return f"http://{config['WEB_SERVER_ADDRESS']}"
