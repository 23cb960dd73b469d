"""HTTP helpers: JSON bodies, RFC 9457 problem details, API keys, and the guard in front of
every service's HTTP port against hostile clients.

People read these errors (school staff, the regional website's developers, and through the website
pupils), so `title`, `detail` and field messages are Dutch; `code` and field names are English
and stable for programs.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from kombu.utils.limits import TokenBucket
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from lob_common import metrics

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


# --- the guard in front of every service --------------------------------------------------------

# The WSGI environ key of a function that ends the connection after the current response, so that
# the server does not read (to discard) a body we refused. Set by lob_common.providers' server.
CLOSE_CONNECTION = "lob.close_connection"


def length_required() -> Problem:
    return Problem(
        411,
        "length-required",
        "Lengte ontbreekt",
        "Stuur de gegevens in één keer, met een Content-Length-header.",
    )


def too_many_requests(retry_after: float) -> Problem:
    seconds = max(1, math.ceil(retry_after))
    return Problem(
        429,
        "too-many-requests",
        "Te veel verzoeken",
        f"Te veel verzoeken zonder geldige API-sleutel vanaf dit adres. Probeer het over {seconds} "
        "seconden opnieuw.",
        headers={"Retry-After": str(seconds)},
    )


class UnauthenticatedLimiter:
    """How many unauthenticated (401) answers a source address may get: `burst` at once, then
    `per_second`. A token bucket per address (kombu's).

    An address that used up its allowance gets 429 for everything until its bucket refills,
    before any work is done (no worker, no key lookup): a flood of missing or wrong keys costs
    the service next to nothing and leaves the workers to everyone else. Clients with a valid
    key never get a 401, so they never use up anything.
    """

    def __init__(self, burst: int, per_second: float, max_addresses: int = 10_000) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_addresses = max_addresses
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, address: str) -> tuple[float, bool]:
        """(0, reserved) when the address may go on; otherwise (seconds until it may, False).

        An address that has had a 401 pays for its request now, before the answer: checking for a
        token at admission but taking it only at the 401 let every request in flight through on
        the same token (a flood of 16 parallel requests got 16 401s per refilled token). A
        request that does not end in 401 gets its token back (`settle`).
        """
        bucket = self._buckets.get(address)
        if bucket is None:
            return 0.0, False
        if bucket.can_consume(1):
            return 0.0, True
        return max(bucket.expected_time(1), 0.001), False

    def settle(self, address: str, reserved: bool, unauthenticated: bool) -> None:
        """The answer went out: count a 401 that was not paid for, refund one that was not 401."""
        if unauthenticated and not reserved:
            bucket = self._buckets.get(address)
            if bucket is None:
                self._forget_refilled()
                bucket = self._buckets[address] = TokenBucket(self.per_second, self.burst)
            bucket.can_consume(1)
        elif reserved and not unauthenticated and (bucket := self._buckets.get(address)):
            bucket._tokens = min(bucket.capacity, bucket._tokens + 1)  # kombu has no refund

    def retry_after(self, address: str) -> float:
        """0 when the address may go on; otherwise the seconds until it may (takes nothing)."""
        bucket = self._buckets.get(address)
        return bucket.expected_time(1) if bucket else 0.0

    def count(self, address: str) -> None:
        """The address just got a 401 (not reserved at admission)."""
        self.settle(address, reserved=False, unauthenticated=True)

    def _forget_refilled(self) -> None:
        """Keep memory bounded: drop addresses whose allowance is whole again, then the oldest."""
        if len(self._buckets) < self.max_addresses:
            return
        for address, bucket in list(self._buckets.items()):
            if bucket.expected_time(self.burst) == 0:
                del self._buckets[address]
        while len(self._buckets) >= self.max_addresses:
            del self._buckets[next(iter(self._buckets))]


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class HttpGuard:
    """WSGI middleware before any routing or worker: refuses what would hurt the service.

    - a body larger than `max_body_bytes` (by its Content-Length): 413 at once, without reading
      it, and the connection is closed so the server does not read it either;
    - a chunked body (no Content-Length, so no limit can be checked before reading): 411;
    - an address over its allowance of unauthenticated requests (UnauthenticatedLimiter): 429
      with Retry-After.
    Counted in `lob_http_rejected_total{reason}`; addresses are never logged (personal data).
    """

    def __init__(
        self,
        app: WsgiApp,
        max_body_bytes: int,
        limiter: UnauthenticatedLimiter,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.trust_forwarded_for = trust_forwarded_for

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        address = self.source_address(environ)
        refusal, reason = self._refusal(environ)
        reserved = False
        if refusal is None:
            retry_after, reserved = self.limiter.admit(address)
            if retry_after > 0:
                refusal, reason = too_many_requests(retry_after), "rate_limited"
        if refusal is not None:
            metrics.HTTP_REJECTED.labels(reason).inc()
            if reason != "rate_limited" and CLOSE_CONNECTION in environ:
                environ[CLOSE_CONNECTION]()
            return refusal.response()(environ, start_response)

        def counting_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            self.limiter.settle(address, reserved, unauthenticated=status.startswith("401"))
            return start_response(status, headers, exc_info)

        return self.app(environ, counting_start_response)

    def _refusal(self, environ: dict[str, Any]) -> tuple[Problem | None, str]:
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            return length_required(), "chunked_body"
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # eventlet answers a malformed Content-Length with 400 itself
        if length > self.max_body_bytes:
            return too_large(self.max_body_bytes), "too_large"
        return None, ""

    def source_address(self, environ: dict[str, Any]) -> str:
        """The client's address; behind a trusted proxy the last X-Forwarded-For entry (the one
        that proxy added; earlier entries are whatever the client claimed)."""
        if self.trust_forwarded_for:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                return forwarded.rsplit(",", 1)[-1].strip()
        return str(environ.get("REMOTE_ADDR", ""))
