"""What the API shows of registration's records: plain values that the `*Out` schemas dump.

Times stay datetimes here; the schemas show them in Europe/Amsterdam.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from lob_common.timeutil import local
from registration.adapters.tables import Activity, Person, Registration


def registration_view(registration: Registration) -> dict[str, Any]:
    return {
        "registration_id": registration.id,
        "activity_id": registration.activity_id,
        "person_id": registration.person_id,
        "school_id": registration.school_id,
        "status": registration.status,
        "consent": registration.consent,
        "preferences": registration.preferences,
        "created_at": registration.created_at,
    }


def activity_view(activity: Activity, signed_up: int | None = None) -> dict[str, Any]:
    view = {
        "id": activity.id,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": activity.starts_at,
        "ends_at": activity.ends_at,
        "location": activity.location,
        "capacity": activity.capacity,
        "sign_up_closes_at": activity.sign_up_closes_at,
        "sign_up_opens_at": activity.sign_up_opens_at,
        "audience": list(activity.audience or ()),
        "host_school_id": activity.host_school_id,
        "cancelled_at": activity.cancelled_at,
        "historical": bool(activity.historical),
        **activity.details,
    }
    if signed_up is not None:
        view["signed_up"] = signed_up
    return view


def registration_list_item(registration: Registration, person: Person) -> dict[str, Any]:
    return {
        **registration_view(registration),
        "role": person.role,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "school_year": person.school_year,
    }


# What a decaan reads in the spreadsheet (values not listed here are shown as they are).
DUTCH_WORDS = {
    "pupil": "leerling",
    "professional": "professional",
    "young_adult": "jongere",
    "parent": "ouder",
    "mbo_student": "mbo-student",
    "signed_up": "aangemeld",
    "cancelled": "afgemeld",
    "pending_consent": "wacht op toestemming",
    "withdrawn": "vervallen",
    "not_required": "niet nodig",
    "pending": "gevraagd",
    "given": "gegeven",
    "refused": "geweigerd",
    "expired": "verlopen",
}
REGISTRATIONS_CSV_HEADER = [
    "Achternaam",
    "Voornaam",
    "School",
    "Leerjaar",
    "Rol",
    "Activiteit",
    "Status",
    "Toestemming ouder",
    "Aangemeld op",
    "Aanmeldingsnummer",
]


def registrations_csv(
    rows: Iterable[dict[str, Any]],
    school_names: Mapping[str, str],
    activity_titles: Mapping[str, str],
) -> str:
    """A decaan's spreadsheet: Dutch headers, semicolons and a byte-order mark, so Excel in a
    Dutch locale opens it with the accents right and one column per field."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(REGISTRATIONS_CSV_HEADER)
    for row in rows:
        school = row["school_id"] or ""
        writer.writerow(
            _cell(value)
            for value in (
                row["last_name"],
                row["first_name"],
                school_names.get(school, school),
                row["school_year"] or "",
                DUTCH_WORDS.get(row["role"], row["role"]),
                activity_titles.get(row["activity_id"], row["activity_id"]),
                DUTCH_WORDS.get(row["status"], row["status"]),
                DUTCH_WORDS.get(row["consent"], row["consent"]),
                f"{local(row['created_at']):%d-%m-%Y %H:%M}",
                row["registration_id"],
            )
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula is shown as text instead."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


ROOM_LIST_HEADER = [
    "ronde",
    "sessie",
    "titel",
    "aanbieder",
    "school",
    "achternaam",
    "voornaam",
    "aanmeldingsnummer",
    "aanwezig",
]


def room_lists_csv(rooms: list[dict[str, Any]]) -> str:
    """One line per pupil per room: what supervising decanen print and tick off. The empty
    `aanwezig` column, filled in and uploaded back, records attendance (docs/consent.md)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(ROOM_LIST_HEADER)
    for room in rooms:
        for pupil in room["pupils"]:
            writer.writerow(
                [
                    room["round"],
                    room["session_id"],
                    room["title"],
                    room["provider"],
                    pupil["school"],
                    pupil["last_name"],
                    pupil["first_name"],
                    pupil["registration_id"],
                    "",  # aanwezig: ticked on the day, uploaded back (POST .../attendance)
                ]
            )
    return out.getvalue()
