"""Structured logs: one JSON object per line on stdout, with the correlation id.

The correlation id lives in a context variable that every worker sets (from the HTTP header
X-Correlation-ID or from the event envelope), so a sign-up can be followed through all four
services. Never log personal data: log ids.
"""

from __future__ import annotations

import contextvars
import logging
import os

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


class CorrelationFilter(logging.Filter):
    """Adds `correlation_id` and `service` to every record; drops expected-error noise."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service or os.environ.get("LOB_SERVICE", "")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "nameko.containers" and str(record.msg).startswith("(expected)"):
            return False  # a client error (problem+json) is not an incident; no traceback
        record.correlation_id = correlation_id.get()
        record.service = self.service
        return True


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault(
            "fmt", "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s"
        )
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level"})
        super().__init__(*args, **kwargs)


def printable(text: str) -> str:
    """`text` with every control character escaped (a newline becomes \\n): a value from
    outside (a URL path) can then never forge a log line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class TextFormatter(logging.Formatter):
    """One line per record for a person watching `make run`; only a traceback adds lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return printable(super().formatMessage(record))


def formatter() -> logging.Formatter:
    """JSON by default (one object per line: json escapes newlines); LOG_FORMAT=text gives
    short lines for a person watching `make run`, each naming its service (`lob run` shows all
    services' lines in one stream)."""
    if os.environ.get("LOG_FORMAT", "json") == "text":
        return TextFormatter(
            "%(asctime)s %(service)13s | %(levelname)-7s %(name)s: %(message)s",
            "%H:%M:%S",
            defaults={"service": ""},
        )
    return JsonFormatter()
