"""A restarted database costs no failed request: pooled connections it ended are replaced.

PostgreSQL is reached through a lob_testing.TcpProxy, whose cut() resets every connection, as a
database restart does to its clients (without restarting the machine's server for everyone).
"""

import pytest
from sqlalchemy import MetaData, create_engine, exc, text

import lob_common.db
from lob_common.db import DatabaseHandle, make_engine, messaging_tables
from lob_testing import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy():
    proxy = TcpProxy(5432)
    proxy.open()
    yield proxy
    proxy.close()


def _through(proxy, postgres_url):
    assert ":5432/" in postgres_url, postgres_url
    return postgres_url.replace(":5432/", f":{proxy.port}/", 1)


def _one(db):
    with db() as uow:
        return uow.session.execute(text("SELECT 1")).scalar()


def _handle(engine):
    metadata = MetaData()
    messaging_tables(metadata)
    return DatabaseHandle(engine, metadata)


def test_a_unit_of_work_after_a_database_restart_gets_a_new_connection(proxy, postgres_url):
    engine = make_engine(_through(proxy, postgres_url))
    db = _handle(engine)
    try:
        assert [_one(db) for _ in range(3)] == [1, 1, 1]  # a connection waits in the pool
        proxy.cut()  # the database restarts: every connection is reset
        proxy.open()
        assert _one(db) == 1
        assert _one(db) == 1
    finally:
        engine.dispose()


def test_control_a_pool_that_does_not_look_fails_the_first_request_after_a_restart(
    proxy, postgres_url
):
    """The test above can fail: without make_engine's check the pooled connection is used."""
    engine = create_engine(_through(proxy, postgres_url))
    db = _handle(engine)
    try:
        assert _one(db) == 1
        proxy.cut()
        proxy.open()
        with pytest.raises(exc.OperationalError):
            _one(db)
        assert _one(db) == 1  # SQLAlchemy threw the dead connection away after it failed
    finally:
        engine.dispose()


def test_a_connection_idle_for_long_is_pinged_and_one_in_steady_use_is_not(
    proxy, postgres_url, monkeypatch
):
    """A firewall that drops idle connections leaves no trace on the socket: a connection idle
    past PING_AFTER_IDLE_SECONDS is asked `SELECT 1` first; one in steady use costs no ping."""
    engine = make_engine(_through(proxy, postgres_url))
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or ping(c))
    db = _handle(engine)
    try:
        assert [_one(db) for _ in range(3)] == [1, 1, 1]
        assert pings == []
        monkeypatch.setattr(lob_common.db, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert _one(db) == 1
        assert len(pings) == 1
    finally:
        engine.dispose()
