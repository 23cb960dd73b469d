"""Region Eem's 2024-2025 season, as the annual report tells it (shared/seeds/002_...txt).

The data a region would load to compare years: the schools and institutions of Tabel 3a and 3b,
the activities of that school year with their real dates, and how many took part. `lob demo`
(lob_cli.demo) loads it through the running system's API as a historical season; the tests
feed it to reporting's tables.

From the report, exactly:
- Tabel 3a: pupils per school at the information day (14 Nov 2024) and the career event
  (5 Jun 2025); totals 1249, 151, 1400. The row "MBO Amersfoort - Entree" shows 33 at the
  information day and no row total; the column total includes it, so its total is 33.
- Tabel 3b: the column totals 22, 14, 38, 55, 24, 40, 22, 17 and the grand total 232. The
  report's text lost its empty cells and column headings, so which cell a number stood in is
  unknown. The numbers of each row, in the report's order, were placed in columns in that same
  order so that every column adds up to its total (a small constraint problem, solved once).
  Those numbers sum to 232; some of the report's printed row totals do not match its own cells
  (De Meerwaarde 12 printed as 11, MBO Amersfoort 18 as 12, ...): the cells are used.

Assumed (the report does not say): the columns of Tabel 3b are the eight activities for
professionals in date order; two of them are not dated in the report: a decanenkring with a
masterclass (taken as 30 Jan 2025, the 55) and a decanenkring in June (12 Jun 2025, the 22).
Municipalities, the information-day sessions, workshops, times and the synthetic people are
plausible demo values. The orientation days' sign-ups ran through the mbo colleges, so the
report has no figures for them; here they are activities without sign-ups.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from lob_common.timeutil import AMSTERDAM

SCHOOL_YEAR = "2024-2025"


@dataclass(frozen=True)
class SeasonSchool:
    id: str
    name: str
    kind: str  # lob_common.contracts.SCHOOL_KINDS
    municipality: str


@dataclass(frozen=True)
class SeasonActivity:
    id: str
    kind: str
    title: str
    day: date
    starts: time
    ends: time
    location: str
    audience: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)  # sessions, workshops, buses, ...

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.day, self.starts, tzinfo=AMSTERDAM)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.day, self.ends, tzinfo=AMSTERDAM)


SCHOOLS: tuple[SeasonSchool, ...] = tuple(
    SeasonSchool(*row)
    for row in (
        ("t-atrium", "'t Atrium", "vmbo", "Amersfoort"),
        ("t-hooghe-landt", "'t Hooghe Landt", "vmbo", "Amersfoort"),
        ("aeres-vmbo-nijkerk", "Aeres VMBO Nijkerk", "vmbo", "Nijkerk"),
        ("amsfort-college", "Amsfort College", "vmbo", "Amersfoort"),
        ("axia-college", "Axia College bovenbouw (vso)", "vso", "Amersfoort"),
        ("corderius-college", "Corderius College", "vmbo", "Amersfoort"),
        ("corlaer-college", "Corlaer College", "vmbo", "Nijkerk"),
        ("de-baander", "De Baander Praktijkonderwijs", "pro", "Amersfoort"),
        ("de-meerwaarde", "De Meerwaarde", "vmbo", "Barneveld"),
        ("farel-college", "Farel College", "vmbo", "Amersfoort"),
        ("griftland-college", "Griftland College", "vmbo", "Soest"),
        ("guido-vmbo", "Guido vmbo Amersfoort", "vmbo", "Amersfoort"),
        ("het-element", "Het Element", "vmbo", "Amersfoort"),
        ("het-nieuwe-eemland", "Het Nieuwe Eemland", "vmbo", "Amersfoort"),
        ("johannes-fontanus", "Johannes Fontanus College", "vmbo", "Barneveld"),
        # An mbo department whose entree pupils came to the information day: not one of the
        # region's four mbo institutions, so not a row of its own in Tabel 3b.
        ("mbo-amersfoort-entree", "MBO Amersfoort - Entree", "other", "Amersfoort"),
        ("muurhuizen", "Muurhuizen", "vmbo", "Amersfoort"),
        ("oostwende-college", "Oostwende College", "vmbo", "Amersfoort"),
        ("opdc-utrecht", "OPDC Utrecht", "vso", "Utrecht"),
        ("pro33college", "PRO33college", "pro", "Amersfoort"),
        ("van-lodenstein", "Van Lodenstein College", "vmbo", "Amersfoort"),
        ("vathorst-college", "Vathorst College", "vmbo", "Amersfoort"),
        ("vavo-lyceum", "VAVO Lyceum", "vavo", "Amersfoort"),
        ("vmbo-trivium", "VMBO Trivium College", "vmbo", "Amersfoort"),
        ("vso-berg-en-bosch-bilthoven", "VSO Berg en Bosch - Bilthoven", "vso", "De Bilt"),
        ("vso-berg-en-bosch-houten", "VSO Berg en Bosch - Houten", "vso", "Houten"),
        ("vso-donnerschool-de-glind", "VSO J.H. Donnerschool / De Glind", "vso", "Barneveld"),
        ("waldheim-mavo", "Waldheim-mavo", "vmbo", "Baarn"),
        ("yuverta-amersfoort", "Yuverta vmbo Amersfoort", "vmbo", "Amersfoort"),
        ("mbo-amersfoort", "MBO Amersfoort", "mbo", "Amersfoort"),
        ("roc-midden-nederland", "ROC Midden Nederland", "mbo", "Amersfoort"),
        ("aeres-mbo", "Aeres MBO", "mbo", "Barneveld"),
        ("hoornbeeck-college", "Hoornbeeck College", "mbo", "Amersfoort"),
    )
)

_PROVIDERS = (
    "MBO Amersfoort",
    "ROC Midden Nederland",
    "Aeres MBO Barneveld",
    "Hout- en Meubileringscollege",
    "SVO",
)
_SESSION_TITLES = (
    "Zorg & Welzijn",
    "Verpleegkunde",
    "Pedagogisch werk",
    "Techniek & Installatie",
    "Bouw & Infra",
    "Motorvoertuigen",
    "ICT & Software",
    "Media & Vormgeving",
    "Economie & Ondernemen",
    "Handel & Retail",
    "Logistiek",
    "Horeca & Bakkerij",
    "Toerisme & Recreatie",
    "Sport & Bewegen",
    "Veiligheid & Defensie",
    "Uiterlijke verzorging",
    "Groen & Dier",
    "Food & Agri",
    "Meubel & Interieur",
    "Onderwijsassistent",
    "Juridisch & Bestuur",
    "Vlees & Vleeswaren",
    "Laboratorium",
    "Maritiem & Transport",
    "Entree-opleidingen",
    "Ambacht & Creatief",
)
INFODAY_SESSIONS = tuple(
    {
        "session_id": f"S{i:02d}",
        "title": title,
        "provider": _PROVIDERS[(i - 1) % len(_PROVIDERS)],
        "capacity": 60,
        "rounds": [1, 2, 3],
        "room": f"Lokaal {100 + i}",
    }
    for i, title in enumerate(_SESSION_TITLES, start=1)
)
_WORKSHOPS = ("Zorg & Welzijn", "Techniek", "ICT", "Economie", "Horeca", "Bouw")


def _rounds(day: date) -> list[dict[str, Any]]:
    return [
        {
            "round": r,
            "starts_at": datetime.combine(day, time(9 + r - 1), tzinfo=AMSTERDAM).isoformat(),
            "ends_at": datetime.combine(day, time(9 + r - 1, 45), tzinfo=AMSTERDAM).isoformat(),
        }
        for r in (1, 2, 3)
    ]


def _workshops(n: int) -> list[dict[str, Any]]:
    return [
        {"workshop_id": f"od{n}-{i}", "title": title, "location": "Amersfoort", "capacity": 16}
        for i, title in enumerate(_WORKSHOPS, start=1)
    ]


def _bus(*stops: tuple[str, str]) -> dict[str, Any]:
    return {
        "buses": [{"bus_id": "bus-1", "seats": 50}],
        "departure": {"stop_id": "amersfoort-cs", "name": "Amersfoort Centraal"},
        "stops": [{"stop_id": s, "name": name, "visit_minutes": 60} for s, name in stops],
    }


PUPILS, PROFESSIONALS = ("pupils",), ("professionals",)
ACTIVITIES: tuple[SeasonActivity, ...] = (
    SeasonActivity(
        "lob-bustour-2024-10",
        "bus_tour",
        "LOB-bustour naar het MBO (Aeres MBO Ede en Barneveld)",
        date(2024, 10, 17),
        time(8, 30),
        time(16, 0),
        "Vertrek: Amersfoort Centraal",
        PROFESSIONALS,
        _bus(("aeres-ede", "Aeres MBO Ede"), ("aeres-barneveld", "Aeres MBO Barneveld")),
    ),
    SeasonActivity(
        "decanen-2024-10",
        "decanen_meeting",
        "Bijeenkomst voor (startende) decanen",
        date(2024, 10, 24),
        time(14, 0),
        time(16, 30),
        "Amersfoort",
        PROFESSIONALS,
    ),
    SeasonActivity(
        "voorlichtingsdag-2024",
        "infoday",
        "Voorlichtingsdag MBO-beroepen",
        date(2024, 11, 14),
        time(8, 45),
        time(12, 0),
        "MBO Amersfoort, School voor Techniek",
        PUPILS,
        {"rounds": _rounds(date(2024, 11, 14)), "sessions": [dict(s) for s in INFODAY_SESSIONS]},
    ),
    *(
        SeasonActivity(
            f"orientatiedag-{n}-{day.year}",
            "orientation_day",
            f"MBO-oriëntatiedag {n}",
            day,
            time(14, 0),
            time(16, 0),
            "MBO Amersfoort en ROC Midden Nederland",
            PUPILS,
            {"workshops": _workshops(n)},
        )
        for n, day in enumerate((date(2024, 11, 28), date(2025, 2, 13), date(2025, 3, 6)), start=1)
    ),
    SeasonActivity(
        "lerend-netwerk-2024-12",
        "network_meeting",
        "Lerend Netwerk: Elke jongere de beste kansen",
        date(2024, 12, 12),
        time(14, 0),
        time(17, 0),
        "Amersfoort",
        PROFESSIONALS,
    ),
    SeasonActivity(
        "decanenkring-2025-01",
        "decanen_meeting",
        "Decanenkring vmbo-Eemland + masterclass",
        date(2025, 1, 30),
        time(14, 0),
        time(17, 0),
        "Amersfoort",
        PROFESSIONALS,
    ),
    SeasonActivity(
        "lob-bustour-2025-02",
        "bus_tour",
        "LOB-bustour naar het MBO (MBO Amersfoort en ROC Midden Nederland)",
        date(2025, 2, 20),
        time(8, 30),
        time(16, 30),
        "Vertrek: Amersfoort Centraal",
        PROFESSIONALS,
        _bus(
            ("mboa-techniek", "MBO Amersfoort School voor Techniek"),
            ("mboa-garage", "MBO Amersfoort de Garage"),
            ("mboa-koppelt", "MBO Amersfoort Koppel't"),
            ("mboa-admin", "MBO Amersfoort Admin Company"),
            ("mboa-green-outlet", "MBO Amersfoort Green Outlet"),
            ("rocmn-utrecht", "ROC Midden Nederland ICT, Techniek en Gezondheidszorg College"),
        ),
    ),
    SeasonActivity(
        "lerend-netwerk-2025-05",
        "network_meeting",
        "Lerend Netwerk: Het praktijkgericht programma, wat levert dit op?",
        date(2025, 5, 14),
        time(14, 0),
        time(17, 0),
        "Amersfoort",
        PROFESSIONALS,
    ),
    SeasonActivity(
        "loopbaanevenement-2025",
        "career_event",
        "Loopbaanevenement",
        date(2025, 6, 5),
        time(19, 0),
        time(21, 0),
        "Amersfoort",
        ("pupils", "parents"),
    ),
    SeasonActivity(
        "decanenkring-2025-06",
        "decanen_meeting",
        "Decanenkring vmbo-Eemland",
        date(2025, 6, 12),
        time(15, 0),
        time(17, 0),
        "Amersfoort",
        PROFESSIONALS,
    ),
    SeasonActivity(
        "lerend-netwerk-2025-06",
        "network_meeting",
        "Lerend Netwerk: LOB in het mbo",
        date(2025, 6, 19),
        time(14, 0),
        time(17, 0),
        "Amersfoort",
        PROFESSIONALS,
    ),
)

# Tabel 3a: pupils who signed up, per school: (information day, career event).
TABEL_3A_ACTIVITIES = ("voorlichtingsdag-2024", "loopbaanevenement-2025")
TABEL_3A: dict[str, tuple[int, int]] = {
    "t-atrium": (71, 101),
    "t-hooghe-landt": (51, 0),
    "aeres-vmbo-nijkerk": (0, 0),
    "amsfort-college": (80, 0),
    "axia-college": (14, 0),
    "corderius-college": (94, 0),
    "corlaer-college": (52, 0),
    "de-meerwaarde": (0, 0),
    "farel-college": (47, 50),
    "griftland-college": (68, 0),
    "guido-vmbo": (65, 0),
    "het-element": (147, 0),
    "het-nieuwe-eemland": (45, 0),
    "johannes-fontanus": (0, 0),
    "mbo-amersfoort-entree": (33, 0),
    "muurhuizen": (133, 0),
    "oostwende-college": (91, 0),
    "van-lodenstein": (0, 0),
    "vathorst-college": (0, 0),
    "vavo-lyceum": (10, 0),
    "vmbo-trivium": (147, 0),
    "waldheim-mavo": (0, 0),
    "yuverta-amersfoort": (101, 0),
}

# Tabel 3b: professionals who attended, per school or institution (None: "Overige
# instellingen", professionals of no registered school), in the order of these activities.
TABEL_3B_ACTIVITIES = (
    "lob-bustour-2024-10",
    "decanen-2024-10",
    "lerend-netwerk-2024-12",
    "decanenkring-2025-01",
    "lob-bustour-2025-02",
    "lerend-netwerk-2025-05",
    "decanenkring-2025-06",
    "lerend-netwerk-2025-06",
)
TABEL_3B_COLUMN_TOTALS = (22, 14, 38, 55, 24, 40, 22, 17)
TABEL_3B: dict[str | None, tuple[int, ...]] = {
    "t-atrium": (1, 0, 2, 0, 0, 0, 0, 0),
    "t-hooghe-landt": (0, 0, 4, 0, 0, 2, 5, 0),
    "aeres-vmbo-nijkerk": (1, 2, 1, 8, 1, 0, 0, 3),
    "amsfort-college": (1, 0, 1, 0, 1, 0, 0, 0),
    "axia-college": (0, 0, 1, 1, 2, 3, 2, 0),
    "corderius-college": (1, 0, 1, 0, 0, 5, 0, 0),
    "corlaer-college": (0, 0, 3, 2, 0, 3, 0, 0),
    "de-baander": (0, 0, 2, 1, 0, 0, 0, 0),
    "de-meerwaarde": (0, 4, 2, 2, 1, 3, 0, 0),
    "farel-college": (2, 1, 2, 0, 0, 3, 0, 0),
    "griftland-college": (0, 0, 0, 0, 0, 0, 1, 0),
    "guido-vmbo": (0, 0, 1, 2, 2, 3, 1, 2),
    "het-element": (0, 0, 2, 3, 1, 2, 0, 0),
    "het-nieuwe-eemland": (0, 0, 1, 5, 0, 0, 0, 0),
    "johannes-fontanus": (2, 0, 2, 0, 1, 0, 0, 0),
    "muurhuizen": (2, 0, 0, 0, 0, 2, 0, 0),
    "oostwende-college": (1, 1, 3, 0, 0, 0, 0, 0),
    "opdc-utrecht": (0, 0, 0, 0, 1, 0, 0, 0),
    "pro33college": (0, 0, 0, 0, 0, 0, 3, 0),
    "van-lodenstein": (0, 0, 3, 2, 0, 0, 0, 0),
    "vathorst-college": (2, 0, 1, 1, 0, 0, 0, 0),
    "vavo-lyceum": (1, 1, 1, 2, 1, 0, 0, 0),
    "vmbo-trivium": (0, 0, 0, 0, 1, 0, 0, 0),
    "vso-berg-en-bosch-bilthoven": (0, 0, 0, 0, 0, 0, 1, 0),
    "vso-berg-en-bosch-houten": (0, 0, 0, 0, 0, 0, 1, 0),
    "vso-donnerschool-de-glind": (0, 0, 0, 0, 1, 0, 0, 0),
    "waldheim-mavo": (1, 2, 0, 0, 0, 0, 0, 0),
    "yuverta-amersfoort": (0, 1, 1, 0, 3, 0, 0, 0),
    "mbo-amersfoort": (0, 1, 1, 4, 2, 2, 2, 6),
    "roc-midden-nederland": (1, 0, 2, 6, 2, 2, 2, 6),
    "aeres-mbo": (0, 0, 0, 0, 1, 0, 0, 0),
    "hoornbeeck-college": (0, 0, 0, 0, 0, 0, 0, 0),
    None: (6, 1, 1, 16, 3, 10, 4, 0),
}


@dataclass(frozen=True)
class Participant:
    """One synthetic person's sign-up for one activity (names are made up)."""

    role: str  # pupil or professional
    first_name: str
    last_name: str
    email: str
    activity_id: str
    school_id: str | None
    date_of_birth: date | None = None
    school_year: int | None = None
    municipality: str | None = None
    choices: tuple[str, ...] = ()
    backup: str | None = None
    attended: bool | None = None  # professionals: recorded attendance (Tabel 3b)


