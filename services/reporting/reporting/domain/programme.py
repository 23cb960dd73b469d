"""The 12-27 programme's table (from 1 Jan 2026): young people by age band, phase and
municipality, per activity kind, for a calendar year or the programme's part of a school year.

Who counts: pupils and young adults (the programme is for everyone aged 12 to 27, with or without
a school) with a sign-up that was not cancelled and not recorded as a no-show. Counted are
participations: someone at two activities counts at both, as in Tabel 3a. Every participant
falls in exactly one row of each section, so each section adds up to the same totals row.

Age bands are configurable, within what travels: events carry the band of the contract
(12-15, 16-17, 18-22, 23-27; never the age itself), so a configured band must be made of whole
contract bands (12-17 = 12-15 + 16-17 is fine, 12-16 is not).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from reporting.domain.facts import KIND_LABELS, Activity, FactCount, known_activities, sort_key
from reporting.domain.legacy import describe, period_dict
from reporting.domain.periods import PROGRAMME_12_27_START, Period, PeriodError
from reporting.domain.table import Column, Row, Section, Table

YOUNG_PEOPLE = ("pupil", "young_adult")
# The bands that travel in signed_up (lob_common.contracts.AGE_BANDS), by first and last age.
CONTRACT_BANDS = {"12-15": (12, 15), "16-17": (16, 17), "18-22": (18, 22), "23-27": (23, 27)}
KIND_ORDER = tuple(KIND_LABELS)
PHASE_LABELS = {
    "vo": "vo",
    "pro_vso": "pro/vso",
    "mbo": "mbo",
    "hbo": "hbo",
    "working": "werkend",
    "neither": "geen school of werk",
}
UNKNOWN = "onbekend"
OUTSIDE_BANDS = "buiten de leeftijdsgroepen"


@dataclass(frozen=True)
class AgeBands:
    """Reported bands as (label, first age, last age), each a union of contract bands."""

    bands: tuple[tuple[str, int, int], ...]

    @classmethod
    def parse(cls, text: str) -> AgeBands:
        """'12-15,16-17,18-22,23-27' (the default) or coarser, e.g. '12-17,18-27'."""
        bands = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", part)
            if not match or int(match[1]) > int(match[2]):
                raise PeriodError("age_bands", f"Leeftijdsgroep {part!r} klopt niet; bijv. 12-17.")
            bands.append((part, int(match[1]), int(match[2])))
        if not bands:
            raise PeriodError("age_bands", "Geef minstens één leeftijdsgroep, bijv. 12-17,18-27.")
        edges_first = {first for first, _ in CONTRACT_BANDS.values()}
        edges_last = {last for _, last in CONTRACT_BANDS.values()}
        for label, first, last in bands:
            if first not in edges_first or last not in edges_last:
                raise PeriodError(
                    "age_bands",
                    f"Leeftijdsgroep {label} past niet op de groepen die geregistreerd worden "
                    f"({', '.join(CONTRACT_BANDS)}); kies grenzen die daarmee samenvallen.",
                )
        ordered = sorted(bands, key=lambda b: b[1])
        for (a, _, a_last), (b, b_first, _) in pairwise(ordered):
            if b_first <= a_last:
                raise PeriodError("age_bands", f"Leeftijdsgroepen {a} en {b} overlappen.")
        return cls(tuple(ordered))

    def label_of(self, contract_band: str | None) -> str:
        if contract_band is None:
            return UNKNOWN
        span = CONTRACT_BANDS.get(contract_band)
        if span is None:
            return OUTSIDE_BANDS
        for label, first, last in self.bands:
            if first <= span[0] and span[1] <= last:
                return label
        return OUTSIDE_BANDS

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _, _ in self.bands)


DEFAULT_AGE_BANDS = AgeBands.parse(",".join(CONTRACT_BANDS))


BREAKDOWNS = ("age_band", "phase", "municipality")


def programme_12_27(
    period: Period,
    activities: Iterable[Activity],
    counts: Iterable[FactCount] | Mapping[str, Iterable[FactCount]],
    age_bands: AgeBands = DEFAULT_AGE_BANDS,
    programme_start: date = PROGRAMME_12_27_START,
) -> Table:
    """Participants in `period` (see programme_period) by age band, phase and municipality.

    `counts` are facts with all three dimensions, or per dimension (BREAKDOWNS) facts counted
    by that one (what a database gives cheaply: three small groupings, not their product)."""
    if isinstance(counts, Mapping):
        per_dimension = {d: [c for c in counts[d] if c.role in YOUNG_PEOPLE] for d in BREAKDOWNS}
    else:
        every = [c for c in counts if c.role in YOUNG_PEOPLE]
        per_dimension = dict.fromkeys(BREAKDOWNS, every)
    catalogue = known_activities(activities, (c for found in per_dimension.values() for c in found))
    in_period = {
        a.id: a for a in catalogue.values() if a.date in period and a.date >= programme_start
    }

    def participations(found: list[FactCount]) -> list[FactCount]:
        return [
            c
            for c in found
            if c.activity_id in in_period
            and not in_period[c.activity_id].cancelled
            and c.signed_up
            and c.attended is not False
        ]

    taking_part = {d: participations(found) for d, found in per_dimension.items()}
    kinds = sorted(
        {in_period[c.activity_id].kind for c in taking_part["age_band"]}, key=KIND_ORDER.index
    )
    index = {k: i for i, k in enumerate(kinds)}
    breakdowns: dict[str, dict[str, list[int]]] = {
        d: defaultdict(lambda: [0] * len(kinds)) for d in BREAKDOWNS
    }
    for c in taking_part["age_band"]:
        breakdowns["age_band"][age_bands.label_of(c.age_band)][index[_kind(in_period, c)]] += c.n
    for c in taking_part["phase"]:
        breakdowns["phase"][c.phase or UNKNOWN][index[_kind(in_period, c)]] += c.n
    for c in taking_part["municipality"]:
        place = c.municipality or UNKNOWN
        breakdowns["municipality"][place][index[_kind(in_period, c)]] += c.n

    def section(
        title: str, cells: dict[str, list[int]], fixed: Iterable[tuple[str, str]]
    ) -> Section:
        rows = [(key, label) for key, label in fixed]
        fixed_keys = {key for key, _ in rows}
        extra = sorted((k for k in cells if k not in fixed_keys and k != UNKNOWN), key=sort_key)
        rows += [(k, PHASE_LABELS.get(k, k)) for k in extra]
        if UNKNOWN in cells:
            rows.append((UNKNOWN, UNKNOWN))
        return Section(
            title,
            tuple(Row(key, label, tuple(cells.get(key, [0] * len(kinds)))) for key, label in rows),
        )

    ages = [(label, label) for label in age_bands.labels]
    if OUTSIDE_BANDS in breakdowns["age_band"]:
        ages.append((OUTSIDE_BANDS, OUTSIDE_BANDS))
    sections = (
        section("Leeftijd", breakdowns["age_band"], ages),
        section("Fase", breakdowns["phase"], PHASE_LABELS.items()),
        section("Gemeente", breakdowns["municipality"], ()),
    )
    cancelled = sorted(
        (a for a in in_period.values() if a.cancelled), key=lambda a: (a.date, a.title)
    )
    notes = [
        "Jongeren van 12 tot en met 27 jaar (leerlingen en jongvolwassenen) met een aanmelding "
        "die niet is geannuleerd en waarbij geen afwezigheid is geregistreerd; wie aan twee "
        "activiteiten deelneemt, telt bij beide."
    ]
    if cancelled:
        notes.append(f"Afgelast, niet geteld: {describe(cancelled)}.")
    return Table(
        name="programme-12-27",
        title=f"Programma 12-27: deelnemers {period.label} naar leeftijd, fase, gemeente en "
        "soort activiteit",
        row_header="Indeling",
        columns=tuple(Column(k, KIND_LABELS.get(k, k), k) for k in kinds),
        sections=sections,
        notes=tuple(notes),
        period=period_dict(period),
    )


def _kind(in_period: dict[str, Activity], count: FactCount) -> str:
    return in_period[count.activity_id].kind
