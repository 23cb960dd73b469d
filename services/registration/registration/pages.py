"""The small Dutch pages people open from a mail (consent, their own sign-up): Jinja2 templates
in registration/templates with one shared layout, plain HTML and inline CSS, no external assets.
Every answer is a whole page; a refusal is a page too, never a stack trace."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Response

from lob_common.timeutil import dutch_day as lob_dutch_day
from lob_common.timeutil import local

TEMPLATES = Path(__file__).parent / "templates"
# The pages hold personal data: no caching, no framing, no referrer (the token is in the URL).
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


def dutch_day(value: datetime | str) -> str:
    return lob_dutch_day(_moment(value))


def clock(value: datetime | str) -> str:
    return f"{local(_moment(value)):%H:%M}"


def _moment(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=ChainableUndefined,  # a programme has the fields of its kind only
    )
    env.filters["day"] = dutch_day
    env.filters["clock"] = clock
    return env


def page(template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("flash", None)
    html = environment().get_template(template).render(**context)
    return Response(html, status=status, mimetype="text/html", headers=HEADERS)


def message(title: str, detail: str, status: int, **context: Any) -> Response:
    context.setdefault("ask_again_action", None)
    context.setdefault("back", None)
    context.setdefault("tone", None)
    return page("message.html", status, title=title, detail=detail, **context)
