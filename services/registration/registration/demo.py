"""The demo season: region Eem's schools and the 2025-2026 plan (Tabel 6 of the annual report),
each date moved to its next occurrence from today, so a newcomer can sign up at once.

Municipalities of the schools and the session/workshop line-up are plausible demo values, not
facts from the report.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from lob_common.db import DatabaseHandle
from lob_common.timeutil import AMSTERDAM
from registration import handlers
from registration.adapters.repository import Repository
from registration.domain.model import School

SCHOOLS: list[tuple[str, str, str, str]] = [
    ("t-atrium", "'t Atrium", "vmbo", "Amersfoort"),
    ("t-hooghe-landt", "'t Hooghe Landt", "vmbo", "Amersfoort"),
    ("aeres-vmbo-nijkerk", "Aeres VMBO Nijkerk", "vmbo", "Nijkerk"),
    ("amsfort-college", "Amsfort College", "vmbo", "Amersfoort"),
    ("axia-college", "Axia College bovenbouw (vso)", "vso", "Amersfoort"),
    ("corderius-college", "Corderius College", "vmbo", "Amersfoort"),
    ("corlaer-college", "Corlaer College", "vmbo", "Nijkerk"),
    ("de-meerwaarde", "De Meerwaarde", "vmbo", "Barneveld"),
    ("farel-college", "Farel College", "vmbo", "Amersfoort"),
    ("griftland-college", "Griftland College", "vmbo", "Soest"),
    ("guido-vmbo", "Guido vmbo Amersfoort", "vmbo", "Amersfoort"),
    ("het-element", "Het Element", "vmbo", "Amersfoort"),
    ("het-nieuwe-eemland", "Het Nieuwe Eemland", "vmbo", "Amersfoort"),
    ("johannes-fontanus", "Johannes Fontanus College", "vmbo", "Barneveld"),
    ("muurhuizen", "Muurhuizen", "vmbo", "Amersfoort"),
    ("oostwende-college", "Oostwende College", "vmbo", "Amersfoort"),
    ("van-lodenstein", "Van Lodenstein College", "vmbo", "Amersfoort"),
    ("vathorst-college", "Vathorst College", "vmbo", "Amersfoort"),
    ("vavo-lyceum", "VAVO Lyceum", "vavo", "Amersfoort"),
    ("vmbo-trivium", "VMBO Trivium College", "vmbo", "Amersfoort"),
    ("waldheim-mavo", "Waldheim-mavo", "vmbo", "Baarn"),
    ("yuverta-amersfoort", "Yuverta vmbo Amersfoort", "vmbo", "Amersfoort"),
    ("de-baander", "De Baander Praktijkonderwijs", "pro", "Amersfoort"),
    ("pro33college", "PRO33college", "pro", "Amersfoort"),
    ("vso-berg-en-bosch", "VSO Berg en Bosch", "vso", "Bunschoten"),
    ("mbo-amersfoort", "MBO Amersfoort", "mbo", "Amersfoort"),
    ("roc-midden-nederland", "ROC Midden Nederland", "mbo", "Amersfoort"),
    ("hoornbeeck-college", "Hoornbeeck College", "mbo", "Amersfoort"),
    ("aeres-mbo", "Aeres MBO", "mbo", "Barneveld"),
]

INFODAY_SESSIONS = [
    ("Zorg & Welzijn", "MBO Amersfoort"),
    ("Verpleegkunde", "ROC Midden Nederland"),
    ("Pedagogisch werk", "Hoornbeeck College"),
    ("Techniek & Installatie", "MBO Amersfoort"),
    ("Bouw & Infra", "MBO Amersfoort"),
    ("Motorvoertuigen", "ROC Midden Nederland"),
    ("ICT & Software", "MBO Amersfoort"),
    ("Media & Vormgeving", "ROC Midden Nederland"),
    ("Economie & Ondernemen", "MBO Amersfoort"),
    ("Handel & Retail", "ROC Midden Nederland"),
    ("Logistiek", "MBO Amersfoort"),
    ("Horeca & Bakkerij", "ROC Midden Nederland"),
    ("Toerisme & Recreatie", "ROC Midden Nederland"),
    ("Sport & Bewegen", "MBO Amersfoort"),
    ("Veiligheid & Defensie", "ROC Midden Nederland"),
    ("Uiterlijke verzorging", "MBO Amersfoort"),
    ("Groen & Dier", "Aeres MBO"),
    ("Food & Agri", "Aeres MBO"),
    ("Paardensport", "Aeres MBO"),
    ("Onderwijsassistent", "Hoornbeeck College"),
    ("Juridisch & Bestuur", "MBO Amersfoort"),
    ("Mode & Textiel", "ROC Midden Nederland"),
    ("Laboratorium", "ROC Midden Nederland"),
    ("Maritiem & Transport", "ROC Midden Nederland"),
    ("Entree-opleidingen", "MBO Amersfoort"),
    ("Ambacht & Creatief", "Hoornbeeck College"),
]


def next_occurrence(month: int, day: int, today: date) -> date:
    """The first date with this month and day that is still ahead (at least a week away)."""
    for year in (today.year, today.year + 1, today.year + 2):
        candidate = date(year, month, day)
        if candidate >= today + timedelta(days=7):
            return candidate
    raise AssertionError("unreachable")


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=AMSTERDAM)


def _activity(
    ident: str,
    kind: str,
    title: str,
    day: date,
    start: tuple[int, int],
    end: tuple[int, int],
    location: str,
    **extra: Any,
) -> dict[str, Any]:
    data = {
        "id": ident,
        "kind": kind,
        "title": title,
        "starts_at": _at(day, *start),
        "ends_at": _at(day, *end),
        "location": location,
        "capacity": None,
        "sign_up_closes_at": _at(day - timedelta(days=3), 23, 59),
        "rounds": [],
        "sessions": [],
        "workshops": [],
        "buses": [],
        "stops": [],
        "departure": None,
        "travel_minutes": None,
        "max_overbooking": None,
    }
    data.update(extra)
    return data


# The February 2025 tour: six locations of MBO Amersfoort and ROC Midden Nederland. Coordinates
# are approximate; with no travel matrix the timetable uses estimates from them.
AMERSFOORT = {"lat": 52.1533, "lon": 5.3731}
BUS_TOUR_STOPS = [
    {
        "stop_id": ident,
        "name": name,
        "visit_minutes": minutes,
        "opens": opens,
        "closes": "16:00",
        "lat": lat,
        "lon": lon,
    }
    for ident, name, minutes, opens, lat, lon in (
        ("mboa-techniek", "MBO Amersfoort School voor Techniek", 40, "08:30", 52.1700, 5.4030),
        ("mboa-garage", "MBO Amersfoort de Garage", 40, "08:30", 52.1625, 5.3960),
        ("mboa-koppelt", "MBO Amersfoort Koppel't", 40, "08:30", 52.1580, 5.3650),
        ("mboa-admin", "MBO Amersfoort Admin Company", 30, "08:30", 52.1510, 5.3820),
        ("rocmn-utrecht", "ROC Midden Nederland Utrecht", 45, "11:00", 52.0840, 5.0870),
        ("rocmn-nieuwegein", "ROC Midden Nederland Nieuwegein", 45, "11:00", 52.0290, 5.0830),
    )
]


def demo_activities(today: date) -> list[dict[str, Any]]:
    infoday = next_occurrence(11, 20, today)
    rounds = [
        {
            "round": r,
            "starts_at": _at(infoday, 9 + r - 1, 0),
            "ends_at": _at(infoday, 9 + r - 1, 45),
        }
        for r in (1, 2, 3)
    ]
    sessions = [
        {
            "session_id": f"S{i:02d}",
            "title": title,
            "provider": provider,
            "capacity": 40 + 10 * (i % 3),
            "rounds": [1, 2, 3] if i % 4 else [2, 3],
            "room": f"Lokaal {100 + i}",
        }
        for i, (title, provider) in enumerate(INFODAY_SESSIONS, start=1)
    ]
    activities = [
        _activity(
            "voorlichtingsdag",
            "infoday",
            "Voorlichtingsdag MBO-beroepen",
            infoday,
            (8, 45),
            (12, 0),
            "MBO Amersfoort, Campus Amersfoort",
            rounds=rounds,
            sessions=sessions,
        ),
        _activity(
            "loopbaanevenement",
            "career_event",
            "Loopbaanevenement",
            next_occurrence(6, 5, today),
            (19, 0),
            (21, 0),
            "Amersfoort",
            capacity=200,
        ),
        _activity(
            "lob-bustour",
            "bus_tour",
            "LOB-bustour",
            next_occurrence(2, 19, today),
            (8, 30),
            (16, 30),
            "Vertrek: Amersfoort Centraal",
            buses=[{"bus_id": "bus-1", "seats": 24}],
            departure={"stop_id": "amersfoort-cs", "name": "Amersfoort Centraal", **AMERSFOORT},
            stops=BUS_TOUR_STOPS,
        ),
    ]
    for n, (month, day, places) in enumerate(
        [(12, 11, "Amersfoort"), (2, 12, "Amersfoort"), (3, 19, "Amersfoort, Utrecht, Nieuwegein")],
        start=1,
    ):
        when = next_occurrence(month, day, today)
        workshops = [
            {"workshop_id": f"w{n}-{i}", "title": title, "location": place.strip(), "capacity": 16}
            for i, (title, place) in enumerate(
                zip(
                    ["Zorg & Welzijn", "Techniek", "ICT", "Economie", "Horeca", "Bouw"],
                    (places.split(",") * 6)[:6],
                    strict=True,
                ),
                start=1,
            )
        ]
        activities.append(
            _activity(
                f"orientatiedag-{n}",
                "orientation_day",
                f"MBO oriëntatiedag {n}",
                when,
                (14, 0),
                (16, 0),
                places,
                workshops=workshops,
            )
        )
    for n, (month, day) in enumerate([(9, 18), (11, 6), (1, 29), (4, 16), (6, 25)], start=1):
        activities.append(
            _activity(
                f"decanenkring-{n}",
                "decanen_meeting",
                "Decanenkring vmbo-Eemland",
                next_occurrence(month, day, today),
                (15, 0),
                (17, 0),
                "Amersfoort",
                capacity=60,
            )
        )
    return activities


def seed_school_contacts(db: DatabaseHandle) -> None:
    """Each demo school's decaan, where none is set: decaan@<school-id>.example.nl."""
    for ident, *_ in SCHOOLS:
        handlers.set_school_contact(db, ident, f"decaan@{ident}.example.nl", overwrite=False)


def seed(db: DatabaseHandle, today: date, refresh: bool = False) -> dict[str, int]:
    """Register the demo schools and publish the demo activities that do not exist yet.

    A school that is new or changed is announced (school_registered); `refresh` republishes
    existing activities too (their dates move to the next occurrence).
    """
    for ident, name, kind, municipality in SCHOOLS:
        handlers.register_school(db, School(ident, name, kind, municipality))
    seed_school_contacts(db)
    with db() as uow:
        existing = Repository(uow.session).activity_ids()
    created = 0
    for activity in demo_activities(today):
        if activity["id"] in existing and not refresh:
            continue
        _, was_new, _ = handlers.publish_activity(db, activity, force=True)
        created += was_new
    return {"schools": len(SCHOOLS), "activities_created": created}
