"""Reporting's use cases: record facts from events, produce the region's tables, rebuild.

Event handlers are idempotent (lob_common.db.idempotent, or its batch form for the events that
come in thousands: sign-ups, cancellations, attendance): each event changes the facts once.
Reports read aggregated counts for one period and hand them to the pure table functions in
reporting/domain; suppression happens there too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import case, func, select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from lob_common.contracts import Event
from lob_common.db import DatabaseHandle, UnitOfWork, idempotent, idempotent_batch
from lob_common.http import (
    Problem,
    bearer_token,
    forbidden,
    invalid,
    not_found,
    same_secret,
    unauthorized,
)
from lob_common.timeutil import local_date
from reporting.adapters import repository
from reporting.adapters.tables import Participation
from reporting.domain.attendance import no_shows
from reporting.domain.comparison import year_over_year
from reporting.domain.facts import Status
from reporting.domain.legacy import tabel_3a, tabel_3b
from reporting.domain.periods import (
    Period,
    PeriodError,
    SchoolYear,
    legacy_period,
    programme_period,
)
from reporting.domain.programme import (
    BREAKDOWNS,
    DEFAULT_AGE_BANDS,
    YOUNG_PEOPLE,
    AgeBands,
    programme_12_27,
)
from reporting.domain.suppression import DEFAULT_THRESHOLD
from reporting.domain.table import PublishedTable, Table

log = logging.getLogger(__name__)

# --- events ----------------------------------------------------------------------------------


@idempotent
def record_school(uow: UnitOfWork, event: Event) -> None:
    repository.save_school(uow.session, event.payload, event.occurred_at)


@idempotent
def record_activity(uow: UnitOfWork, event: Event) -> None:
    repository.save_activity(uow.session, event.payload, event.occurred_at)


@idempotent
def record_activity_cancelled(uow: UnitOfWork, event: Event) -> None:
    repository.cancel_activity(uow.session, event.payload["activity_id"], event.occurred_at)


def _latest_per_registration(uow: UnitOfWork, events: list[Event]) -> list[Event]:
    """One event per registration (the latest), leaving out those of erased persons: their
    facts have no link any more, and a late event must not make a new one."""
    erased = repository.erased_among(uow.session, (e.payload["person_id"] for e in events))
    latest: dict[str, Event] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        if event.payload["person_id"] not in erased:
            latest[event.payload["registration_id"]] = event
    return list(latest.values())


def _fact_row(
    p: dict[str, Any],
    days: dict[str, Any],
    registration_id: str | None,
    person_id: str | None,
    attended: bool | None,
) -> dict[str, Any]:
    """One participation fact as it is stored: the sign-up's anonymous figures, its link (None
    once erased, or for an imported record's person) and whether it was attended."""
    return {
        "registration_id": registration_id,
        "person_id": person_id,
        "activity_id": p["activity_id"],
        "activity_kind": p["activity_kind"],
        "activity_date": days.get(p["activity_id"]) or local_date(p["activity_starts_at"]),
        "school_id": p["school_id"],
        "role": p["role"],
        "age_band": p["age_band"],
        "phase": p["phase"],
        "municipality": p["municipality"],
        "status": Status.SIGNED_UP,
        "attended": attended,
    }


@idempotent_batch
def record_sign_ups(uow: UnitOfWork, events: list[Event]) -> None:
    payloads = [e.payload for e in events]
    days = repository.activity_dates(uow.session, (p["activity_id"] for p in payloads))
    erased = repository.erased_among(uow.session, (p["person_id"] for p in payloads))
    rows = {}
    for p in payloads:
        # A sign-up of someone erased meanwhile (the events crossed) is kept without link.
        linked = p["person_id"] not in erased
        rows[p["registration_id"] if linked else id(p)] = _fact_row(
            p,
            days,
            registration_id=p["registration_id"] if linked else None,
            person_id=p["person_id"] if linked else None,
            attended=None,
        )
    repository.add_sign_ups(uow.session, list(rows.values()))


@idempotent_batch
def record_cancellations(uow: UnitOfWork, events: list[Event]) -> None:
    rows = [
        {
            "registration_id": e.payload["registration_id"],
            "person_id": e.payload["person_id"],
            "activity_id": e.payload["activity_id"],
            "status": Status.CANCELLED,
        }
        for e in _latest_per_registration(uow, events)
    ]
    repository.set_on_facts(uow.session, "status", rows)


