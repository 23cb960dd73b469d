"""The registration service: HTTP API for schools, participants and operators; RPC for others."""

from __future__ import annotations

from pathlib import Path

from nameko.rpc import rpc
from werkzeug.wrappers import Request, Response

from lob_common.http import json_response, load, not_found, read_json
from lob_common.providers import Database, ServiceBase, http
from registration import handlers
from registration.adapters.tables import Base
from registration.openapi import openapi_document
from registration.schemas import ActivityIn, SignUpIn

MIGRATIONS = Path(__file__).parent / "migrations"


class RegistrationService(ServiceBase):
    name = "registration"
    db = Database(Base.metadata, MIGRATIONS)

    def _caller(self, request: Request) -> handlers.Caller:
        return handlers.authenticate(self.db, request, self.config.get("OPERATOR_KEY"))

    @http("POST", "/registrations")
    def create_registration(self, request: Request) -> Response:
        caller = self._caller(request)
        data = load(SignUpIn(), read_json(request))
        view, created = handlers.sign_up(
            self.db, data, caller, request.headers.get("Idempotency-Key")
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

    @http("GET", "/openapi.json")
    def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    @rpc
    def contact(self, registration_id: str) -> dict | None:
        return handlers.contact_for(self.db, registration_id)
