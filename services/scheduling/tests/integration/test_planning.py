"""Planning in the service: sign-ups arrive as events, a plan is stored, programmes go out."""

from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import poll, publish_event, sample, service_test_config
from scheduling.adapters.tables import Base, SignUp
from scheduling.service import SchedulingService

pytestmark = pytest.mark.integration
DAY = datetime(2027, 11, 20, 8, 0, tzinfo=UTC)
SESSIONS = [
    {
        "session_id": f"S{i}",
        "title": f"Sessie {i}",
        "capacity": 4,
        "rounds": [1, 2, 3] if i != 5 else [2, 3],
        "room": f"Lokaal {i}",
    }
    for i in range(1, 7)
]
ROUNDS = [
    {
        "round": r,
        "starts_at": (DAY + timedelta(hours=r)).isoformat(),
        "ends_at": (DAY + timedelta(hours=r, minutes=45)).isoformat(),
    }
    for r in (1, 2, 3)
]


@pytest.fixture
def scheduling(broker, database_url, container_factory):
    container = container_factory(
        SchedulingService, service_test_config("scheduling", broker, database_url)
    )
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    publish_event(
        broker,
        "activity_published",
        sample(
            "activity_published",
            activity_id="vld",
            kind="infoday",
            title="Voorlichtingsdag",
            starts_at=DAY.isoformat(),
            ends_at=(DAY + timedelta(hours=4)).isoformat(),
            sessions=SESSIONS,
            rounds=ROUNDS,
            workshops=[],
            buses=[],
            stops=[],
        ),
    )
    for n in range(12):
        choices = [f"S{(n + k) % 6 + 1}" for k in range(3)]
        publish_event(
            broker,
            "signed_up",
            sample(
                "signed_up",
                registration_id=f"r{n:02d}",
                person_id=f"p{n:02d}",
                activity_id="vld",
                activity_kind="infoday",
                school_id="farel-college" if n % 2 else "het-element",
                preferences={"choices": choices, "backup": f"S{(n + 3) % 6 + 1}"},
            ),
        )
    poll(lambda: _count(db, SignUp) == 12, what="the sign-ups to arrive")
    yield container, db
    db.engine.dispose()


def _count(db, model):
    with db() as uow:
        return len(uow.session.scalars(select(model)).all())


def _outbox(db, event_type):
    outbox = db.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        return [
            r.body["payload"]
            for r in connection.execute(
                select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
            )
        ]


def test_a_plan_gives_every_pupil_a_programme_and_announces_it(scheduling):
    container, db = scheduling
    with entrypoint_hook(container, "plan_now") as plan_now:
        summary = plan_now("vld")

    assert summary["version"] == 1
    assert summary["assigned"] == 12
    assigned = _outbox(db, "programme_assigned")
    assert sorted(p["registration_id"] for p in assigned) == [f"r{n:02d}" for n in range(12)]
    for programme in assigned:
        sessions = [s["session_id"] for s in programme["sessions"]]
        assert len(set(sessions)) == 3 and None not in sessions
        assert programme["sessions"][0]["starts_at"].startswith("2027-11-20T09:00")
    [published] = _outbox(db, "schedule_published")
    assert published["metrics"]["seated"] == 36
    assert published["metrics"]["wish_utility"] == published["metrics"]["upper_bound"] - 3600


def test_a_school_sees_only_its_own_pupils_and_room_lists_cover_everyone(scheduling):
    container, _ = scheduling
    with entrypoint_hook(container, "plan_now") as plan_now:
        plan_now("vld")
    with entrypoint_hook(container, "programmes") as programmes:
        own = programmes("vld", "farel-college")
        everyone = programmes("vld", None)
    with entrypoint_hook(container, "room_lists") as room_lists:
        rooms = room_lists("vld")

    assert {p["school_id"] for p in own["programmes"]} == {"farel-college"}
    assert len(own["programmes"]) == 6 and len(everyone["programmes"]) == 12
    assert sum(room["count"] for room in rooms) == 36
    assert all(room["count"] <= room["capacity"] for room in rooms)


def test_after_a_cancellation_a_new_plan_changes_few_programmes(scheduling, broker):
    container, db = scheduling
    with entrypoint_hook(container, "plan_now") as plan_now:
        plan_now("vld")
    publish_event(
        broker,
        "sign_up_cancelled",
        sample("sign_up_cancelled", registration_id="r03", person_id="p03", activity_id="vld"),
    )
    poll(lambda: _count(db, SignUp) == 12 and _active(db) == 11, what="the cancellation")

    with entrypoint_hook(container, "plan_now") as plan_now:
        summary = plan_now("vld")

    assert summary["version"] == 2
    assert summary["changed"] <= 3
    assert len(_outbox(db, "programme_changed")) == summary["changed"]
    assert len(_outbox(db, "programme_assigned")) == 12  # nobody is "assigned" twice


def _active(db):
    with db() as uow:
        return len(uow.session.scalars(select(SignUp).filter_by(status="active")).all())


def test_an_activity_that_is_not_known_is_refused_clearly(scheduling):
    container, _ = scheduling
    with (
        entrypoint_hook(container, "plan_now") as plan_now,
        pytest.raises(Exception, match="unknown"),
    ):
        plan_now("bestaat-niet")