@idempotent_batch
def record_attendances(uow: UnitOfWork, events: list[Event]) -> None:
    rows = [
        {
            "registration_id": e.payload["registration_id"],
            "person_id": e.payload["person_id"],
            "activity_id": e.payload["activity_id"],
            "attended": e.payload["attended"],
        }
        for e in _latest_per_registration(uow, events)
    ]
    repository.set_on_facts(uow.session, "attended", rows)


@idempotent_batch
def record_imported_participation(uow: UnitOfWork, events: list[Event]) -> None:
    """A historical activity's participants, as an operator loaded them: anonymous facts keyed
    by the record's id (a correction sent later replaces the fact)."""
    latest: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e.occurred_at):
        latest[event.payload["record_id"]] = event.payload
    payloads = list(latest.values())
    days = repository.activity_dates(uow.session, (p["activity_id"] for p in payloads))
    rows = [
        _fact_row(p, days, registration_id=p["record_id"], person_id=None, attended=p["attended"])
        for p in payloads
    ]
    repository.add_sign_ups(uow.session, rows)
    repository.set_on_facts(
        uow.session,
        "attended",
        [
            {
                "registration_id": r["registration_id"],
                "person_id": None,
                "activity_id": r["activity_id"],
                "attended": r["attended"],
            }
            for r in rows
        ],
    )


@idempotent
def forget_person(uow: UnitOfWork, event: Event) -> None:
    """Erasure: cut the link to the person; the anonymous count remains."""
    repository.forget_person(uow.session, event.payload["person_id"], event.occurred_at)


# --- who asks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The operator (every table, exact figures too) or a school (its own figures only)."""

    role: str  # "operator" or "school" (registration's key roles; others get nothing here)
    school_id: str | None = None


class KeyCache:
    """Who a key is, as registration said, kept for a short while: a report does not wait on
    registration each time, and a revoked key stops working within `ttl` seconds here.
    Unknown keys are remembered for a shorter while (a new key works within `ttl_unknown`)."""

    def __init__(self, ttl: float = 30.0, ttl_unknown: float = 5.0) -> None:
        self.ttl, self.ttl_unknown = ttl, ttl_unknown
        self._entries: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def get(self, key_hash: str) -> tuple[bool, dict[str, Any] | None]:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key_hash: str, identity: dict[str, Any] | None) -> None:
        if len(self._entries) > 10_000:  # keys in use are a few hundred; drop what expired
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
        ttl = self.ttl if identity is not None else self.ttl_unknown
        self._entries[key_hash] = (time.monotonic() + ttl, identity)


def registration_unavailable() -> Problem:
    return Problem(
        503,
        "registration-unavailable",
        "Even niet beschikbaar",
        "De API-sleutel kan nu niet worden gecontroleerd. Probeer het over een halve minuut "
        "opnieuw.",
        headers={"Retry-After": "30"},
    )


def authenticate(
    request: Request,
    operator_key: str | None,
    identify: Callable[[str], dict[str, Any] | None] | None = None,
    cache: KeyCache | None = None,
) -> Caller:
    """The operator key (from config) or a key registration knows (identify_key RPC, asked by
    the key's SHA-256 so the key itself never travels)."""
    token = bearer_token(request)
    if same_secret(token, operator_key):
        return Caller("operator")
    if not token or identify is None:
        raise unauthorized()
    key_hash = hashlib.sha256(token.encode()).hexdigest()
    known, identity = cache.get(key_hash) if cache else (False, None)
    if not known:
        try:
            identity = identify(key_hash)
        except Exception as exc:  # noqa: BLE001 - a timeout or any failure to answer
            log.warning("registration did not identify a key: %s", type(exc).__name__)
            raise registration_unavailable() from None
        if cache:
            cache.put(key_hash, identity)
    if identity is None:
        raise unauthorized()
    return Caller(identity["role"], identity.get("school_id"))


def require_operator(caller: Caller) -> None:
    if caller.role != "operator":
        raise forbidden("Alleen de regionale projectgroep (operator) mag dit.")


def query_arguments(args: MultiDict) -> dict[str, Any]:
    """A query string as the ReportQuery schema reads it (school_year may repeat)."""
    data: dict[str, Any] = dict(args.items())
    if "school_year" in args:
        data["school_year"] = args.getlist("school_year")
    return data


