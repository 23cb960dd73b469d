"""The OpenAPI 3.1 document of the registration API, built from the marshmallow schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from registration.schemas import (
    ActivityIn,
    ActivityListOut,
    ActivityOut,
    PlanOut,
    ProblemOut,
    RegistrationOut,
    RoomListsOut,
    SchoolListOut,
    SignUpIn,
)

PROBLEM = {"application/problem+json": {"schema": "ProblemOut"}}


def _problems(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Unreadable JSON",
        401: "No or unknown API key",
        403: "Not allowed for this key",
        404: "Not found (or not yours)",
        409: "Conflict: already signed up, or closed",
        415: "Not JSON",
        422: "Invalid fields; each one is named in `errors`",
        503: "Scheduling does not answer; try again (see Retry-After)",
    }
    return {str(c): {"description": texts[c], "content": PROBLEM} for c in codes}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@cache
def openapi_document() -> dict[str, Any]:
    spec = APISpec(
        title="LOB regio - registratie-API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Sign-ups for the region's career-orientation activities. Every call needs "
                "an API key (`Authorization: Bearer <key>`): a school's key acts for that "
                "school's pupils only; the operator key for everything. Times are ISO 8601; "
                "without an offset they are read as Europe/Amsterdam. Errors are RFC 9457 "
                "problem details with Dutch texts."
            )
        },
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("SignUpIn", SignUpIn),
        ("RegistrationOut", RegistrationOut),
        ("ActivityIn", ActivityIn),
        ("ActivityOut", ActivityOut),
        ("ActivityListOut", ActivityListOut),
        ("ProblemOut", ProblemOut),
        ("PlanOut", PlanOut),
        ("RoomListsOut", RoomListsOut),
        ("SchoolListOut", SchoolListOut),
    ):
        spec.components.schema(name, schema=schema)
    security = [{"apiKey": []}]
    spec.path(
        path="/registrations",
        operations={
            "post": {
                "summary": "Sign a person up for an activity",
                "description": "Send an `Idempotency-Key` header to make a retry safe: the same "
                "key returns the first result (200) instead of signing up twice.",
                "security": security,
                "parameters": [
                    {
                        "in": "header",
                        "name": "Idempotency-Key",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 100},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "SignUpIn"}},
                },
                "responses": {
                    "201": _json("RegistrationOut", "Signed up"),
                    "200": _json("RegistrationOut", "Already done with this Idempotency-Key"),
                    **_problems(400, 401, 403, 409, 415, 422),
                },
            }
        },
    )
    spec.path(
        path="/registrations/{registration_id}",
        operations={
            "get": {
                "summary": "One registration (schools: only their own pupils')",
                "security": security,
                "parameters": [
                    {
                        "in": "path",
                        "name": "registration_id",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json("RegistrationOut", "The registration"),
                    **_problems(401, 404),
                },
            }
        },
    )
    spec.path(
        path="/activities",
        operations={
            "get": {
                "summary": "The catalogue of published activities",
                "security": security,
                "responses": {
                    "200": _json("ActivityListOut", "Activities by start time"),
                    **_problems(401),
                },
            },
            "post": {
                "summary": "Publish or update an activity (operator)",
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "ActivityIn"}},
                },
                "responses": {
                    "201": _json("ActivityOut", "Published"),
                    "200": _json("ActivityOut", "Updated"),
                    **_problems(400, 401, 403, 415, 422),
                },
            },
        },
    )
    spec.path(
        path="/schools",
        operations={
            "get": {
                "summary": "The region's schools and institutions (to find your school_id)",
                "security": security,
                "responses": {
                    "200": _json("SchoolListOut", "Schools by name"),
                    **_problems(401),
                },
            }
        },
    )
    _path_parameters = {
        name: {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in ("registration_id", "person_id", "activity_id")
    }
    spec.path(
        path="/registrations/{registration_id}",
        operations={
            "delete": {
                "summary": "Cancel a registration (schools: their own pupils')",
                "description": "Cancelling again changes nothing. A freed workshop place or bus "
                "seat goes to the first on the waiting list (until shortly before the day).",
                "security": security,
                "parameters": [
                    _path_parameters["registration_id"],
                    {"in": "query", "name": "reason", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("RegistrationOut", "Cancelled"),
                    **_problems(401, 404),
                },
            }
        },
    )
    spec.path(
        path="/persons/{person_id}",
        operations={
            "delete": {
                "summary": "Erase a person and everything about them (AVG; operator)",
                "security": security,
                "parameters": [_path_parameters["person_id"]],
                "responses": {"204": {"description": "Erased"}, **_problems(401, 403, 404)},
            }
        },
    )
    spec.path(
        path="/activities/{activity_id}/programmes",
        operations={
            "get": {
                "summary": "The plan in force: programmes, workshop places or bus seats",
                "description": "A school sees its own pupils only; the operator everyone.",
                "security": security,
                "parameters": [_path_parameters["activity_id"]],
                "responses": {
                    "200": _json("PlanOut", "The plan in force"),
                    **_problems(401, 404, 503),
                },
            }
        },
    )
    spec.path(
        path="/activities/{activity_id}/room-lists",
        operations={
            "get": {
                "summary": "Who is where: per session and round, workshop or bus (operator)",
                "description": "`?format=csv` gives a semicolon-separated file to print.",
                "security": security,
                "parameters": [
                    _path_parameters["activity_id"],
                    {"in": "query", "name": "format", "schema": {"enum": ["json", "csv"]}},
                ],
                "responses": {
                    "200": {
                        "description": "The lists",
                        "content": {
                            "application/json": {"schema": "RoomListsOut"},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems(401, 403, 404, 503),
                },
            }
        },
    )
    return spec.to_dict()
