"""The OpenAPI 3.1 document of the reporting API, built from the marshmallow schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from reporting.handlers import TABLES
from reporting.schemas import ParticipationOut, ProblemOut, ReportOut, ReportQuery

PROBLEM = {"application/problem+json": {"schema": "ProblemOut"}}
TEXTS = {
    401: "No or unknown API key",
    403: "Not allowed for this key (a school asks for more than its own figures, or exact ones)",
    404: "No such table",
    422: "Invalid query; each parameter to fix is named in `errors`",
    503: "Registration does not answer to check a school key; try again",
}


def _problems(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": TEXTS[c], "content": PROBLEM} for c in codes}


@cache
def openapi_document() -> dict[str, Any]:
    spec = APISpec(
        title="LOB regio - rapportage-API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "The region's participation tables: Tabel 3a (pupils per school and activity), "
                "Tabel 3b (professionals who attended), the 12-27 programme (from 2026), "
                "no-shows and year over year. Published figures hide small counts: a count of "
                '1 to 4 shows as "<5", and other cells as "x" where a small count could '
                "otherwise be worked out from the totals. The operator key may ask for exact "
                "figures; a school's key reads its own school's figures only. Errors are RFC "
                "9457 problem details with Dutch texts."
            )
        },
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("ReportOut", ReportOut),
        ("ParticipationOut", ParticipationOut),
        ("ProblemOut", ProblemOut),
    ):
        spec.components.schema(name, schema=schema)
    security = [{"apiKey": []}]
    spec.path(
        path="/reports/{table}",
        operations={
            "get": {
                "summary": "One of the region's tables, as JSON, CSV or XLSX",
                "description": (
                    "tabel-3a and tabel-3b need `school_year` (up to 2025-2026, whose part up to "
                    "31 Dec 2025 they cover); programme-12-27 a `calendar_year` from 2026 or a "
                    "`school_year` (from 1 Jan 2026); no-shows either; year-over-year several "
                    "`school_year`s and `of`. CSV: semicolon-separated, UTF-8, header row first."
                ),
                "security": security,
                "parameters": [
                    {
                        "in": "path",
                        "name": "table",
                        "required": True,
                        "schema": {"type": "string", "enum": list(TABLES)},
                    },
                    *_query_parameters(),
                ],
                "responses": {
                    "200": {
                        "description": "The table",
                        "content": {
                            "application/json": {"schema": "ReportOut"},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                        },
                    },
                    **_problems(401, 403, 404, 422, 503),
                },
            }
        },
    )
    spec.path(
        path="/reports/participation",
        operations={
            "get": {
                "summary": "Sign-ups, cancellations and attendance per activity (operator)",
                "security": security,
                "parameters": [
                    {"in": "query", "name": "activity_id", "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "Counts per activity",
                        "content": {"application/json": {"schema": "ParticipationOut"}},
                    },
                    **_problems(401, 403),
                },
            }
        },
    )
    return spec.to_dict()


def _query_parameters() -> list[dict[str, Any]]:
    """The query parameters, from ReportQuery (one schema for the docs and the check)."""
    plugin = MarshmallowPlugin()
    APISpec("x", "1", "3.1.0", plugins=[plugin])
    assert plugin.converter is not None
    parameters = plugin.converter.schema2parameters(ReportQuery, location="query")
    for parameter in parameters:
        if parameter["name"] == "school_year":
            parameter["explode"] = True
    return parameters
