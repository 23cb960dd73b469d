"""What the API shows of registration's records: plain values that the `*Out` schemas dump.

Times stay datetimes here; the schemas show them in Europe/Amsterdam.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from registration.adapters.tables import Activity, Registration


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
        **activity.details,
    }
    if signed_up is not None:
        view["signed_up"] = signed_up
    return view


def room_lists_csv(rooms: list[dict[str, Any]]) -> str:
    """One line per pupil per room: what supervising decanen print and tick off."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ronde", "sessie", "titel", "aanbieder", "school", "achternaam", "voornaam"])
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
                ]
            )
    return out.getvalue()
