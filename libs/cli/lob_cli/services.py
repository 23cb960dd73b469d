"""The four services: where their class and config live, and how to reach them locally."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lob_common.config import service_config, service_config_path
from lob_common.db import make_engine, migrate


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
        return service_config_path(self.name)

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
    info = SERVICES[name]
    engine = make_engine(service_config(name)["DATABASE_URL"])
    try:
        migrate(engine, info.migrations, lock_name=name)
    finally:
        engine.dispose()