def report_for(
    db: DatabaseHandle, caller: Caller, table: str, query: dict[str, Any], config: dict[str, Any]
) -> PublishedTable:
    """A table for an HTTP caller: a school sees its own figures, the operator anything."""
    if table not in TABLES:
        raise not_found(f"Tabel {table!r} (kies uit {', '.join(TABLES)})")
    school_id = query["school_id"]
    if caller.role == "school":
        if school_id not in (None, caller.school_id):
            raise forbidden("Een school ziet alleen de cijfers van de eigen school.")
        if query["exact"]:
            raise forbidden("Exacte aantallen zijn alleen voor de regionale projectgroep.")
        school_id = caller.school_id
    elif caller.role != "operator":
        raise forbidden("Deze API-sleutel geeft geen toegang tot de rapportage.")
    try:
        request = ReportRequest.parse(
            table,
            query["school_year"],
            query["calendar_year"],
            query["table"],
            query["age_bands"] or config.get("REPORT_AGE_BANDS"),
            school_id,
            None if query["exact"] else int(config.get("REPORT_SUPPRESSION_THRESHOLD", 5)),
        )
        return report(db, request)
    except PeriodError as exc:
        raise invalid([{"field": exc.field, "message": exc.message}], exc.message) from None


# --- reports ---------------------------------------------------------------------------------

TABLES = ("tabel-3a", "tabel-3b", "programme-12-27", "no-shows", "year-over-year")


@dataclass(frozen=True)
class ReportRequest:
    """What someone asks for; parsed and checked (PeriodError says what to fix, in Dutch)."""

    table: str
    school_years: tuple[SchoolYear, ...] = ()
    calendar_year: int | None = None
    base: str = "tabel-3a"  # year over year: which table
    age_bands: AgeBands = DEFAULT_AGE_BANDS
    school_id: str | None = None  # only this school's figures
    threshold: int | None = DEFAULT_THRESHOLD  # None: exact figures

    @classmethod
    def parse(
        cls,
        table: str,
        school_years: Iterable[str] = (),
        calendar_year: int | None = None,
        base: str | None = None,
        age_bands: str | None = None,
        school_id: str | None = None,
        threshold: int | None = DEFAULT_THRESHOLD,
    ) -> ReportRequest:
        if table not in TABLES:
            raise PeriodError("table", f"Onbekende tabel {table!r}; kies uit {', '.join(TABLES)}.")
        years = tuple(
            SchoolYear.parse(part) for text in school_years for part in text.split(",") if part
        )
        if table != "year-over-year" and len(years) > 1:
            raise PeriodError("school_year", "Geef één schooljaar (meer: year-over-year).")
        if table in ("tabel-3a", "tabel-3b", "year-over-year") and not years:
            raise PeriodError("school_year", "Geef het schooljaar, bijv. 2024-2025.")
        if table in ("tabel-3a", "tabel-3b", "year-over-year") and calendar_year is not None:
            raise PeriodError(
                "calendar_year", f"{table} gaat per schooljaar, niet per kalenderjaar."
            )
        if table in ("programme-12-27", "no-shows") and (not years) == (calendar_year is None):
            raise PeriodError(
                "school_year",
                "Geef een schooljaar (bijv. 2025-2026) of een kalenderjaar (bijv. 2026).",
            )
        if threshold is not None and not 1 <= threshold <= 100:
            raise PeriodError("threshold", "De drempel ligt tussen 1 en 100.")
        return cls(
            table=table,
            school_years=years,
            calendar_year=calendar_year,
            base=base or "tabel-3a",
            age_bands=AgeBands.parse(age_bands) if age_bands else DEFAULT_AGE_BANDS,
            school_id=school_id or None,
            threshold=threshold,
        )

    def period(self) -> Period:
        year = self.school_years[0] if self.school_years else None
        if self.table == "programme-12-27":
            return programme_period(year, self.calendar_year)
        if self.table == "no-shows":
            if year is not None:
                return Period(year.starts, year.ends, f"schooljaar {year.spoken}", school_year=year)
            assert self.calendar_year is not None
            return Period(
                date(self.calendar_year, 1, 1),
                date(self.calendar_year, 12, 31),
                f"kalenderjaar {self.calendar_year}",
                calendar_year=self.calendar_year,
            )
        return legacy_period(year or self.school_years[0])


