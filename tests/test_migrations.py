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
