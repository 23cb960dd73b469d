"""Root test configuration: eventlet first, then the shared fixtures.

Integration tests use the real RabbitMQ and PostgreSQL of this machine, each test in a vhost and
a database of its own (created here, dropped afterwards), never the ones `make run` uses.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet announces its deprecation on import
    import eventlet

eventlet.monkey_patch()

import pytest  # noqa: E402

import lob_testing as testing  # noqa: E402


@pytest.fixture
def broker():
    """An AMQP URI of a fresh, empty vhost on the local RabbitMQ."""
    with testing.isolated_vhost() as uri:
        yield uri


@pytest.fixture
def postgres_url():
    with testing.isolated_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each test using this runs twice: on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
    else:
        with testing.isolated_postgres_database() as url:
            yield url