def build_table(db: DatabaseHandle, request: ReportRequest) -> Table:
    """The exact table (for operators and exports, which publish it next)."""
    with db() as uow:
        session = uow.session
        schools = repository.schools(session)
        activities = repository.activities(session)

        def counts(period: Period, roles: tuple[str, ...] | None, *dimensions: str) -> list:
            return repository.fact_counts(
                session, period.starts, period.ends, roles, dimensions, request.school_id
            )

        if request.table in ("tabel-3a", "tabel-3b"):
            period = request.period()
            role = "pupil" if request.table == "tabel-3a" else "professional"
            build = tabel_3a if request.table == "tabel-3a" else tabel_3b
            table = build(
                request.school_years[0], schools, activities, counts(period, (role,), "school_id")
            )
        elif request.table == "programme-12-27":
            period = request.period()
            found = {d: counts(period, YOUNG_PEOPLE, d) for d in BREAKDOWNS}
            return programme_12_27(period, activities, found, request.age_bands)
        elif request.table == "no-shows":
            period = request.period()
            table = no_shows(period, schools, activities, counts(period, None, "school_id"))
        else:
            years = sorted(request.school_years, key=lambda y: y.first)
            whole = Period(years[0].starts, years[-1].ends, "")
            role = "pupil" if request.base == "tabel-3a" else "professional"
            found = counts(whole, (role,), "school_id")
            table = year_over_year(request.base, years, schools, activities, found)
    if request.school_id is not None:
        table = table.restricted_to({request.school_id})
    return table


def report(db: DatabaseHandle, request: ReportRequest) -> PublishedTable:
    return build_table(db, request).publish(request.threshold)


def participation(db: DatabaseHandle, activity_id: str | None = None) -> dict[str, Any]:
    """Per activity: participants (current sign-ups), cancelled, attended."""
    signed_up = case((Participation.status == Status.SIGNED_UP, 1), else_=0)
    cancelled = case((Participation.status == Status.CANCELLED, 1), else_=0)
    attended = case((Participation.attended.is_(True), 1), else_=0)
    query = (
        select(
            Participation.activity_id,
            Participation.activity_kind,
            Participation.activity_date,
            func.sum(signed_up),
            func.sum(cancelled),
            func.sum(attended),
        )
        .where(Participation.activity_date.is_not(None))
        .group_by(
            Participation.activity_id, Participation.activity_kind, Participation.activity_date
        )
        .order_by(Participation.activity_date, Participation.activity_id)
    )
    if activity_id:
        query = query.where(Participation.activity_id == activity_id)
    with db() as uow:
        rows = uow.session.execute(query).all()
    activities = [
        {
            "activity_id": a,
            "kind": k,
            "date": d.isoformat(),
            "participants": int(s or 0),
            "cancelled": int(c or 0),
            "attended": int(t or 0),
        }
        for a, k, d, s, c, t in rows
    ]
    return {
        "activities": activities,
        "total_participants": sum(a["participants"] for a in activities),
    }


# --- rebuild ---------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Registration's current state, anonymous: schools, activities, participation rows
    (registration.handlers.export_participation).

    A participation row has the fields of a fact (repository.FACT_FIELDS). Live registrations
    carry their registration and person id, so later events still apply; the anonymous records
    registration keeps after an erasure carry none. Until registration keeps those records
    (`includes_anonymous` False) the rebuild keeps reporting's own anonymous facts, so an
    erasure before a rebuild still changes no table.
    """

    schools: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    facts: Iterable[dict[str, Any]] = ()
    includes_anonymous: bool = True


def rebuild(db: DatabaseHandle, read_snapshot: Callable[[], Snapshot]) -> dict[str, int]:
    """Replace every fact with registration's current state, in one transaction.

    The facts are locked first and the snapshot read after, so an event handled before the
    lock is in the snapshot, and one that waits for the lock is applied on top of it.
    """
    at = datetime.now(UTC)
    with db() as uow:
        repository.lock_facts(uow.session)
        snapshot = read_snapshot()
        for school in snapshot.schools:
            repository.save_school(uow.session, school, at)
        for activity in snapshot.activities:
            repository.save_activity(uow.session, activity, at)
            if activity.get("cancelled"):
                repository.cancel_activity(uow.session, activity["activity_id"], at)
        facts = repository.replace_facts(
            uow.session, snapshot.facts, keep_anonymous=not snapshot.includes_anonymous
        )
        uow.commit()
    return {
        "schools": len(snapshot.schools),
        "activities": len(snapshot.activities),
        "facts": facts,
    }
