"""What may change in a published activity once people have signed up for it.

An activity's structure is what its sign-ups lean on: an info-day pupil chose sessions, an
orientation-day pupil ranked workshops, a bus-tour participant may have a seat in any bus.
Changing the kind, or taking away a session, workshop or bus that people are in, would leave
them with a choice or seat that no longer exists, so such an update is refused with each
obstacle said in Dutch (what to do first: move or cancel those sign-ups).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from registration.domain.model import Preferences


def _ids(details: Mapping[str, Any], field: str, key: str) -> set[str]:
    return {item[key] for item in details.get(field) or []}


def obstacles_to_update(
    kind: str,
    details: Mapping[str, Any],
    new_kind: str,
    new_details: Mapping[str, Any],
    sign_ups: Iterable[Preferences],
) -> list[str]:
    """Why an update of an activity with these active sign-ups cannot go ahead (empty: it can).

    `details` / `new_details` hold the activity's sessions, workshops and buses as published.
    """
    wishes = list(sign_ups)
    if not wishes:
        return []
    if new_kind != kind:
        return [
            f"De soort kan niet van {kind} naar {new_kind}: er zijn {len(wishes)} aanmeldingen."
        ]
    obstacles = []
    removed_sessions = _ids(details, "sessions", "session_id") - _ids(
        new_details, "sessions", "session_id"
    )
    for session_id in sorted(removed_sessions):
        chosen = sum(1 for w in wishes if session_id in w.choices or session_id == w.backup)
        if chosen:
            obstacles.append(
                f"Voorlichting {session_id} kan niet weg: {chosen} aanmelding(en) kozen haar."
            )
    removed_workshops = _ids(details, "workshops", "workshop_id") - _ids(
        new_details, "workshops", "workshop_id"
    )
    for workshop_id in sorted(removed_workshops):
        ranked = sum(1 for w in wishes if workshop_id in w.ranking)
        if ranked:
            obstacles.append(
                f"Workshop {workshop_id} kan niet weg: {ranked} aanmelding(en) kozen hem."
            )
    removed_buses = _ids(details, "buses", "bus_id") - _ids(new_details, "buses", "bus_id")
    for bus_id in sorted(removed_buses):
        # Seats are scheduling's; any of the participants may sit in this bus.
        obstacles.append(
            f"Bus {bus_id} kan niet weg: er zijn {len(wishes)} aanmeldingen en er kunnen "
            "mensen in deze bus zitten."
        )
    return obstacles