_FIRST = [
    "Sanne",
    "Daan",
    "Emma",
    "Liam",
    "Julia",
    "Noah",
    "Tess",
    "Sem",
    "Lotte",
    "Finn",
    "Sara",
    "Milan",
    "Eva",
    "Luuk",
    "Anna",
    "Jesse",
    "Lisa",
    "Thijs",
    "Fleur",
    "Bram",
    "Noor",
    "Ruben",
    "Iris",
    "Lars",
    "Mila",
    "Stijn",
    "Femke",
    "Jens",
    "Roos",
    "Tim",
]
_LAST = [
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van Dijk",
    "Schouten",
    "van Beek",
    "Hoekstra",
]


def participants() -> Iterator[Participant]:
    """Everyone of Tabel 3a and 3b as a synthetic person, in a stable order (same each run)."""
    schools = {s.id: s for s in SCHOOLS}
    activities = {a.id: a for a in ACTIVITIES}
    n = 0
    for school_id, counts in TABEL_3A.items():
        school = schools[school_id]
        for activity_id, count in zip(TABEL_3A_ACTIVITIES, counts, strict=True):
            day = activities[activity_id].day
            for _ in range(count):
                first, last = _name(n)
                choices = tuple(INFODAY_SESSIONS[(n + k * 7) % 26]["session_id"] for k in range(4))
                infoday = activities[activity_id].kind == "infoday"
                yield Participant(
                    role="pupil",
                    first_name=first,
                    last_name=last,
                    email=_email(first, last, n),
                    activity_id=activity_id,
                    school_id=school_id,
                    date_of_birth=day - timedelta(days=365 * 15 + (n * 37) % 600),
                    school_year=3 + n % 2,
                    municipality=school.municipality,
                    choices=choices[:3] if infoday else (),
                    backup=choices[3] if infoday else None,
                )
                n += 1
    for school_id, counts in TABEL_3B.items():
        for activity_id, count in zip(TABEL_3B_ACTIVITIES, counts, strict=True):
            for _ in range(count):
                first, last = _name(n)
                yield Participant(
                    role="professional",
                    first_name=first,
                    last_name=last,
                    email=_email(first, last, n),
                    activity_id=activity_id,
                    school_id=school_id,
                    attended=True,
                )
                n += 1


def _name(n: int) -> tuple[str, str]:
    return _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST)) % len(_LAST)]


def _email(first: str, last: str, n: int) -> str:
    return f"{first}.{last.replace(' ', '')}.{n}@example.nl".lower()


def school_events() -> list[dict[str, Any]]:
    """The schools as `school_registered` payloads."""
    return [
        {"school_id": s.id, "name": s.name, "kind": s.kind, "municipality": s.municipality}
        for s in SCHOOLS
    ]


def activity_events() -> list[dict[str, Any]]:
    """The activities as `activity_published` 1.2 payloads (times with their offset)."""
    return [
        {
            "activity_id": a.id,
            "kind": a.kind,
            "title": a.title,
            "starts_at": a.starts_at.isoformat(),
            "ends_at": a.ends_at.isoformat(),
            "location": a.location,
            "audience": list(a.audience),
            **a.details,
        }
        for a in ACTIVITIES
    ]
