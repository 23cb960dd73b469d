"""Queries of the historical participants (domain/history.py): kept apart from the live
registrations' repository, as the records are apart from persons and registrations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registration.adapters.tables import Activity, HistoricalParticipant

RECORD_FIELDS = ("role", "school_id", "age_band", "phase", "municipality", "attended")


def records_by_key(
    session: Session, activity_id: str, keys: Iterable[str]
) -> dict[str, HistoricalParticipant]:
    wanted = list(set(keys))
    found: dict[str, HistoricalParticipant] = {}
    for start in range(0, len(wanted), 500):  # bound the IN list
        rows = session.scalars(
            select(HistoricalParticipant).where(
                HistoricalParticipant.activity_id == activity_id,
                HistoricalParticipant.import_key.in_(wanted[start : start + 500]),
            )
        )
        found.update({r.import_key: r for r in rows})
    return found


def count(session: Session, activity_id: str) -> int:
    return (
        session.scalar(select(func.count()).where(HistoricalParticipant.activity_id == activity_id))
        or 0
    )


def any_for(session: Session, activity_id: str) -> bool:
    return count(session, activity_id) > 0


def participation(session: Session) -> Iterator[tuple[HistoricalParticipant, Activity]]:
    """Every record with its activity (for reporting's rebuild), streamed."""
    yield from session.execute(
        select(HistoricalParticipant, Activity)
        .join(Activity, Activity.id == HistoricalParticipant.activity_id)
        .order_by(HistoricalParticipant.recorded_at, HistoricalParticipant.id)
        .execution_options(yield_per=5000)
    ).tuples()


def as_fields(record: HistoricalParticipant) -> dict[str, Any]:
    return {name: getattr(record, name) for name in RECORD_FIELDS}
