"""A restarted database costs no failed request: pooled connections it ended are replaced.

PostgreSQL is reached through a lob_testing.TcpProxy, whose cut() resets every connection, as a
database restart does to its clients (without restarting the machine's server for everyone).
"""

import pytest
from sqlalchemy import MetaData, create_engine, exc, text

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
