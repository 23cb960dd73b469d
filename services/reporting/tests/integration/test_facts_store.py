"""The facts store on SQLite and PostgreSQL: events in, tables out, through reporting's use
cases (the broker path is tested in test_reporting.py). Erasure and rebuild leave the tables as
they were; events that arrive late or twice change nothing they should not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lob_common.contracts import new_event
from lob_testing import migrated_database, sample
from reporting import handlers
from reporting.adapters import repository
from reporting.adapters.tables import Base, Participation, ParticipationCount
from reporting.service import MIGRATIONS

pytestmark = pytest.mark.integration

HANDLERS = {
    "school_registered": handlers.record_school,
    "activity_published": handlers.record_activity,
    "activity_cancelled": handlers.record_activity_cancelled,
    "signed_up": lambda db, event: handlers.record_sign_ups(db, [event]),
    "sign_up_cancelled": lambda db, event: handlers.record_cancellations(db, [event]),
    "attendance_recorded": lambda db, event: handlers.record_attendances(db, [event]),
    "person_erased": handlers.forget_person,
    "participation_imported": lambda db, event: handlers.record_imported_participation(db, [event]),
}
T0 = datetime(2024, 9, 1, tzinfo=UTC)


@pytest.fixture
def db(database_url):
    with migrated_database(database_url, MIGRATIONS, Base.metadata) as handle:
        yield handle


class Season:
    """Sends events to reporting's use cases as the consumer would, each with its own id."""

    def __init__(self, db):
        self.db = db
        self.clock = T0

    def send(self, event_type, at=None, **payload):
        event = new_event(event_type, payload)
        self.clock += timedelta(seconds=1)
        event = replace(
            event, handler=f"reporting.handle_{event_type}", occurred_at=at or self.clock
        )
        HANDLERS[event_type](self.db, event)
        return event

    def school(self, school_id, name, kind="vmbo", **kw):
        return self.send("school_registered", school_id=school_id, name=name, kind=kind, **kw)

    def activity(self, activity_id, kind, starts_at, **kw):
        payload = {
            **sample("activity_published"),
            "activity_id": activity_id,
            "kind": kind,
            "title": kw.pop("title", activity_id),
            "starts_at": starts_at,
            "ends_at": starts_at,
            **kw,
        }
        return self.send("activity_published", **payload)

    def sign_up(self, n, activity_id, starts_at, role="pupil", school="farel", **kw):
        payload = sample(
            "signed_up",
            registration_id=f"r{n}",
            person_id=f"p{n}",
            activity_id=activity_id,
            activity_starts_at=starts_at,
            role=role,
            school_id=school,
            **kw,
        )
        return self.send("signed_up", **payload)

    def table(self, name, **kw):
        request = handlers.ReportRequest.parse(name, **kw)
        return handlers.build_table(self.db, request)

    def facts(self):
        with self.db() as uow:
            return uow.session.scalars(select(Participation)).all()

    def counts_agree_with_facts(self):
        """The counts the tables read equal a count of the facts made afresh."""
        table = ParticipationCount.__table__
        with self.db() as uow:
            kept = sorted(uow.session.execute(select(table)).all())
            repository.recount(uow.session)
            fresh = sorted(uow.session.execute(select(table)).all())
            uow.session.rollback()
        assert kept == fresh
        return True


INFODAY = "2024-11-14T08:45:00+01:00"
BUS = "2024-10-17T08:30:00+02:00"


@pytest.fixture
def season(db):
    s = Season(db)
    s.school("farel", "Farel College", municipality="Amersfoort")
    s.school("atrium", "'t Atrium", municipality="Amersfoort")
    s.school("mboa", "MBO Amersfoort", kind="mbo")
    s.activity("vld", "infoday", INFODAY, title="Voorlichtingsdag", audience=["pupils"])
    s.activity("bus", "bus_tour", BUS, title="LOB-bustour", audience=["professionals"])
    for n in range(7):
        s.sign_up(n, "vld", INFODAY, school="farel" if n < 5 else "atrium")
    for n in range(10, 16):
        s.sign_up(n, "bus", BUS, role="professional", school="farel" if n < 13 else "mboa")
        s.send(
            "attendance_recorded",
            registration_id=f"r{n}",
            activity_id="bus",
            person_id=f"p{n}",
            attended=n != 15,
            recorded_at=BUS,
        )
    return s


