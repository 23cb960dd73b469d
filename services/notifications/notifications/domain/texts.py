"""The Dutch texts people receive: contact + facts in, an email out (plain text, HTML and, where
there is one, the calendar invitation).

The words live in Jinja2 templates (notifications/templates/: one `KIND.subject`, `KIND.txt` and
`KIND.html` per kind, a shared layout); this module only works out what they show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lob_common.timeutil import dutch_day, local
from notifications.domain.calendar import calendar_uid, invitation

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# The templates ship with the code: read once per process. Jinja2's default (auto_reload) looks
# at every template file's modification time on every mail (three to seven stat calls each).
_HTML = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    auto_reload=False,
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_TEXT = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    auto_reload=False,
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=False,
)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    attachments: tuple[tuple[str, str, bytes], ...] = field(default=())  # name, mime, content
    html: str = ""


class UnknownTemplate(ValueError):
    pass


# Every kind of mail, whom it goes to and what it is (`lob mail preview --list`).
KINDS: dict[str, tuple[str, str]] = {
    "sign_up_confirmation": ("participant", "sign-up received"),
    "programme_assigned": ("participant", "programme assigned (or place confirmed)"),
    "promoted": ("participant", "a place from the waiting list, with the programme"),
    "programme_changed": ("participant", "programme changed, saying what changed"),
    "waitlisted": ("participant", "on the waiting list, with the position"),
    "sign_up_cancelled": ("participant", "cancellation of the sign-up confirmed"),
    "activity_cancelled": ("participant", "the region cancelled the activity"),
    "reminder": ("participant", "reminder a few days before the activity"),
    "consent_requested_parent": ("parent", "consent asked, with the link and the deadline"),
    "consent_requested_pupil": ("participant", "your parent was asked for consent"),
    "consent_given_parent": ("parent", "consent recorded"),
    "consent_refused_parent": ("parent", "no consent: the sign-up is void"),
    "consent_refused_pupil": ("participant", "no consent: the sign-up is void"),
    "school_digest": ("school", "the school's pupils and where each goes, what changed"),
    "operator_failures": ("operator", "daily summary of failed deliveries"),
}
# The stored template of a message -> the kind to render (programme_assigned from the waiting
# list reads as 'promoted').
CALENDAR_REQUEST = {"sign_up_confirmation", "programme_assigned", "promoted", "programme_changed"}
CALENDAR_CANCEL = {"sign_up_cancelled", "activity_cancelled", "consent_refused_pupil"}
PARENT_KINDS = {k for k, (who, _) in KINDS.items() if who == "parent"}


def dutch_date(moment: datetime) -> str:
    """'donderdag 10 december 2026' in Amsterdam time."""
    return dutch_day(moment)


def dutch_time(moment: datetime) -> str:
    return f"{local(moment):%H:%M}"


def _clock(moment: str | None) -> str:
    return dutch_time(datetime.fromisoformat(moment)) if moment else ""


def kind_of(template: str, data: dict[str, Any]) -> str:
    if template == "programme_assigned" and data.get("from_waitlist"):
        return "promoted"
    return template


def render(template: str, contact: dict[str, Any], data: dict[str, Any]) -> Email:
    kind = kind_of(template, data)
    if kind not in KINDS:
        raise UnknownTemplate(f"no template named {template!r}")
    context = _context(kind, contact, data)
    subject = " ".join(_TEXT.get_template(f"{kind}.subject").render(context).split())
    context["subject"] = subject
    text = _TEXT.get_template(f"{kind}.txt").render(context)
    text = "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    html = _HTML.get_template(f"{kind}.html").render(context)
    to = contact.get("parent_email") if kind in PARENT_KINDS else contact.get("email")
    if kind in ("school_digest", "operator_failures"):
        to = contact.get("email")
    if not to:
        raise NoAddress(f"no address for {kind}")
    return Email(
        to=to,
        subject=subject,
        text=text,
        html=html,
        attachments=_calendar(kind, contact, data, context),
    )


class NoAddress(ValueError):
    """The person has no address for this kind of mail (e.g. a pupil without e-mail)."""


_LABELS = {"vertrek", "adres", "locatie", "waar", "online"}


def _activity(contact: dict[str, Any]) -> dict[str, Any]:
    activity = contact["activity"]
    starts = datetime.fromisoformat(activity["starts_at"])
    ends = datetime.fromisoformat(activity["ends_at"])
    location = activity.get("location") or ""
    # A bus tour's location reads "Vertrek: Amersfoort Centraal": it is its own label.
    where = location if location.split(":")[0].strip().lower() in _LABELS else f"Waar: {location}"
    return {
        "id": activity.get("id", ""),
        "where": where if location else "",
        "title": activity["title"],
        "kind": activity.get("kind", ""),
        "date": dutch_date(starts),
        "start": dutch_time(starts),
        "end": dutch_time(ends),
        "location": activity.get("location") or "",
    }


def programme_view(data: dict[str, Any], activity: dict[str, Any]) -> dict[str, Any]:
    """What a programme shows: rounds (time, session, room), the workshop (address and time),
    the bus seat and the bus's timetable; `empty` for a capacity-only activity."""
    rounds = []
    for item in data.get("sessions") or []:
        time = ""
        if item.get("starts_at") and item.get("ends_at"):
            time = f"{_clock(item['starts_at'])} - {_clock(item['ends_at'])}"
        title = (
            (item.get("title") or item.get("session_id") or "") if item.get("session_id") else ""
        )
        rounds.append(
            {"round": item["round"], "time": time, "title": title, "room": item.get("room") or ""}
        )
    workshop = None
    if data.get("workshop"):
        found = data["workshop"]
        workshop = {
            "title": found.get("title") or found["workshop_id"],
            "location": found.get("location") or activity.get("location", ""),
            "time": f"{activity['start']} - {activity['end']}",
        }
    seat = None
    if data.get("seat"):
        seat = {"bus": data["seat"]["bus_id"], "seat": data["seat"]["seat"]}
    itinerary = _itinerary(data.get("itinerary") or [])
    return {
        "rounds": rounds,
        "workshop": workshop,
        "seat": seat,
        "itinerary": itinerary,
        "empty": not (rounds or workshop or seat or itinerary),
    }


