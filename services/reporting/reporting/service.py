"""The reporting service: the read side. Consumes events, serves the region's tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response

from lob_common.batch import batch_event_handler
from lob_common.contracts import Event
from lob_common.http import json_response, load
from lob_common.messaging import RpcProxy, event_handler
from lob_common.providers import Database, ServiceBase, call_with_timeout, http
from reporting import handlers
from reporting.adapters.export import render
from reporting.adapters.tables import Base
from reporting.openapi import openapi_document
from reporting.schemas import ParticipationOut, ReportQuery

MIGRATIONS = Path(__file__).parent / "migrations"


class KnownKeys(DependencyProvider):
    """One cache of registration's answers per running service (handlers.KeyCache)."""

    def setup(self) -> None:
        seconds = float(self.container.config.get("KEY_CACHE_SECONDS", 30))
        self.cache = handlers.KeyCache(ttl=seconds, ttl_unknown=min(seconds, 5.0))

    def get_dependency(self, worker_ctx: Any) -> handlers.KeyCache:
        return self.cache


class ReportingService(ServiceBase):
    name = "reporting"
    db = Database(Base.metadata, MIGRATIONS, relay=False)
    registration = RpcProxy("registration")
    known_keys = KnownKeys()

    @event_handler("registration", "school_registered")
    def handle_school_registered(self, event: Event) -> bool:
        return handlers.record_school(self.db, event)

    @event_handler("registration", "activity_published")
    def handle_activity_published(self, event: Event) -> bool:
        return handlers.record_activity(self.db, event)

    @event_handler("registration", "activity_cancelled")
    def handle_activity_cancelled(self, event: Event) -> bool:
        return handlers.record_activity_cancelled(self.db, event)

    @batch_event_handler("registration", "signed_up")
    def handle_signed_up(self, events: list[Event]) -> int:
        return handlers.record_sign_ups(self.db, events)

    @batch_event_handler("registration", "sign_up_cancelled")
    def handle_sign_up_cancelled(self, events: list[Event]) -> int:
        return handlers.record_cancellations(self.db, events)

    @batch_event_handler("registration", "attendance_recorded")
    def handle_attendance_recorded(self, events: list[Event]) -> int:
        return handlers.record_attendances(self.db, events)

    @batch_event_handler("registration", "participation_imported")
    def handle_participation_imported(self, events: list[Event]) -> int:
        return handlers.record_imported_participation(self.db, events)

    @event_handler("registration", "person_erased")
    def handle_person_erased(self, event: Event) -> bool:
        return handlers.forget_person(self.db, event)

    def _caller(self, request: Request) -> handlers.Caller:
        timeout = float(self.config.get("RPC_TIMEOUT_SECONDS", 5))

        def identify(key_hash: str) -> dict | None:
            return call_with_timeout(self.registration.identify_key, key_hash, timeout=timeout)

        return handlers.authenticate(
            request, self.config.get("OPERATOR_KEY"), identify, self.known_keys
        )

    @http("GET", "/reports/participation")
    def get_participation(self, request: Request) -> Response:
        handlers.require_operator(self._caller(request))
        counts = handlers.participation(self.db, request.args.get("activity_id"))
        return json_response(ParticipationOut().dump(counts))

    @http("GET", "/reports/<string:table>")
    def get_report(self, request: Request, table: str) -> Response:
        caller = self._caller(request)
        query = load(ReportQuery(), handlers.query_arguments(request.args))
        published = handlers.report_for(self.db, caller, table, query, self.config)
        body, content_type, filename = render(published, query["format"])
        disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(body, mimetype=content_type, headers=disposition)

    @http("GET", "/openapi.json")
    def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())
