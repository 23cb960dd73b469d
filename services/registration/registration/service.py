"""The registration service: HTTP API for schools, participants and operators; RPC for others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nameko.rpc import RpcProxy, rpc
from werkzeug.wrappers import Request, Response

from lob_common.http import json_response, load, not_found, read_json
from lob_common.providers import Database, ServiceBase, call_with_timeout, http
from registration import handlers
from registration.adapters.tables import Base
from registration.openapi import openapi_document
from registration.schemas import ActivityIn

MIGRATIONS = Path(__file__).parent / "migrations"


class RegistrationService(ServiceBase):
    name = "registration"
    db = Database(Base.metadata, MIGRATIONS)
    scheduling = RpcProxy("scheduling")

    def _caller(self, request: Request) -> handlers.Caller:
        return handlers.authenticate(self.db, request, self.config.get("OPERATOR_KEY"))

    @http("POST", "/registrations")
    def create_registration(self, request: Request) -> Response:
        caller = self._caller(request)
        view, created = handlers.sign_up(
            self.db, read_json(request), caller, request.headers.get("Idempotency-Key")
        )
        location = {"Location": f"/registrations/{view['registration_id']}"}
        return json_response(view, 201 if created else 200, location)

    @http("GET", "/registrations/<string:registration_id>")
    def get_registration(self, request: Request, registration_id: str) -> Response:
        view = handlers.get_registration(self.db, registration_id, self._caller(request))
        return json_response(view)

    @http("DELETE", "/registrations/<string:registration_id>")
    def cancel_registration(self, request: Request, registration_id: str) -> Response:
        reason = request.args.get("reason", "")
        return json_response(
            handlers.cancel(self.db, registration_id, self._caller(request), reason)
        )

    @http("DELETE", "/persons/<string:person_id>")
    def erase_person(self, request: Request, person_id: str) -> Response:
        handlers.require_operator(self._caller(request))
        if not handlers.erase_person(self.db, person_id):
            raise not_found(f"Persoon {person_id}")
        return Response(status=204)

    @http("GET", "/activities")
    def list_activities(self, request: Request) -> Response:
        self._caller(request)
        return json_response({"activities": handlers.list_activities(self.db)})

    @http("POST", "/activities")
    def publish_activity(self, request: Request) -> Response:
        handlers.require_operator(self._caller(request))
        view, created = handlers.publish_activity(self.db, load(ActivityIn(), read_json(request)))
        return json_response(
            view, 201 if created else 200, {"Location": f"/activities/{view['id']}"}
        )

    def _plan_call(self, method: Any, *args: Any) -> Any:
        try:
            timeout = float(self.config.get("RPC_TIMEOUT_SECONDS", 10))
            return call_with_timeout(method, *args, timeout=timeout)
        except TimeoutError:
            raise handlers.scheduling_unavailable() from None

    @http("GET", "/activities/<string:activity_id>/programmes")
    def get_programmes(self, request: Request, activity_id: str) -> Response:
        """The plan in force: a school sees its own pupils, the operator everyone."""
        caller = self._caller(request)
        school = None if caller.is_operator else caller.school_id
        plan = self._plan_call(self.scheduling.programmes, activity_id, school)
        if plan is None:
            raise handlers.no_plan_yet(activity_id)
        return json_response(handlers.with_names(self.db, plan))

    @http("GET", "/activities/<string:activity_id>/room-lists")
    def get_room_lists(self, request: Request, activity_id: str) -> Response:
        """Per session and round, who is in the room (operator); ?format=csv to print."""
        handlers.require_operator(self._caller(request))
        rooms = self._plan_call(self.scheduling.room_lists, activity_id)
        if rooms is None:
            raise handlers.no_plan_yet(activity_id)
        rooms = handlers.room_lists_with_names(self.db, rooms)
        if request.args.get("format") == "csv":
            return Response(
                handlers.room_lists_csv(rooms),
                mimetype="text/csv",
                headers={
                    "Content-Disposition": f'attachment; filename="zaallijsten-{activity_id}.csv"'
                },
            )
        return json_response({"activity_id": activity_id, "rooms": rooms})

    @http("GET", "/openapi.json")
    def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    @rpc
    def contact(self, registration_id: str) -> dict | None:
        return handlers.contact_for(self.db, registration_id)
