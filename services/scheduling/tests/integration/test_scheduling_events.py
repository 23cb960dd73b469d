"""Scheduling keeps its own copy of the catalogue and the sign-ups, from registration's events."""

import pytest
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import poll, publish_event, sample, service_test_config
from scheduling.adapters.tables import ActivityCopy, Base, SignUp
from scheduling.service import SchedulingService

pytestmark = pytest.mark.integration


@pytest.fixture
def scheduling(broker, database_url, container_factory):
    container = container_factory(
        SchedulingService, service_test_config("scheduling", broker, database_url)
    )
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    yield db
    db.engine.dispose()


def _rows(db, model):
    with db() as uow:
        return uow.session.scalars(select(model)).all()


def test_activities_and_sign_ups_with_preferences_are_kept(scheduling, broker):
    publish_event(broker, "activity_published", sample("activity_published", activity_id="a1"))
    publish_event(broker, "signed_up", sample("signed_up", activity_id="a1"))

    [activity] = poll(lambda: _rows(scheduling, ActivityCopy), what="the activity copy")
    [signup] = poll(lambda: _rows(scheduling, SignUp), what="the sign-up")
    assert activity.spec["sessions"][0]["session_id"] == "S01"
    assert activity.spec["workshops"][0]["capacity"] == 16
    assert signup.preferences["choices"] == ["S01", "S02", "S03"]
    assert signup.preferences["backup"] == "S04"
    assert signup.status == "active"


def test_cancellation_and_erasure(scheduling, broker):
    publish_event(broker, "signed_up", sample("signed_up", registration_id="r1", person_id="p1"))
    publish_event(broker, "signed_up", sample("signed_up", registration_id="r2", person_id="p2"))
    poll(lambda: len(_rows(scheduling, SignUp)) == 2, what="two sign-ups")

    publish_event(
        broker,
        "sign_up_cancelled",
        sample("sign_up_cancelled", registration_id="r1", person_id="p1"),
    )
    publish_event(broker, "person_erased", sample("person_erased", person_id="p2"))

    poll(
        lambda: (
            [(s.registration_id, s.status) for s in _rows(scheduling, SignUp)]
            == [("r1", "cancelled")]
        ),
        what="r1 cancelled and p2 erased",
    )


def test_a_historical_activity_is_not_kept_so_never_planned(scheduling, broker):
    """A past season loaded for its figures (activity_published 1.3, historical): handled (its
    event is claimed) but not kept, so there is nothing to plan; a current one is kept."""
    past = sample("activity_published", activity_id="past", historical=True)
    publish_event(broker, "activity_published", past)
    publish_event(broker, "activity_published", sample("activity_published", activity_id="now"))

    processed = scheduling.metadata.tables["processed_events"]

    def handled():
        with scheduling() as uow:
            return len(uow.session.execute(select(processed)).all()) == 2

    poll(handled, what="both announcements handled")
    assert [a.id for a in _rows(scheduling, ActivityCopy)] == ["now"]


def test_a_rush_of_sign_ups_is_kept_once_each_even_when_every_event_comes_twice(scheduling, broker):
    """Sign-ups are kept in batches; a redelivered event (the same event id) changes nothing,
    whether its first delivery was in the same batch or an earlier one."""
    publish_event(broker, "activity_published", sample("activity_published", activity_id="a1"))
    events = []
    for n in range(40):
        payload = sample("signed_up", activity_id="a1", registration_id=f"r{n}", person_id=f"p{n}")
        events.append(publish_event(broker, "signed_up", payload))
    for event in events:
        publish_event(broker, "signed_up", event.payload, event=event)
    # A sign-up already kept, signed up again under a new event (a late copy): still one row.
    publish_event(
        broker,
        "signed_up",
        sample("signed_up", activity_id="a1", registration_id="r0", person_id="p0"),
    )

    processed = scheduling.metadata.tables["processed_events"]

    def claims():
        with scheduling() as uow:
            return uow.session.execute(
                select(processed).where(processed.c.handler == "scheduling.handle_signed_up")
            ).all()

    poll(lambda: len(claims()) == 41, what="every sign-up event handled")
    kept = _rows(scheduling, SignUp)
    assert sorted(s.registration_id for s in kept) == sorted(f"r{n}" for n in range(40))
    assert {s.status for s in kept} == {"active"}
    assert {s.activity_id for s in kept} == {"a1"}