def cells(table):
    return {r.key: (r.cells, r.total) for r in table.sections[0].rows}


def test_events_make_tabel_3a_and_3b(season):
    tabel_3a = season.table("tabel-3a", school_years=["2024-2025"])
    tabel_3b = season.table("tabel-3b", school_years=["2024-2025"])

    assert cells(tabel_3a) == {"atrium": ((2,), 2), "farel": ((5,), 5)}
    assert cells(tabel_3b) == {
        "atrium": ((0,), 0),
        "farel": ((3,), 3),
        "mboa": ((2,), 2),
        None: ((0,), 0),
    }


def test_an_erasure_leaves_every_table_as_it_was_and_the_facts_without_link(season):
    before = [season.table(t, school_years=["2024-2025"]) for t in ("tabel-3a", "tabel-3b")]
    before.append(season.table("no-shows", school_years=["2024-2025"]))

    season.send("person_erased", person_id="p1", erased_at=INFODAY)
    season.send("person_erased", person_id="p12", erased_at=INFODAY)

    after = [season.table(t, school_years=["2024-2025"]) for t in ("tabel-3a", "tabel-3b")]
    after.append(season.table("no-shows", school_years=["2024-2025"]))
    assert after == before
    linked = {f.person_id for f in season.facts()}
    assert not {"p1", "p12"} & linked
    assert len(season.facts()) == 13
    assert season.counts_agree_with_facts()


def test_a_sign_up_that_arrives_after_its_persons_erasure_is_counted_without_link(season):
    season.send("person_erased", person_id="p99", erased_at=INFODAY)

    season.sign_up(99, "vld", INFODAY)

    assert cells(season.table("tabel-3a", school_years=["2024-2025"]))["farel"] == ((6,), 6)
    assert all(f.person_id != "p99" and f.registration_id != "r99" for f in season.facts())


def test_a_moved_activity_takes_its_sign_ups_to_its_new_school_year(season):
    season.activity("vld", "infoday", "2025-09-10T09:00:00+02:00", title="Voorlichtingsdag")

    assert cells(season.table("tabel-3a", school_years=["2024-2025"]))["farel"] == ((), 0)
    assert season.table("tabel-3a", school_years=["2025-2026"]).grand_total == 7
    assert season.counts_agree_with_facts()


def test_an_older_announcement_arriving_late_changes_nothing(season):
    season.activity("vld", "infoday", "2025-09-10T09:00:00+02:00", at=T0, title="Voorlichtingsdag")

    assert season.table("tabel-3a", school_years=["2024-2025"]).grand_total == 7


def test_a_cancelled_activity_is_left_out_and_named(season):
    season.send("activity_cancelled", activity_id="vld", cancelled_at=INFODAY)

    table = season.table("tabel-3a", school_years=["2024-2025"])

    assert table.columns == ()
    assert any("Afgelast" in n and "Voorlichtingsdag" in n for n in table.notes)


def test_a_cancelled_sign_up_no_longer_counts(season):
    season.send(
        "sign_up_cancelled",
        registration_id="r0",
        activity_id="vld",
        person_id="p0",
        cancelled_at=INFODAY,
    )

    assert cells(season.table("tabel-3a", school_years=["2024-2025"]))["farel"] == ((4,), 4)


