"""The intake of sign-ups and programme events in batches (lob_common.batch) on SQLite and
PostgreSQL: one message per new event, however often it arrives (the broker path is in
test_delivery.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from lob_common.contracts import new_event
from lob_testing import migrated_database, sample
from notifications import handlers
from notifications.adapters.tables import Base, CalendarEntry, Message, SignUp
from notifications.service import MIGRATIONS

pytestmark = pytest.mark.integration


@pytest.fixture
def db(database_url):
    with migrated_database(database_url, MIGRATIONS, Base.metadata) as handle:
        yield handle


def signed_up(registration_id, person_id, activity_id="a1"):
    payload = sample(
        "signed_up", registration_id=registration_id, person_id=person_id, activity_id=activity_id
    )
    return replace(new_event("signed_up", payload), handler="notifications.handle_signed_up")


def test_a_batch_with_a_duplicate_and_an_old_event_queues_one_mail_per_new_sign_up(db):
    earlier = signed_up("r0", "p0")
    [first] = handlers.queue_sign_up_confirmations(db, [earlier])
    new_one, new_two = signed_up("r1", "p1"), signed_up("r2", "p2", activity_id="a2")

    ids = handlers.queue_sign_up_confirmations(db, [new_one, earlier, new_one, new_two])

    with db() as uow:
        messages = uow.session.scalars(select(Message)).all()
        sign_ups = uow.session.scalars(select(SignUp)).all()
        entries = uow.session.scalars(select(CalendarEntry)).all()
    assert sorted((m.template, m.registration_id) for m in messages) == [
        ("sign_up_confirmation", "r0"),
        ("sign_up_confirmation", "r1"),
        ("sign_up_confirmation", "r2"),
    ]
    assert sorted(ids) == sorted(m.id for m in messages if m.id != first)
    assert {m.status for m in messages} == {"pending"}
    assert sorted((s.registration_id, s.status) for s in sign_ups) == [
        ("r0", "active"),
        ("r1", "active"),
        ("r2", "active"),
    ]
    # Each invitation is the first of its person and activity.
    assert sorted((e.person_id, e.activity_id, e.sequence) for e in entries) == [
        ("p0", "a1", 0),
        ("p1", "a1", 0),
        ("p2", "a2", 0),
    ]
    assert {m.data["sequence"] for m in messages} == {0}


def test_a_redelivered_batch_queues_nothing(db):
    events = [signed_up("r1", "p1"), signed_up("r2", "p2")]
    assert len(handlers.queue_sign_up_confirmations(db, events)) == 2

    assert handlers.queue_sign_up_confirmations(db, events) == []
    with db() as uow:
        assert len(uow.session.scalars(select(Message)).all()) == 2


def test_a_later_invitation_for_the_same_person_and_activity_gets_a_higher_sequence(db):
    handlers.queue_sign_up_confirmations(db, [signed_up("r1", "p1")])
    handlers.queue_sign_up_confirmations(db, [signed_up("r2", "p1"), signed_up("r3", "p1")])

    with db() as uow:
        sequences = uow.session.scalars(select(Message.data)).all()
    assert sorted(d["sequence"] for d in sequences) == [0, 1, 2]


def programme_event(event_type, registration_id, **fields):
    payload = sample(event_type, registration_id=registration_id, **fields)
    return replace(new_event(event_type, payload), handler=f"notifications.handle_{event_type}")


def test_programme_events_in_one_batch_are_each_told_once_and_in_order(db):
    assigned = [programme_event("programme_assigned", f"r{n}", person_id=f"p{n}") for n in range(3)]
    first_change = programme_event("programme_changed", "r1", person_id="p1", plan_version=2)
    second_change = programme_event(
        "programme_changed",
        "r1",
        person_id="p1",
        plan_version=3,
        workshop={"workshop_id": "w2"},
    )

    assert len(handlers.queue_programme_messages(db, assigned, "programme_assigned")) == 3
    changes = [first_change, second_change, first_change]
    assert len(handlers.queue_programme_messages(db, changes, "programme_changed")) == 2
    assert handlers.queue_programme_messages(db, assigned, "programme_assigned") == []

    with db() as uow:
        messages = uow.session.scalars(select(Message).order_by(Message.created_at)).all()
    assert [(m.template, m.registration_id) for m in messages] == [
        ("programme_assigned", "r0"),
        ("programme_assigned", "r1"),
        ("programme_assigned", "r2"),
        ("programme_changed", "r1"),
        ("programme_changed", "r1"),
    ]
    # The second change says what changed since the first one, not since the assignment.
    told_first, told_second = (m.data for m in messages[3:])
    assert told_first["previous"]["workshop"] is None
    assert told_second["previous"]["workshop"]["workshop_id"] == "w1"
    # One invitation after another for r1's person: every one with a higher SEQUENCE.
    assert [m.data["sequence"] for m in messages if m.registration_id == "r1"] == [0, 1, 2]
