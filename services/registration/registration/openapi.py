"""The OpenAPI 3.1 document of the registration API, built from the marshmallow schemas."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from registration.schemas import (
    ActivityIn,
    ActivityListOut,
    ActivityOut,
    HistoryIn,
    HistoryOut,
    PlanOut,
    ProblemOut,
    RegistrationListOut,
    RegistrationOut,
    RegistrationQuery,
    RoomListsOut,
    RosterQuery,
    RosterResultOut,
    SchoolIn,
    SchoolListOut,
    SignUpIn,
)
from registration.schemas_participants import (
    AttendanceFileOut,
    AttendanceIn,
    AttendanceOut,
    MyRegistrationOut,
    PersonExportOut,
)

# An ETag here is a short hash: a longer If-Match is refused (400).
IF_MATCH_MAX_LENGTH = 200
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

PROBLEM = {"application/problem+json": {"schema": "ProblemOut"}}


def _problems(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Unreadable JSON",
        401: "No or unknown API key",
        403: "Not allowed for this key",
        404: "Not found (or not yours)",
        410: "The link has expired",
        409: "Conflict: already signed up, sign-up not open (yet), the activity is in use "
        "or cancelled, or (history) not historical; `detail` says what is in the way",
        412: "If-Match names an older version: fetch the activity again",
        413: "Request body too large",
        415: "Not JSON",
        422: "Invalid fields; each one is named in `errors`",
        428: "The activity exists: send If-Match with its ETag to update it",
        429: "Too many requests without a valid API key from this address; wait as long as "
        "Retry-After says",
        503: "Scheduling does not answer; try again (see Retry-After)",
    }
    if 401 in codes:  # a wrong key, sent often enough, is slowed down (lob_common's HttpGuard)
        codes = (*codes, 429)
    return {str(c): {"description": texts[c], "content": PROBLEM} for c in codes}


ETAG = {
    "ETag": {
        "description": "The version; send it as If-Match to update.",
        "schema": {"type": "string"},
    }
}


def _json(schema: str, description: str, etag: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if etag:
        answer["headers"] = ETAG
    return answer


# What the role asks for besides the common fields (SignUpIn validates the same at runtime).
ROLE_REQUIREMENTS = {
    "pupil": (
        "A pupil: needs a birth date and a school (with a school's key: that school).",
        ["date_of_birth", "school_id"],
    ),
    "young_adult": ("A young adult (12-27) signing up themselves.", ["date_of_birth"]),
    "professional": ("A decaan, mentor or other professional.", []),
}


def _sign_up_per_role(schemas: dict[str, Any]) -> None:
    """SignUpIn as `oneOf` per role: what each role must send is in the document, not only in
    the 422s. A pupil may leave out `role` (the default)."""
    fields = schemas.pop("SignUpIn")
    variants = []
    for role, (description, needs) in ROLE_REQUIREMENTS.items():
        variant = copy.deepcopy(fields)
        variant["description"] = description
        variant["properties"]["role"] = {**variant["properties"]["role"], "enum": [role]}
        variant["required"] = sorted(
            {*variant.get("required", ()), *needs} | (set() if role == "pupil" else {"role"})
        )
        for name in needs:  # required: a value, not null
            prop = variant["properties"][name]
            prop.pop("default", None)
            prop.pop("nullable", None)
            if isinstance(prop.get("type"), list):
                prop["type"] = next(t for t in prop["type"] if t != "null")
        name = f"SignUp{role.title().replace('_', '')}In"
        schemas[name] = variant
        variants.append({"$ref": f"#/components/schemas/{name}"})
    schemas["SignUpIn"] = {
        "description": fields.get("description", ""),
        "oneOf": variants,
    }


def _roster_paths(spec: APISpec, security: list[dict], activity_id: dict[str, Any]) -> None:
    """The class roster upload and its templates (docs/rosters.md)."""
    roster_problems = _problems(401, 403, 404, 409, 413, 415, 422)
    roster_problems["413"]["description"] = "The file is over the size or pupil limit"
    roster_problems["415"]["description"] = "Not CSV, XLSX or a form, or a file that is no table"
    roster_problems["422"]["description"] = (
        "The file must change: each line to fix is in `errors` ({row, field, message}) and "
        "nothing is stored; or it makes no roster (no header, no pupils), or school_id is "
        "missing (operator)"
    )
    spec.path(
        path="/activities/{activity_id}/rosters",
        operations={
            "post": {
                "summary": "Sign a class up from its roster (CSV or XLSX; school, or operator "
                "with school_id)",
                "description": "The file as the school system exports it (Magister, Somtoday) "
                "or the template: CSV (UTF-8 with or without BOM, Windows-1252; `;`, `,` or "
                "tab) or XLSX, as the body or as the `file` part of a form. Each row is checked "
                "as a single sign-up, on the school's legal basis (no parent consent round; "
                "an e-mail address is optional). A file with errors is refused as a whole "
                "(422, every line to fix in `errors`) unless `valid_rows_only=true`. A pupil "
                "already signed up (same school and student number, else same name and birth "
                "date) is not signed up again: `unchanged`, or `updated` when their details "
                "were corrected. Headers, limits and examples: docs/rosters.md.",
                "security": security,
                "parameters": [activity_id, {"in": "query", "schema": RosterQuery}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        XLSX: {"schema": {"type": "string", "format": "binary"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        },
                    },
                },
                "responses": {
                    "200": _json("RosterResultOut", "Checked and stored (or, dry_run, checked)"),
                    **roster_problems,
                },
            }
        },
    )
    for suffix, media_type, schema in (
        ("csv", "text/csv", {"type": "string"}),
        ("xlsx", XLSX, {"type": "string", "format": "binary"}),
    ):
        spec.path(
            path=f"/activities/{{activity_id}}/rosters/template.{suffix}",
            operations={
                "get": {
                    "summary": f"The roster template as {suffix.upper()} (with the choice "
                    "columns for an info day)",
                    "security": security,
                    "parameters": [activity_id],
                    "responses": {
                        "200": {
                            "description": "A header row and one example line",
                            "content": {media_type: {"schema": schema}},
                        },
                        **_problems(401, 403, 404),
                    },
                }
            },
        )


def _history_paths(spec: APISpec, security: list[dict[str, Any]]) -> None:
    """Loading a finished season: the schools and institutions, and the participants of a
    historical activity (publish it with `historical: true` first)."""
    spec.path(
        path="/schools/{school_id}",
        operations={
            "put": {
                "summary": "Register or change a school or institution (operator)",
                "description": "Schools are Tabel 3a's rows; mbo colleges and other institutions "
                "join them in Tabel 3b. Announced to the other services when new or changed; "
                "sending the same school again changes nothing.",
                "security": security,
                "parameters": [
                    {
                        "in": "path",
                        "name": "school_id",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "SchoolIn"}},
                },
                "responses": {
                    "201": _json("SchoolOut", "Registered"),
                    "200": _json("SchoolOut", "Already known (changed if the fields differ)"),
                    **_problems(400, 401, 403, 413, 415, 422),
                },
            }
        },
    )
    spec.path(
        path="/activities/{activity_id}/history",
        operations={
            "post": {
                "summary": "Load the participants of a historical activity (operator)",
                "description": "For a past season: publish the activity with `historical: "
                "true` (it must be over), then send its participants as they were counted, "
                "anonymous (no names, no birth dates; an age is kept as its band). All or "
                "nothing: one bad row refuses the list (422 names each row's field). A key "
                "sent again with the same fields changes nothing; with other fields it corrects "
                "the record. Nobody is mailed and nothing is planned; reporting counts them.",
                "security": security,
                "parameters": [
                    {
                        "in": "path",
                        "name": "activity_id",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "HistoryIn"}},
                },
                "responses": {
                    "200": _json("HistoryOut", "Loaded: how many were new, corrected, as before"),
                    **_problems(400, 401, 403, 404, 409, 413, 415, 422),
                },
            }
        },
    )


def _participant_paths(spec: APISpec, security: list, path_parameters: dict) -> None:
    """Attendance, a participant's own sign-up by personal token, a person's export."""
    for name, schema in (
        ("AttendanceIn", AttendanceIn),
        ("AttendanceOut", AttendanceOut),
        ("AttendanceFileOut", AttendanceFileOut),
        ("MyRegistrationOut", MyRegistrationOut),
        ("PersonExportOut", PersonExportOut),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme(
        "personalToken", {"type": "apiKey", "in": "header", "name": "X-Personal-Token"}
    )
    spec.path(
        path="/registrations/{registration_id}/attendance",
        operations={
            "post": {
                "summary": "Record whether a participant came (operator; a host college: its "
                "own activities)",
                "description": "Recording what is already recorded changes nothing "
                "(`changed`: false); a correction is a new fact. Each change emits "
                "attendance_recorded once.",
                "security": security,
                "parameters": [path_parameters["registration_id"]],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "AttendanceIn"}},
                },
                "responses": {
                    "200": _json("AttendanceOut", "Recorded"),
                    **_problems(400, 401, 403, 404, 413, 415, 422),
                },
            }
        },
    )
    spec.path(
        path="/activities/{activity_id}/attendance",
        operations={
            "post": {
                "summary": "Upload the ticked room list (CSV/XLSX) to record everyone on it "
                "(operator; a host college: its own activities)",
                "description": "The room list of GET /activities/{activity_id}/room-lists"
                "?format=csv with its `aanwezig` column filled in: ja/x/1 present, nee/0/empty "
                "absent. The file as the body, or as the `file` part of a multipart form. All "
                "or nothing: a 422 names every row to fix (`row`, `field`, `message`).",
                "security": security,
                "parameters": [path_parameters["activity_id"]],
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        },
                    },
                },
                "responses": {
                    "200": _json("AttendanceFileOut", "Recorded"),
                    **_problems(401, 403, 404, 413, 415, 422),
                },
            }
        },
    )
    spec.path(
        path="/my/registration",
        operations={
            "get": {
                "summary": "A participant's own sign-up and programme, by the personal token",
                "description": "For the regional website: the token of the participant's "
                "personal link (the last part of /mijn-aanmelding/{token}) in the "
                "X-Personal-Token header; no API key. The same as the personal page.",
                "security": [{"personalToken": []}],
                "responses": {
                    "200": _json("MyRegistrationOut", "The sign-up"),
                    **_problems(400, 404, 410),
                },
            }
        },
    )
    spec.path(
        path="/persons/{person_id}/export",
        operations={
            "get": {
                "summary": "Everything registration holds about a person (AVG; operator)",
                "security": security,
                "parameters": [path_parameters["person_id"]],
                "responses": {
                    "200": _json("PersonExportOut", "The person's data"),
                    **_problems(401, 403, 404),
                },
            }
        },
    )


@cache
def openapi_document(openapi_version: str = "3.1.0") -> dict[str, Any]:
    """The document in OpenAPI 3.1 (/openapi.json), or 3.0.3 for Swagger UI 4 (/docs)."""
    spec = APISpec(
        title="LOB regio - registratie-API",
        version="1.0.0",
        openapi_version=openapi_version,
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Sign-ups for the region's career-orientation activities. Every call needs "
                "an API key (`Authorization: Bearer <key>`), and each key has a role: "
                "`school` acts for that school's people only; `website` (the regional site) "
                "signs up pupils and young adults of any school and reads no lists; `host` "
                "(an mbo college) reads the lists of the activities it hosts; `operator` does "
                "everything. Find your school_id with GET /schools. Times are ISO 8601; "
                "without an offset they are read as Europe/Amsterdam. Errors, including "
                "unknown addresses, are RFC 9457 problem details with Dutch texts; a 422 "
                "names every field to fix in `errors`."
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
        ("RegistrationListOut", RegistrationListOut),
        ("RosterResultOut", RosterResultOut),
        ("SchoolIn", SchoolIn),
        ("HistoryIn", HistoryIn),
        ("HistoryOut", HistoryOut),
    ):
        spec.components.schema(name, schema=schema)
    security = [{"apiKey": []}]
    spec.path(
        path="/registrations",
        operations={
            "post": {
                "summary": "Sign a person up for an activity",
                "description": "Send an `Idempotency-Key` header to make a retry safe: the same "
                "key with the same body returns the first result (200) instead of signing up "
                "twice; the same key with another body is refused (422). What each role must "
                "send is in the schema (one variant per role). A person is the same person "
                "within one school (same names, address and birth date).",
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
                    **_problems(400, 401, 403, 409, 413, 415, 422),
                },
            },
            "get": {
                "summary": "Registrations: a school's own people, a host's activities (all: "
                "operator)",
                "description": "Oldest first; page with `limit` and `next_cursor`. "
                "`?format=csv` gives one spreadsheet of every match (UTF-8 with BOM, "
                "semicolons, Dutch headers) that Excel opens as it is.",
                "security": security,
                "parameters": [{"in": "query", "schema": RegistrationQuery}],
                "responses": {
                    "200": {
                        "description": "One page (JSON) or every match (CSV)",
                        "content": {
                            "application/json": {"schema": "RegistrationListOut"},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems(401, 403, 422),
                },
            },
        },
    )
    spec.path(
        path="/registrations/{registration_id}",
        operations={
            "get": {
                "summary": "One registration (schools: their own people; hosts: their activities)",
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
                    **_problems(401, 403, 404),
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
                "description": "An existing id is updated, and only with `If-Match`: the ETag "
                "of GET /activities/{activity_id} (428 without it, 412 when someone changed it "
                "since). An activity with sign-ups keeps its kind and every session, workshop "
                "and bus people are in (409 says what is in the way).",
                "security": security,
                "parameters": [
                    {
                        "in": "header",
                        "name": "If-Match",
                        "required": False,
                        "schema": {"type": "string", "maxLength": IF_MATCH_MAX_LENGTH},
                        "description": "Updates: the ETag of the version you changed.",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "ActivityIn"}},
                },
                "responses": {
                    "201": _json("ActivityOut", "Published", etag=True),
                    "200": _json("ActivityOut", "Updated", etag=True),
                    **_problems(400, 401, 403, 409, 412, 413, 415, 422, 428),
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
                    **_problems(401, 403, 404),
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
                    **_problems(401, 403, 404, 503),
                },
            }
        },
    )
    spec.path(
        path="/activities/{activity_id}/room-lists",
        operations={
            "get": {
                "summary": "Who is where: per session and round, workshop or bus (operator; a host "
                "college: the activities it hosts)",
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
    spec.path(
        path="/activities/{activity_id}",
        operations={
            "get": {
                "summary": "One activity, with its ETag",
                "security": security,
                "parameters": [_path_parameters["activity_id"]],
                "responses": {
                    "200": _json("ActivityOut", "The activity", etag=True),
                    **_problems(401, 404),
                },
            },
            "delete": {
                "summary": "Cancel an activity (operator)",
                "description": "Emits activity_cancelled: its participants are told. Sign-ups "
                "stay listed; new sign-ups and updates are refused. Cancelling again changes "
                "nothing.",
                "security": security,
                "parameters": [
                    _path_parameters["activity_id"],
                    {"in": "query", "name": "reason", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("ActivityOut", "Cancelled", etag=True),
                    **_problems(401, 403, 404),
                },
            },
        },
    )
    _roster_paths(spec, security, _path_parameters["activity_id"])
    _participant_paths(spec, security, _path_parameters)
    _history_paths(spec, security)
    document = spec.to_dict()
    _sign_up_per_role(document["components"]["schemas"])
    return document
