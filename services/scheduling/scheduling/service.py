"""The scheduling service: keeps the sign-ups it will plan from, and (later) runs the plans."""

from __future__ import annotations

from pathlib import Path

from lob_common.contracts import Event
from lob_common.messaging import event_handler
from lob_common.providers import Database, ServiceBase
from scheduling import handlers
from scheduling.adapters.tables import Base

MIGRATIONS = Path(__file__).parent / "migrations"


class SchedulingService(ServiceBase):
    name = "scheduling"
    db = Database(Base.metadata, MIGRATIONS)

    @event_handler("registration", "activity_published")
    def handle_activity_published(self, event: Event) -> bool:
        return handlers.record_activity(self.db, event)

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event: Event) -> bool:
        return handlers.record_sign_up(self.db, event)

    @event_handler("registration", "sign_up_cancelled")
    def handle_sign_up_cancelled(self, event: Event) -> bool:
        return handlers.record_cancellation(self.db, event)

    @event_handler("registration", "person_erased")
    def handle_person_erased(self, event: Event) -> bool:
        return handlers.erase_person(self.db, event)
