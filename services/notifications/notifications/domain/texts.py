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
        attachments=(("afspraak.ics", "text/calendar; method=PUBLISH", ics),),
    )


def _programme_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for item in data.get("sessions", []):
        when = ""
        if item.get("starts_at") and item.get("ends_at"):
            start = datetime.fromisoformat(item["starts_at"])
            end = datetime.fromisoformat(item["ends_at"])
            when = f" ({dutch_time(start)} - {dutch_time(end)})"
        what = item.get("title") or item.get("session_id")
        if not item.get("session_id"):
            what = "nog geen plek; de organisatie neemt contact op"
        room = f", {item['room']}" if item.get("room") else ""
        lines.append(f"- Ronde {item['round']}{when}: {what}{room}")
    if data.get("workshop"):
        workshop = data["workshop"]
        where = f" ({workshop['location']})" if workshop.get("location") else ""
        lines.append(f"- Workshop: {workshop.get('title') or workshop['workshop_id']}{where}")
    if data.get("seat"):
        lines.append(f"- Bus {data['seat']['bus_id']}, stoel {data['seat']['seat']}")
    lines += _itinerary_lines(data.get("itinerary") or [])
    return lines


def _itinerary_lines(itinerary: list[dict[str, Any]]) -> list[str]:
    """A bus tour's timetable: departure, each visit (from its start), the return."""
    if not itinerary:
        return []
    lines = ["", "Route:"]
    for index, stop in enumerate(itinerary):
        if index == 0:
            lines.append(f"- {_clock(stop['leave_at'])} vertrek vanaf {stop['name']}")
        elif index == len(itinerary) - 1 and not stop.get("leave_at"):
            lines.append(f"- {_clock(stop['arrive_at'])} terug bij {stop['name']}")
        else:
            begins = stop.get("visit_starts_at") or stop["arrive_at"]
            lines.append(f"- {_clock(begins)} - {_clock(stop['leave_at'])} {stop['name']}")
    return lines


def _clock(moment: str) -> str:
    return dutch_time(datetime.fromisoformat(moment))


def _programme_email(
    contact: dict[str, Any], data: dict[str, Any], subject: str, opening: str
) -> Email:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    ends = datetime.fromisoformat(activity["ends_at"])
    where = f" in {activity['location']}" if activity.get("location") else ""
    programme = _programme_lines(data)
    lines = [
        f"Beste {contact['first_name']},",
        "",
        opening,
        "",
        f"{activity['title']}: {dutch_date(starts)}, {dutch_time(starts)} - "
        f"{dutch_time(ends)} uur{where}.",
        "",
        *programme,
        "",
        "De afspraak in je agenda is bijgewerkt. Kun je toch niet? Meld je dan af, zodat "
        "iemand anders je plek kan krijgen.",
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
        sequence=int(data.get("plan_version", 0)),
        description="\n".join(programme),
    )
    return Email(
        to=contact["email"],
        subject=f"{subject}: {activity['title']}",
        text="\n".join(lines) + "\n",
        attachments=(("afspraak.ics", "text/calendar; method=PUBLISH", ics),),
    )


def programme_assigned(contact: dict[str, Any], data: dict[str, Any]) -> Email:
    if data.get("from_waitlist"):
        return _programme_email(
            contact,
            data,
            "Er is een plek voor je",
            "Er is een plek vrijgekomen en die is voor jou. Je stond op de wachtlijst; "
            "dit is je programma:",
        )
    return _programme_email(contact, data, "Je programma", "Je programma is klaar:")


def programme_changed(contact: dict[str, Any], data: dict[str, Any]) -> Email:
    return _programme_email(
        contact,
        data,
        "Je programma is gewijzigd",
        "Je programma is gewijzigd. Dit is je nieuwe programma:",
    )


def waitlisted(contact: dict[str, Any], data: dict[str, Any]) -> Email:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    full = activity["title"]
    if data.get("item_title"):
        full = f"{data['item_title']} ({activity['title']})"
    text = (
        "\n".join(
            [
                f"Beste {contact['first_name']},",
                "",
                f"{full} op {dutch_date(starts)} is vol. Je staat op de wachtlijst, "
                f"op plaats {data['position']}.",
                "",
                "Komt er een plek vrij, dan krijg je die automatisch en sturen we je meteen een "
                "bericht met je programma.",
                "",
                "Met vriendelijke groet,",
                "Projectgroep LOB regio Eem",
            ]
        )
        + "\n"
    )
    return Email(to=contact["email"], subject=f"Wachtlijst: {activity['title']}", text=text)


def _cancellation_email(contact: dict[str, Any], subject: str, opening: list[str]) -> Email:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    ends = datetime.fromisoformat(activity["ends_at"])
    lines = [
        f"Beste {contact['first_name']},",
        "",
        *opening,
        "",
        "De afspraak is uit je agenda gehaald.",
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
        sequence=1000,
        cancelled=True,
    )
    return Email(
        to=contact["email"],
        subject=f"{subject}: {activity['title']} ({dutch_date(starts)})",
        text="\n".join(lines) + "\n",
        attachments=(("afspraak.ics", "text/calendar; method=CANCEL", ics),),
    )


def sign_up_cancelled(contact: dict[str, Any], data: dict[str, Any]) -> Email:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    return _cancellation_email(
        contact,
        "Afmelding bevestigd",
        [f"Je bent afgemeld voor {activity['title']} op {dutch_date(starts)}."],
    )


def activity_cancelled(contact: dict[str, Any], data: dict[str, Any]) -> Email:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    opening = [
        f"{activity['title']} op {dutch_date(starts)} gaat helaas niet door. "
        "De organisatie heeft de activiteit afgelast."
    ]
    if data.get("reason"):
        opening += ["", f"Reden: {data['reason']}"]
    return _cancellation_email(contact, "Gaat niet door", opening)


TEMPLATES = {
    "sign_up_confirmation": sign_up_confirmation,
    "programme_assigned": programme_assigned,
    "programme_changed": programme_changed,
    "waitlisted": waitlisted,
    "sign_up_cancelled": sign_up_cancelled,
    "activity_cancelled": activity_cancelled,
}
