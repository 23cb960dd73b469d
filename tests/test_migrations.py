"""Each service's migrations build exactly the schema its models describe, on both databases."""

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lob_cli.services import SERVICES
from lob_common.db import make_engine, migrate

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_migrations_match_the_models(service, database_url):
    metadata = importlib.import_module(f"{service}.adapters.tables").Base.metadata
    engine = make_engine(database_url)
    try:
        migrate(engine, SERVICES[service].migrations)
        migrate(engine, SERVICES[service].migrations)  # a second run changes nothing
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == [], f"{service}: models and migrations differ; add a migration"


def test_registration_keys_and_lists_keep_a_running_databases_data(database_url):
    """A database of the first schema with a school key, a pupil and (after a race) two active
    sign-ups of one person: the key becomes a named key, the later sign-up is cancelled, and
    SQLite's table copies do not trip the foreign keys of the rows in other tables."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(SERVICES["registration"].migrations))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            for statement in (
                "INSERT INTO schools (id, name, kind, api_key_hash) "
                "VALUES ('s1', 'School', 'vmbo', 'hash-of-its-key')",
                "INSERT INTO activities (id, kind, title, starts_at, ends_at, location, details) "
                "VALUES ('a1', 'other', 'A', '2027-01-01 10:00:00+00', '2027-01-01 12:00:00+00', "
                "'', '{}')",
                "INSERT INTO persons (id, role, first_name, last_name, email, school_id, "
                "created_at) VALUES ('p1', 'pupil', 'A', 'B', 'a@b.nl', 's1', "
                "'2026-01-01 10:00:00+00')",
                *(
                    "INSERT INTO registrations (id, activity_id, person_id, school_id, status, "
                    f"preferences, consent, created_at) VALUES ('{rid}', 'a1', 'p1', 's1', "
                    f"'signed_up', '{{}}', 'not_required', '2026-01-01 {hour}:00:00+00')"
                    for rid, hour in (("r1", 10), ("r2", 11))
                ),
            ):
                connection.execute(text(statement))
        migrate(engine, SERVICES["registration"].migrations)
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT name, role, school_id, key_hash FROM api_keys"))
            statuses = connection.execute(text("SELECT id, status FROM registrations ORDER BY id"))
            assert keys.all() == [("s1", "school", "s1", "hash-of-its-key")]
            assert statuses.all() == [("r1", "signed_up"), ("r2", "cancelled")]
            if engine.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
