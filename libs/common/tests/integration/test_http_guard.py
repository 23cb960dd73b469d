"""Every service's HTTP port under a hostile or unlucky client (lob_common.providers.WebServer).

Raw sockets where a normal client library would hide what the server does: a body that is never
sent, a request that never ends.
"""

from __future__ import annotations

import logging
import socket
from typing import ClassVar

import eventlet
import pytest
import requests
from eventlet.event import Event as GreenEvent

from lob_common.http import json_response, read_json, same_secret, unauthorized
from lob_common.providers import Database, ServiceBase, http
from lob_testing import base_url, poll, service_test_config
from reporting.adapters.tables import Base
from reporting.service import MIGRATIONS

pytestmark = pytest.mark.integration
KEY = "guard-test-key"


class Guarded(ServiceBase):
    """An API with a key, an echo, and a slow endpoint."""

    name = "guarded"
    db = Database(Base.metadata, MIGRATIONS, relay=False)
    gate: ClassVar[GreenEvent]
    waiting: ClassVar[int] = 0

    @http("GET", "/private")
    def private(self, request):
        if not same_secret(request.headers.get("Authorization", "")[7:], KEY):
            raise unauthorized()
        return json_response({"ok": True})

    @http("POST", "/echo")
    def echo(self, request):
        return json_response({"received": read_json(request)})

    @http("GET", "/slow")
    def slow(self, request):
        Guarded.waiting += 1
        Guarded.gate.wait()
        return json_response({"done": True})


@pytest.fixture
def guarded(broker, tmp_path, container_factory):
    Guarded.gate, Guarded.waiting = GreenEvent(), 0
    config = service_test_config(
        "reporting",
        broker,
        f"sqlite:///{tmp_path}/g.db",
        max_workers=2,
        HTTP_MAX_BODY_BYTES=64 * 1024,
        HTTP_READ_TIMEOUT_SECONDS=1,
        HTTP_UNAUTHENTICATED_BURST=5,
        HTTP_UNAUTHENTICATED_PER_SECOND=0.1,
        HTTP_TRUST_X_FORWARDED_FOR=True,
    )
    container = container_factory(Guarded, config)
    container.start()
    yield config
    if not Guarded.gate.ready():
        Guarded.gate.send(True)


def _connect(config) -> socket.socket:
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_an_oversized_body_gets_413_before_it_is_sent_and_the_connection_closes(guarded):
    with _connect(guarded) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )  # the 50 MB body never comes: the answer must not wait for it
        answer = _read_all(sock).decode()
    head, body = answer.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 413")
    assert "Content-Type: application/problem+json" in head
    assert '"code": "payload-too-large"' in body
    assert "64 kB" in body


def test_a_body_within_the_limit_is_read(guarded):
    response = requests.post(f"{base_url(guarded)}/echo", json={"a": "b" * 1000}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"received": {"a": "b" * 1000}}


def test_a_chunked_body_of_unknown_size_is_refused_with_411(guarded):
    def chunks():
        yield b'{"a": '
        yield b'"b"}'

    response = requests.post(
        f"{base_url(guarded)}/echo",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 411
    assert response.json()["code"] == "length-required"


def test_a_client_that_stalls_is_disconnected_and_others_are_served_meanwhile(guarded):
    with _connect(guarded) as stalled:
        stalled.sendall(b"GET /private HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
        response = requests.get(f"{base_url(guarded)}/healthz", timeout=5)
        assert response.status_code == 200
        assert _read_all(stalled) == b""  # closed by the server (HTTP_READ_TIMEOUT_SECONDS)


def _from(address: str, key: str | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": address}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def test_a_flood_without_a_key_is_limited_per_address_and_others_still_get_in(guarded):
    url = f"{base_url(guarded)}/private"
    flood = [requests.get(url, headers=_from("203.0.113.9"), timeout=5) for _ in range(5)]
    assert [r.status_code for r in flood] == [401] * 5

    limited = requests.get(url, headers=_from("203.0.113.9", KEY), timeout=5)

    assert limited.status_code == 429  # even with a key: the address used up its allowance
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert limited.json()["code"] == "too-many-requests"
    assert int(limited.headers["Retry-After"]) >= 1
    assert requests.get(url, headers=_from("198.51.100.7", KEY), timeout=5).status_code == 200
    assert requests.get(url, headers=_from("198.51.100.7"), timeout=5).status_code == 401
    metrics = requests.get(f"{base_url(guarded)}/metrics", timeout=5).text
    assert 'lob_http_rejected_total{reason="rate_limited"} 1.0' in metrics


def test_probes_answer_while_every_worker_is_busy(guarded):
    url = base_url(guarded)
    with requests.Session() as first, requests.Session() as second:
        busy = [eventlet.spawn(s.get, f"{url}/slow", timeout=60) for s in (first, second)]
        poll(lambda: Guarded.waiting == 2, what="both workers busy")

        for probe in ("healthz", "readyz", "metrics"):
            assert requests.get(f"{url}/{probe}", timeout=5).status_code == 200, probe

        Guarded.gate.send(True)
        assert [b.wait().status_code for b in busy] == [200, 200]


def test_a_second_service_on_the_same_port_fails_to_start(guarded, tmp_path, container_factory):
    config = {**guarded, "DATABASE_URL": f"sqlite:///{tmp_path}/second.db"}
    second = container_factory(Guarded, config)
    with pytest.raises(OSError, match="in use"):
        second.start()
    assert requests.get(f"{base_url(guarded)}/healthz", timeout=5).status_code == 200


def test_each_request_is_logged_once(guarded, caplog):
    caplog.set_level(logging.INFO)
    requests.get(f"{base_url(guarded)}/private", headers=_from("192.0.2.1", KEY), timeout=5)
    lines = [r.getMessage() for r in caplog.records if "/private" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("GET /private 200")
