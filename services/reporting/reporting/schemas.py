"""The reporting HTTP API's schemas (marshmallow): the query of a report and what it returns."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from reporting.handlers import TABLES

FORMATS = ("json", "csv", "xlsx")
_SCHOOL_YEAR = validate.Regexp(
    r"^\d{4}-\d{4}(,\d{4}-\d{4})*$", error="Schrijf het schooljaar als 2024-2025."
)


class ReportQuery(Schema):
    """`GET /reports/{table}`'s query string."""

    class Meta:
        unknown = EXCLUDE  # e.g. cache busters; every parameter we read is checked

    school_year = fields.List(
        fields.String(
            validate=validate.Regexp(r"^\d{4}-\d{4}$", error="Schrijf het als 2024-2025.")
        ),
        load_default=list,
        metadata={
            "description": "School year (1 Aug - 31 Jul), e.g. 2024-2025. Year over year: give "
            "it several times (or comma-separated)."
        },
    )
    calendar_year = fields.Integer(
        load_default=None,
        validate=validate.Range(min=2000, max=2100),
        metadata={"description": "Calendar year (programme-12-27 and no-shows), e.g. 2026."},
    )
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    exact = fields.Boolean(
        load_default=False,
        metadata={"description": "Exact figures, no small-count suppression (operator only)."},
    )
    school_id = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Only this school's figures (a school key: its own, always)."},
    )
    table = fields.String(
        load_default=None,
        data_key="of",
        validate=validate.OneOf(("tabel-3a", "tabel-3b")),
        metadata={"description": "year-over-year: which table to compare (default tabel-3a)."},
    )
    age_bands = fields.String(
        load_default=None,
        metadata={
            "description": "programme-12-27: the age bands, e.g. 12-17,18-27 (whole bands of "
            "12-15, 16-17, 18-22, 23-27)."
        },
    )


class Count(fields.Raw):
    """A count, or "<5" / "x" where it is suppressed."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValidationError("Verwacht een getal of een afgeschermde waarde.")
        return value


_COUNT = {
    "metadata": {
        "oneOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "description": '"<5" (1 to 4) or "x" (hidden to protect another)'},
        ]
    }
}


class ColumnOut(Schema):
    key = fields.String(required=True, metadata={"description": "Activity id, kind or measure."})
    label = fields.String(required=True)
    kind = fields.String(allow_none=True, required=True)
    date = fields.Date(allow_none=True, required=True)


class RowOut(Schema):
    key = fields.String(allow_none=True, required=True, metadata={"description": "School id ..."})
    label = fields.String(required=True)
    cells = fields.List(Count(**_COUNT), required=True)
    total = Count(required=True, **_COUNT)


class SectionOut(Schema):
    title = fields.String(allow_none=True, required=True)
    rows = fields.List(fields.Nested(RowOut), required=True)
    subtotal = fields.Nested(RowOut, allow_none=True, required=True)


class PeriodOut(Schema):
    school_year = fields.String(allow_none=True, required=True)
    calendar_year = fields.String(allow_none=True, required=True)
    start = fields.String(required=True, data_key="from", attribute="from")
    end = fields.String(required=True, data_key="to", attribute="to")
    label = fields.String(required=True)


class ReportOut(Schema):
    """One of the region's tables, as published (suppressed unless `exact`)."""

    table = fields.String(required=True, validate=validate.OneOf(TABLES))
    title = fields.String(required=True)
    period = fields.Nested(PeriodOut, required=True)
    exact = fields.Boolean(required=True)
    threshold = fields.Integer(allow_none=True, required=True)
    withheld = fields.Boolean(
        required=True, metadata={"description": "Too few people to show any figure."}
    )
    row_header = fields.String(required=True)
    total_label = fields.String(required=True)
    columns = fields.List(fields.Nested(ColumnOut), required=True)
    sections = fields.List(fields.Nested(SectionOut), required=True)
    totals = fields.Nested(RowOut, required=True)
    notes = fields.List(fields.String(), required=True)


class ParticipationOut(Schema):
    class ActivityCount(Schema):
        activity_id = fields.String(required=True)
        kind = fields.String(required=True)
        date = fields.String(required=True)
        participants = fields.Integer(required=True)
        cancelled = fields.Integer(required=True)
        attended = fields.Integer(required=True)

    activities = fields.List(fields.Nested(ActivityCount), required=True)
    total_participants = fields.Integer(required=True)


class FieldError(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "Dutch, for people."})


class ProblemOut(Schema):
    """RFC 9457 problem details; `code` is stable for programs, the texts are Dutch."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    detail = fields.String()
    errors = fields.List(fields.Nested(FieldError))
