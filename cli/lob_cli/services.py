"""The four services: where their class, tables and config live, and how to reach them locally.

The one bootstrap for using a service's database outside nameko (the `lob` commands): migrate
it, then open it as a DatabaseHandle. Events emitted there wait in the service's outbox until
its running relay publishes them.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `lob schedule infoday` starts without a database
    from sqlalchemy import MetaData

    from lob_common.db import DatabaseHandle


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    entry: str  # module:Class for `nameko run`
    port: int

    @property
    def address(self) -> str:
        """Where it listens: <NAME>_HTTP from the environment, or the local default."""
        return os.environ.get(f"{self.name.upper()}_HTTP", f"127.0.0.1:{self.port}")

    @property
    def config_path(self) -> Path:
        from lob_common.config import service_config_path

        return service_config_path(self.name)

    @property
    def metadata(self) -> MetaData:
        """The service's schema: every service keeps its tables in <name>.adapters.tables."""
        return importlib.import_module(f"{self.name}.adapters.tables").Base.metadata

    @property
    def migrations(self) -> Path:
        return self.config_path.parent / "migrations"


SERVICES = {
    s.name: s
    for s in (
        ServiceInfo("registration", "registration.service:RegistrationService", 8000),
        ServiceInfo("scheduling", "scheduling.service:SchedulingService", 8001),
        ServiceInfo("notifications", "notifications.service:NotificationsService", 8002),
        ServiceInfo("reporting", "reporting.service:ReportingService", 8003),
    )
}


def migrate_service(name: str) -> None:
    from lob_common.config import service_config
    from lob_common.db import make_engine, migrate

    info = SERVICES[name]
    engine = make_engine(service_config(name)["DATABASE_URL"])
    try:
        migrate(engine, info.migrations, lock_name=name)
    finally:
        engine.dispose()


def open_database(name: str) -> DatabaseHandle:
    """SERVICE's database, migrated to the newest schema, for a command outside nameko."""
    from lob_common.config import service_config
    from lob_common.db import DatabaseHandle, make_engine, migrate

    info = SERVICES[name]
    engine = make_engine(service_config(name)["DATABASE_URL"])
    migrate(engine, info.migrations, lock_name=name)
    return DatabaseHandle(engine, info.metadata)
