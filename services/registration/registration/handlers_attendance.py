"""Use cases of attendance on the day: one person at a time, or a ticked room list.

Recording what is already recorded changes nothing; a correction (present -> absent) is a new
fact. Each change emits `attendance_recorded` exactly once (scheduling's no-show overbooking
and reporting's attended counts consume it). A file is all or nothing: any row to fix, and
nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lob_common.db import DatabaseHandle, UnitOfWork, utcnow
from registration.adapters.participants import ParticipantStore
from registration.adapters.repository import Repository
from registration.adapters.roster_files import read_table
from registration.adapters.tables import Registration
from registration.domain import model
from registration.domain.attendance import AttendanceFileRefused, is_change, read_attendance
from registration.domain.caller import Caller, CallerRole
from registration.domain.errors import (
    AttendanceRowsRefused,
    InvalidInput,
    NotAllowed,
    UnknownActivity,
    UnknownRegistration,
)
from registration.domain.roster import RosterError, RowProblem
from registration.domain.rules import RuleViolation

HOST_ONLY = "Een mbo-instelling registreert alleen de aanwezigheid bij eigen activiteiten."


@dataclass(frozen=True)
class Recorded:
    registration_id: str
    present: bool
    changed: bool


def _may_record(caller: Caller, host_school_id: str | None) -> None:
    if caller.role is CallerRole.HOST and (
        caller.school_id is None or caller.school_id != host_school_id
    ):
        raise NotAllowed(HOST_ONLY)


def _record(uow: UnitOfWork, registration: Registration, present: bool, now: datetime) -> bool:
    """Set one registration's attendance; emit only when it changes."""
    if not is_change(registration.attended, present):
        return False
    registration.attended = present
    registration.attendance_recorded_at = now
    uow.emit(
        "attendance_recorded",
        {
            "registration_id": registration.id,
            "activity_id": registration.activity_id,
            "person_id": registration.person_id,
            "attended": present,
            "recorded_at": now.isoformat(),
        },
    )
    return True


def _not_attendable(registration: Registration) -> str | None:
    if registration.status == model.RegistrationStatus.SIGNED_UP:
        return None
    if registration.status == model.RegistrationStatus.CANCELLED:
        return "Deze aanmelding is afgemeld; aanwezigheid is niet te registreren."
    return "Deze aanmelding is (nog) niet definitief; aanwezigheid is niet te registreren."


def record_one(
    db: DatabaseHandle, registration_id: str, present: bool, caller: Caller
) -> dict[str, Any]:
    now = utcnow()
    with db() as uow:
        found = Repository(uow.session).registration_with_host(registration_id)
        if found is None or not (caller.is_operator or caller.role is CallerRole.HOST):
            raise UnknownRegistration(registration_id)
        registration, host = found
        if caller.role is CallerRole.HOST and host != caller.school_id:
            raise UnknownRegistration(registration_id)  # not theirs: as if there were none
        problem = _not_attendable(registration)
        if problem:
            raise InvalidInput([RuleViolation("present", problem)])
        changed = _record(uow, registration, present, now)
        if changed:
            uow.commit()
        return _view(registration, changed)


def _view(registration: Registration, changed: bool) -> dict[str, Any]:
    return {
        "registration_id": registration.id,
        "activity_id": registration.activity_id,
        "present": bool(registration.attended),
        "changed": changed,
        "recorded_at": registration.attendance_recorded_at,
    }


def record_file(
    db: DatabaseHandle, activity_id: str, content: bytes, caller: Caller
) -> dict[str, Any]:
    """A ticked room list (CSV/XLSX) for one activity: everyone on it, or nothing."""
    now = utcnow()
    with db() as uow:
        activity = ParticipantStore(uow.session).activity(activity_id)
        if activity is None or activity.published_at is None:
            raise UnknownActivity(activity_id)
        _may_record(caller, activity.host_school_id)
    try:
        marks = read_attendance(read_table(content).rows)
    except (RosterError, AttendanceFileRefused) as refused:
        raise InvalidInput([RuleViolation("file", str(refused))]) from None
    problems = list(marks.problems)
    with db() as uow:
        store = ParticipantStore(uow.session)
        found = store.registrations_by_id(m.registration_id for m in marks.marks)
        titles = {a.id: a.title for a in Repository(uow.session).published_activities()}
        for mark in marks.marks:
            registration = found.get(mark.registration_id)
            line = mark.rows[0]
            if registration is None:
                problems.append(
                    RowProblem(
                        line,
                        "registration_id",
                        f"Onbekend aanmeldingsnummer: {mark.registration_id[:64]}.",
                    )
                )
            elif registration.activity_id != activity_id:
                other = titles.get(registration.activity_id, registration.activity_id)
                problems.append(
                    RowProblem(
                        line,
                        "registration_id",
                        f"Deze aanmelding hoort bij een andere activiteit ({other}); "
                        "gebruik de zaallijst van deze activiteit.",
                    )
                )
            elif message := _not_attendable(registration):
                problems.append(RowProblem(line, "registration_id", message))
        if problems:
            raise AttendanceRowsRefused(sorted(problems, key=lambda p: (p.row, p.field)))
        changed = sum(_record(uow, found[m.registration_id], m.present, now) for m in marks.marks)
        uow.commit()
    return {
        "activity_id": activity_id,
        "rows": sum(len(m.rows) for m in marks.marks),
        "registrations": len(marks.marks),
        "present": sum(1 for m in marks.marks if m.present),
        "absent": sum(1 for m in marks.marks if not m.present),
        "changed": changed,
    }
