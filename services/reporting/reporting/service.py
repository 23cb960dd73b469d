"""The reporting service: the read side. Consumes events, serves participation figures."""

from __future__ import annotations

from pathlib import Path

from werkzeug.wrappers import Request, Response

from lob_common.contracts import Event
from lob_common.http import bearer_token, json_response, same_secret, unauthorized
from lob_common.messaging import event_handler
from lob_common.providers import Database, ServiceBase, http
from reporting import handlers
from reporting.adapters.tables import Base

MIGRATIONS = Path(__file__).parent / "migrations"


class ReportingService(ServiceBase):
    name = "reporting"
    db = Database(Base.metadata, MIGRATIONS, relay=False)

    @event_handler("registration", "signed_up")
    def handle_signed_up(self, event: Event) -> bool:
        return handlers.record_sign_up(self.db, event)

    @event_handler("registration", "sign_up_cancelled")
    def handle_sign_up_cancelled(self, event: Event) -> bool:
        return handlers.record_cancellation(self.db, event)

    @event_handler("registration", "attendance_recorded")
    def handle_attendance_recorded(self, event: Event) -> bool:
        return handlers.record_attendance(self.db, event)

    @event_handler("registration", "person_erased")
    def handle_person_erased(self, event: Event) -> bool:
        return handlers.forget_person(self.db, event)

    @http("GET", "/reports/participation")
    def get_participation(self, request: Request) -> Response:
        if not same_secret(bearer_token(request), self.config.get("OPERATOR_KEY")):
            raise unauthorized()
        return json_response(handlers.participation(self.db, request.args.get("activity_id")))
