"""The scheduling service: keeps the sign-ups it plans from; plans when sign-up closes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eventlet import tpool
from nameko.timer import timer

from lob_common.batch import batch_event_handler
from lob_common.contracts import Event
from lob_common.db import utcnow
from lob_common.messaging import event_handler, rpc
from lob_common.providers import Database, ServiceBase
from scheduling import handlers
from scheduling.adapters.tables import Base
from scheduling.domain.plan import Outcome, Settings

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def _in_thread(planner: Any, *args: Any) -> Outcome:
    """Solvers are CPU-bound: run them in an OS thread so the service keeps answering."""
    return tpool.execute(planner, *args)


class SchedulingService(ServiceBase):
    name = "scheduling"
    db = Database(Base.metadata, MIGRATIONS)

    @property
    def settings(self) -> Settings:
        return Settings.from_config(self.config)

    @event_handler("registration", "activity_published")
    def handle_activity_published(self, event: Event) -> bool:
        return handlers.record_activity(self.db, event, self.settings)

    @batch_event_handler("registration", "signed_up")
    def handle_signed_up(self, events: list[Event]) -> int:
        return handlers.record_sign_ups(self.db, events, self.settings)

    @event_handler("registration", "sign_up_cancelled")
    def handle_sign_up_cancelled(self, event: Event) -> bool:
        return handlers.record_cancellation(self.db, event, self.settings)

    @event_handler("registration", "attendance_recorded")
    def handle_attendance_recorded(self, event: Event) -> bool:
        return handlers.record_attendance(self.db, event)

    @event_handler("registration", "person_erased")
    def handle_person_erased(self, event: Event) -> bool:
        return handlers.erase_person(self.db, event)

    @timer(interval=60)
    def plan_closed_activities(self) -> None:
        """Plan every activity whose sign-up closed and that has no plan yet."""
        for activity_id in handlers.due_activities(self.db, utcnow()):
            try:
                handlers.run_schedule(self.db, activity_id, self.settings, solve=_in_thread)
            except Exception:
                log.exception("planning %s failed; it is tried again next minute", activity_id)

    @rpc
    def plan_now(self, activity_id: str) -> dict[str, Any]:
        """An operator asks for a (new) plan now, e.g. after late cancellations."""
        return handlers.run_schedule(self.db, activity_id, self.settings, solve=_in_thread)

    @rpc
    def programmes(self, activity_id: str, school_id: str | None = None) -> dict | None:
        return handlers.programmes(self.db, activity_id, school_id)

    @rpc
    def room_lists(self, activity_id: str) -> list[dict] | None:
        return handlers.room_lists(self.db, activity_id)
