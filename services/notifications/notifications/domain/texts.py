"""The Dutch texts people receive. Pure functions: contact + facts in, an email out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lob_common.timeutil import local
from notifications.domain.calendar import invitation

WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    attachments: tuple[tuple[str, str, bytes], ...] = field(default=())  # name, mime, content


class UnknownTemplate(ValueError):
    pass


def dutch_date(moment: datetime) -> str:
    """'donderdag 10 december 2026' in Amsterdam time."""
    day = local(moment)
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def dutch_time(moment: datetime) -> str:
    return f"{local(moment):%H:%M}"


def render(template: str, contact: dict[str, Any], data: dict[str, Any]) -> Email:
    try:
        build = TEMPLATES[template]
    except KeyError:
        raise UnknownTemplate(f"no template named {template!r}") from None
    return build(contact, data)


def sign_up_confirmation(contact: dict[str, Any], data: dict[str, Any]) -> Email:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    ends = datetime.fromisoformat(activity["ends_at"])
    where = f" in {activity['location']}" if activity.get("location") else ""
    lines = [
        f"Beste {contact['first_name']},",
        "",
        f"Je bent aangemeld voor {activity['title']}.",
        "",
        f"Wanneer: {dutch_date(starts)}, {dutch_time(starts)} - {dutch_time(ends)} uur{where}.",
        "",
    ]
    if contact.get("consent") == "pending":
        lines += [
            "Omdat je jonger bent dan 16, vragen we je ouder of verzorger om toestemming. "
            "Pas daarna is je aanmelding definitief.",
            "",
        ]
    lines += [
        "In de bijlage staat de afspraak voor je agenda. Kun je toch niet? Meld je dan af, "
        "zodat iemand anders je plek kan krijgen.",
        "",
        "Met vriendelijke groet,",
        "Projectgroep LOB regio Eem",
    ]
    ics = invitation(
        uid=f"{contact['registration_id']}@lob-regio-eem",
        title=activity["title"],
        starts_at=starts,
        ends_at=ends,
        location=activity.get("location", ""),
        sequence=int(data.get("sequence", 0)),
    )
    return Email(
        to=contact["email"],
        subject=f"Aanmelding ontvangen: {activity['title']}",
        text="\n".join(lines) + "\n",
        attachments=(("afspraak.ics", "text/calendar; method=REQUEST", ics),),
    )


TEMPLATES = {"sign_up_confirmation": sign_up_confirmation}
