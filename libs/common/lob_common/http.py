"""HTTP helpers: JSON bodies, RFC 9457 problem details, API keys.

People read these errors (school staff, the regional website's developers, and through the website
pupils), so `title`, `detail` and field messages are Dutch; `code` and field names are English
and stable for programs.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

PROBLEM_JSON = "application/problem+json"
# A JSON request body larger than this is refused (413) before it is read.
MAX_JSON_BYTES = 1024 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(data, default=_default, ensure_ascii=False),
        status=status,
        headers=dict(headers or {}),
        mimetype="application/json",
    )


class Problem(Exception):
    """An error the client can fix (or must know about), rendered as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> Response:
        return Response(
            json.dumps(self.to_dict(), ensure_ascii=False),
            status=self.status,
            headers=self.headers,
            mimetype=PROBLEM_JSON,
        )


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Niet gevonden", f"{what} bestaat niet.")


def from_http_exception(exc: HTTPException) -> Problem:
    """werkzeug's own refusals (no such address, method, too large ...) as problem+json."""
    status = exc.code or 500
    if status == 404:
        return Problem(404, "not-found", "Niet gevonden", "Dit adres bestaat niet.")
    if status == 405:
        allowed = ", ".join(getattr(exc, "valid_methods", None) or [])
        return Problem(
            405,
            "method-not-allowed",
            "Methode niet toegestaan",
            f"Dit adres kent deze methode niet; wel: {allowed}.",
            headers={"Allow": allowed},
        )
    if status == 413:
        return too_large(MAX_JSON_BYTES)
    return Problem(status, f"http-{status}", exc.name, "")


def unauthorized() -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Niet aangemeld",
        "Stuur een geldige API-sleutel mee: Authorization: Bearer <sleutel>.",
        headers={"WWW-Authenticate": 'Bearer realm="lob"'},
    )


def forbidden(detail: str = "Deze API-sleutel mag dit niet.") -> Problem:
    return Problem(403, "forbidden", "Geen toegang", detail)


def invalid(
    errors: list[dict[str, str]], detail: str = "Controleer de genoemde velden."
) -> Problem:
    return Problem(422, "validation-error", "De invoer klopt niet", detail, errors)


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "payload-too-large",
        "Te groot",
        f"Het verzoek is groter dan {limit // 1024} kB; stuur minder tegelijk.",
    )


def read_json(request: Request, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The request body as JSON, or a 400/413/415 problem saying what is wrong with it."""
    if request.mimetype != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "Verkeerd formaat",
            "Stuur de gegevens als JSON met Content-Type: application/json.",
        )
    request.max_content_length = max_bytes  # also enforced while reading a chunked body
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise too_large(max_bytes) from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(
            400,
            "malformed-json",
            "Ongeldige JSON",
            f"De JSON in het verzoek is niet leesbaar: {exc}.",
        ) from None


def load(schema: Schema, data: Any) -> Any:
    """Validate with a marshmallow schema; every bad field is named in one 422 problem."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise invalid(field_errors(exc.messages)) from None


def field_errors(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """marshmallow's nested messages as a flat list of {field, message} (messages in Dutch)."""
    out: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(field_errors(value, name))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(field_errors(item, prefix))
    else:
        out.append({"field": prefix or "(body)", "message": dutch(str(messages))})
    return out


_DUTCH = [
    (r"Missing data for required field\.", "Dit veld is verplicht."),
    (r"Unknown field\.", "Dit veld bestaat niet."),
    (r"Field may not be null\.", "Dit veld mag niet leeg (null) zijn."),
    (r"Invalid input type\.", "Verwacht een JSON-object."),
    (r"Not a valid string\.", "Verwacht tekst."),
    (r"Not a valid integer\.", "Verwacht een geheel getal."),
    (r"Not a valid number\.", "Verwacht een getal."),
    (r"Not a valid boolean\.", "Verwacht true of false."),
    (r"Not a valid list\.", "Verwacht een lijst."),
    (r"Not a valid mapping type\.", "Verwacht een JSON-object."),
    (r"Not a valid email address\.", "Geen geldig e-mailadres."),
    (r"Not a valid date\.", "Geen geldige datum; gebruik JJJJ-MM-DD."),
    (r"Not a valid datetime\.", "Geen geldig tijdstip; gebruik ISO 8601."),
    (r"Not a valid UUID\.", "Geen geldige UUID."),
    (r"Shorter than minimum length (\d+)\.", r"Te kort: minstens \1 tekens."),
    (r"Longer than maximum length (\d+)\.", r"Te lang: hoogstens \1 tekens."),
    (r"Length must be between (\d+) and (\d+)\.", r"Lengte moet tussen \1 en \2 liggen."),
    (r"Must be one of: (.*)\.", r"Kies een van: \1."),
    (
        r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.",
        r"Moet tussen \1 en \2 liggen.",
    ),
    (r"Must be greater than or equal to (\S+)\.", r"Moet minstens \1 zijn."),
    (r"Must be less than or equal to (\S+)\.", r"Mag hoogstens \1 zijn."),
    (r"String does not match expected pattern\.", "Heeft niet de verwachte vorm."),
]


def dutch(message: str) -> str:
    """Translate marshmallow's standard English messages; our own messages are Dutch already."""
    for pattern, replacement in _DUTCH:
        if re.fullmatch(pattern, message):
            return re.sub(pattern, replacement, message)
    return message


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def same_secret(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