def test_a_cancellation_or_attendance_that_overtakes_its_sign_up_is_kept(season):
    season.send(
        "sign_up_cancelled",
        registration_id="r50",
        activity_id="vld",
        person_id="p50",
        cancelled_at=INFODAY,
    )
    season.send(
        "attendance_recorded",
        registration_id="r60",
        activity_id="bus",
        person_id="p60",
        attended=True,
        recorded_at=BUS,
    )
    assert season.counts_agree_with_facts()

    season.sign_up(50, "vld", INFODAY)
    season.sign_up(60, "bus", BUS, role="professional", school="atrium")

    assert cells(season.table("tabel-3a", school_years=["2024-2025"]))["farel"] == ((5,), 5)
    assert cells(season.table("tabel-3b", school_years=["2024-2025"]))["atrium"] == ((1,), 1)
    assert season.counts_agree_with_facts()


def test_a_school_sees_its_own_row_only(season):
    table = season.table("tabel-3a", school_years=["2024-2025"], school_id="atrium")

    assert cells(table) == {"atrium": ((2,), 2)}
    assert table.grand_total == 2


def test_the_12_27_table_reads_age_band_phase_and_municipality(db):
    s = Season(db)
    s.activity("od", "orientation_day", "2026-02-12T14:00:00+01:00", audience=["pupils"])
    for n in range(6):
        s.sign_up(n, "od", "2026-02-12T14:00:00+01:00", age_band="16-17", phase="vo")
    s.sign_up(
        9,
        "od",
        "2026-02-12T14:00:00+01:00",
        role="young_adult",
        school=None,
        age_band="23-27",
        phase="working",
        municipality="Soest",
    )

    table = s.table("programme-12-27", calendar_year=2026)

    ages = {r.label: r.cells for r in table.sections[0].rows}
    assert ages["16-17"] == (6,) and ages["23-27"] == (1,)
    assert table.grand_total == 7


def test_rebuild_from_registrations_state_gives_the_same_tables(season):
    """The rebuild replaces the facts with what registration exports; here registration's
    state is read back from the facts themselves, as an export would give them."""
    names = ("tabel-3a", "tabel-3b", "no-shows")
    before = [season.table(t, school_years=["2024-2025"]) for t in names]
    with season.db() as uow:
        exported = [
            {c.name: getattr(f, c.name) for c in Participation.__table__.columns if c.name != "id"}
            for f in uow.session.scalars(select(Participation))
        ]
    with season.db() as uow:  # a projection bug to fix: every fact lost its school
        uow.session.execute(Participation.__table__.update().values(school_id=None))
        repository.recount(uow.session)
        uow.commit()
    assert season.table("tabel-3a", school_years=["2024-2025"]) != before[0]

    counts = handlers.rebuild(season.db, lambda: handlers.Snapshot(facts=exported))

    assert counts["facts"] == 13
    assert [season.table(t, school_years=["2024-2025"]) for t in names] == before
    assert season.counts_agree_with_facts()
    # later events still find their facts
    season.send(
        "sign_up_cancelled",
        registration_id="r0",
        activity_id="vld",
        person_id="p0",
        cancelled_at=INFODAY,
    )
    assert cells(season.table("tabel-3a", school_years=["2024-2025"]))["farel"] == ((4,), 4)


def test_loaded_participants_of_a_past_activity_count_and_a_correction_replaces_them(season):
    def imported(record_id, school, attended):
        return season.send(
            "participation_imported",
            **sample(
                "participation_imported",
                record_id=record_id,
                activity_id="bus",
                activity_kind="bus_tour",
                activity_starts_at=BUS,
                school_id=school,
                attended=attended,
            ),
        )

    imported("h1", "atrium", True)
    imported("h2", None, True)
    imported("h3", "atrium", None)  # attendance not known: not in Tabel 3b
    first = cells(season.table("tabel-3b", school_years=["2024-2025"]))
    imported("h1", "atrium", False)  # the operator corrected the record

    assert first["atrium"] == ((1,), 1) and first[None] == ((1,), 1)
    assert cells(season.table("tabel-3b", school_years=["2024-2025"]))["atrium"] == ((0,), 0)
    assert len(season.facts()) == 13 + 3
    assert season.counts_agree_with_facts()