def _itinerary(itinerary: list[dict[str, Any]]) -> list[str]:
    """A bus tour's timetable: departure, each visit (from its start), the return."""
    lines = []
    for index, stop in enumerate(itinerary):
        if index == 0:
            lines.append(f"{_clock(stop.get('leave_at'))} vertrek vanaf {stop['name']}")
        elif index == len(itinerary) - 1 and not stop.get("leave_at"):
            lines.append(f"{_clock(stop.get('arrive_at'))} terug bij {stop['name']}")
        else:
            begins = stop.get("visit_starts_at") or stop.get("arrive_at")
            lines.append(f"{_clock(begins)} - {_clock(stop.get('leave_at'))} {stop['name']}")
    return lines


def programme_changes(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """In words, what differs between two programme views."""
    if not previous:
        return []
    changes = []
    before = {r["round"]: r for r in previous["rounds"]}
    for now in current["rounds"]:
        was = before.get(now["round"])
        describe = _round_words
        if was is None or describe(was) != describe(now):
            old = describe(was) if was else "niets"
            changes.append(f"Ronde {now['round']}: was {old}, wordt {describe(now)}")
    if (previous.get("workshop") or {}).get("title") != (current.get("workshop") or {}).get(
        "title"
    ):
        old = (previous.get("workshop") or {}).get("title") or "geen"
        new = (current.get("workshop") or {}).get("title") or "geen"
        changes.append(f"Workshop: was {old}, wordt {new}")
    if previous.get("seat") != current.get("seat"):
        old, new = previous.get("seat"), current.get("seat")
        changes.append(
            "Bus en stoel: was "
            + (f"bus {old['bus']}, stoel {old['seat']}" if old else "geen")
            + ", wordt "
            + (f"bus {new['bus']}, stoel {new['seat']}" if new else "geen")
        )
    if previous.get("itinerary") != current.get("itinerary") and current.get("itinerary"):
        changes.append("De tijden van de bus zijn aangepast (zie de dienstregeling)")
    return changes


def _round_words(item: dict[str, Any]) -> str:
    if not item.get("title"):
        return "nog geen plek"
    words = item["title"]
    if item.get("room"):
        words += f" ({item['room']})"
    if item.get("time"):
        words += f" om {item['time']}"
    return words


def programme_summary(data: dict[str, Any] | None) -> str:
    """Where a pupil goes, in one line (for the school digest)."""
    if not data:
        return "nog geen programma"
    if data.get("position"):
        what = f" voor {data['item_title']}" if data.get("item_title") else ""
        return f"wachtlijst{what}, plaats {data['position']}"
    parts = []
    for item in data.get("sessions") or []:
        title = (item.get("title") or item.get("session_id")) if item.get("session_id") else ""
        room = f" ({item['room']})" if item.get("room") else ""
        parts.append(
            f"ronde {item['round']}: {title}{room}"
            if title
            else f"ronde {item['round']}: nog geen plek"
        )
    if data.get("workshop"):
        parts.append(f"workshop {data['workshop'].get('title') or data['workshop']['workshop_id']}")
    if data.get("seat"):
        parts.append(f"bus {data['seat']['bus_id']}, stoel {data['seat']['seat']}")
    return "; ".join(parts) or "plek bevestigd"


def _digest(contact: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    pupils = contact.get("pupils") or {}
    changes = data.get("changes") or {}

    def name(rid: str) -> str:
        return (pupils.get(rid) or {}).get("name") or "(leerling niet meer bekend)"

    rows = sorted(
        (
            {
                "name": name(rid),
                "where": where,
                "note": "nieuw"
                if rid in changes.get("new", [])
                else "gewijzigd, was: " + data.get("previous", {}).get(rid, "")
                if rid in changes.get("changed", [])
                else "",
                "no_email": (pupils.get(rid) or {}).get("has_email") is False,
            }
            for rid, where in (data.get("lines") or {}).items()
        ),
        key=lambda row: row["name"].lower(),
    )
    gone = sorted(name(rid) for rid in changes.get("gone", []))
    return {
        "rows": rows,
        "gone": gone,
        "first": not any(changes.get(k) for k in ("new", "changed", "gone")),
        "school": contact.get("school", ""),
    }


def _context(kind: str, contact: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    if kind == "operator_failures":
        return {
            "name": "beheerder",
            "personal_link": "",
            "subject": "",
            "day": dutch_date(datetime.fromisoformat(data["day"] + "T12:00:00+00:00")),
            "total": data.get("total", 0),
            "counts": sorted((data.get("counts") or {}).items()),
            "reasons": sorted((data.get("reasons") or {}).items(), key=lambda kv: -kv[1]),
        }
    activity = _activity(contact)
    if kind == "school_digest":
        return {
            "name": "decaan",
            "personal_link": "",
            "subject": "",
            "activity": activity,
            "digest": _digest(contact, data),
        }
    links = contact.get("links") or {}
    personal = links.get("personal") or ""
    programme = programme_view(data, activity)
    previous = programme_view(data["previous"], activity) if data.get("previous") else None
    # The link itself goes on a line of its own (templates): a mail program that makes links of
    # plain text would take a comma or full stop after it into the link.
    cancel_how = "via je persoonlijke pagina" if personal else "door te antwoorden op deze e-mail"
    full_title = activity["title"]
    if data.get("item_title"):
        full_title = f"{data['item_title']} ({activity['title']})"
    expires = ""
    if data.get("expires_at"):
        expires = dutch_date(datetime.fromisoformat(data["expires_at"]))
    return {
        "name": "ouder of verzorger" if kind in PARENT_KINDS else contact.get("first_name", ""),
        "pupil": contact.get("first_name", ""),
        "activity": activity,
        "programme": programme,
        "changes": programme_changes(previous, programme),
        "personal_link": personal if kind not in PARENT_KINDS else "",
        "consent_link": links.get("consent") or "",
        "cancel_how": cancel_how,
        "consent_pending": contact.get("consent") == "pending",
        "position": data.get("position", ""),
        "full_title": full_title,
        "reason": data.get("reason") or "",
        "expires": expires,
        "subject": "",
    }


def _calendar(
    kind: str, contact: dict[str, Any], data: dict[str, Any], context: dict[str, Any]
) -> tuple[tuple[str, str, bytes], ...]:
    if kind not in CALENDAR_REQUEST | CALENDAR_CANCEL:
        return ()
    activity = contact["activity"]
    cancelled = kind in CALENDAR_CANCEL
    programme = context["programme"]
    description = "\n".join(
        [
            *(
                f"Ronde {r['round']}: {r['title'] or 'nog geen plek'}"
                + (f", {r['room']}" if r["room"] else "")
                for r in programme["rounds"]
            ),
            *([f"Workshop: {programme['workshop']['title']}"] if programme["workshop"] else []),
            *(
                [f"Bus {programme['seat']['bus']}, stoel {programme['seat']['seat']}"]
                if programme["seat"]
                else []
            ),
            *programme["itinerary"],
        ]
    )
    method = "CANCEL" if cancelled else "REQUEST"
    content = invitation(
        uid=calendar_uid(contact.get("person_id", ""), activity.get("id", "")),
        title=activity["title"],
        starts_at=datetime.fromisoformat(activity["starts_at"]),
        ends_at=datetime.fromisoformat(activity["ends_at"]),
        location=activity.get("location") or "",
        sequence=int(data.get("sequence", 0)),
        cancelled=cancelled,
        description=description,
        attendee=contact.get("email") or "",
    )
    return (("afspraak.ics", f"text/calendar; method={method}", content),)
