"""Orientation afternoons, bus tours and events with a capacity in the service: events in,
plans stored, events out.

Everything arrives as registration would send it (on the real broker); what scheduling
decides is read from its outbox, i.e. exactly what notifications will be told.
"""

from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import poll, publish_event, sample, service_test_config
from scheduling.adapters.tables import ActivityCopy, Attendance, Base, SignUp
from scheduling.service import SchedulingService

pytestmark = pytest.mark.integration
# 14:00-16:00 Amsterdam time on a Thursday well ahead: cancellations "now" are before the cut-off.
AFTERNOON = datetime(2027, 12, 9, 13, 0, tzinfo=UTC)
TOUR = datetime(2027, 10, 14, 6, 30, tzinfo=UTC)  # 08:30 Amsterdam (CEST)
SIGN_UPS_OPEN = datetime(2027, 9, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def make_scheduling(broker, container_factory):
    engines = []

    def start(database_url, **config):
        container = container_factory(
            SchedulingService,
            service_test_config("scheduling", broker, database_url, **config),
        )
        container.start()
        db = DatabaseHandle(make_engine(database_url), Base.metadata)
        engines.append(db.engine)
        return container, db

    yield start
    for engine in engines:
        engine.dispose()


def _publish_activity(broker, activity_id, kind, starts_at, hours=2, **spec):
    publish_event(
        broker,
        "activity_published",
        sample(
            "activity_published",
            activity_id=activity_id,
            kind=kind,
            title=spec.pop("title", activity_id),
            starts_at=starts_at.isoformat(),
            ends_at=(starts_at + timedelta(hours=hours)).isoformat(),
            sessions=[],
            rounds=[],
            workshops=spec.pop("workshops", []),
            buses=spec.pop("buses", []),
            stops=spec.pop("stops", []),
            **spec,
        ),
    )


def _sign_up(broker, activity_id, kind, n, school="farel-college", ranking=(), minute=None):
    publish_event(
        broker,
        "signed_up",
        sample(
            "signed_up",
            registration_id=f"{activity_id}-r{n:02d}",
            person_id=f"p{n:02d}",
            activity_id=activity_id,
            activity_kind=kind,
            role="pupil" if kind == "orientation_day" else "professional",
            school_id=school,
            preferences={"ranking": list(ranking)} if ranking else {},
            signed_up_at=(
                SIGN_UPS_OPEN + timedelta(minutes=n if minute is None else minute)
            ).isoformat(),
        ),
    )


def _cancel(broker, activity_id, n, at=None):
    publish_event(
        broker,
        "sign_up_cancelled",
        sample(
            "sign_up_cancelled",
            registration_id=f"{activity_id}-r{n:02d}",
            person_id=f"p{n:02d}",
            activity_id=activity_id,
            cancelled_at=(at or datetime.now(UTC)).isoformat(),
        ),
    )


def _active(db, activity_id):
    with db() as uow:
        return len(
            uow.session.scalars(
                select(SignUp).filter_by(activity_id=activity_id, status="active")
            ).all()
        )


def _events(db, event_type, activity_id=None):
    outbox = db.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        payloads = [
            r.body["payload"]
            for r in connection.execute(
                select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
            )
        ]
    return [p for p in payloads if activity_id is None or p["activity_id"] == activity_id]


def _plan(container, activity_id):
    with entrypoint_hook(container, "plan_now") as plan_now:
        return plan_now(activity_id)


def _versions(db, activity_id):
    return len(_events(db, "schedule_published", activity_id))


# --- orientation afternoons --------------------------------------------------------------------

WORKSHOPS = [
    {"workshop_id": "garage", "title": "Autotechniek", "location": "de Garage", "capacity": 2},
    {"workshop_id": "zorg", "title": "Zorg & Welzijn", "location": "Koppel't", "capacity": 1},
]


@pytest.fixture
def orientation_day(broker, make_scheduling, database_url):
    container, db = make_scheduling(database_url)
    _publish_activity(broker, "od1", "orientation_day", AFTERNOON, workshops=WORKSHOPS)
    # Five pupils want 'garage' first, three seats in all: two wait.
    for n, school in enumerate(["farel-college"] * 3 + ["het-element"] * 2):
        _sign_up(broker, "od1", "orientation_day", n, school, ranking=("garage", "zorg"))
    poll(lambda: _active(db, "od1") == 5, what="the five sign-ups")
    return container, db


def test_workshops_are_allocated_and_who_does_not_fit_hears_their_place_in_line(orientation_day):
    container, db = orientation_day

    summary = _plan(container, "od1")

    assert (summary["assigned"], summary["waitlisted"]) == (3, 2)
    assigned = _events(db, "programme_assigned", "od1")
    assert sorted(a["workshop"]["workshop_id"] for a in assigned) == ["garage", "garage", "zorg"]
    assert {a["workshop"]["title"] for a in assigned} == {"Autotechniek", "Zorg & Welzijn"}
    waiting = _events(db, "waitlisted", "od1")
    assert sorted(w["position"] for w in waiting) == [1, 2]
    assert {(w["item_id"], w["item_title"]) for w in waiting} == {("garage", "Autotechniek")}
    [published] = _events(db, "schedule_published", "od1")
    assert published["metrics"]["by_rank"] == {"1": 2, "2": 1, "3": 0}
    # Sainte-Laguë between the schools: 3 against 2 for two 'garage' seats gives 1 and 1.
    assert published["metrics"]["schools"] == {
        "farel-college": {"requested": 3, "seated": 2},
        "het-element": {"requested": 2, "seated": 1},
    }


def test_a_cancellation_before_the_cutoff_gives_the_seat_to_the_first_in_line(
    orientation_day, broker
):
    container, db = orientation_day
    _plan(container, "od1")
    [first_in_line] = [w for w in _events(db, "waitlisted", "od1") if w["position"] == 1]
    seated = [a["registration_id"] for a in _events(db, "programme_assigned", "od1")]
    garage = next(
        a
        for a in _events(db, "programme_assigned", "od1")
        if a["workshop"]["workshop_id"] == "garage"
    )
    cancelled = int(garage["registration_id"][-2:])

    _cancel(broker, "od1", cancelled)
    poll(lambda: _versions(db, "od1") == 2, what="the plan updated after the cancellation")

    promoted = [a for a in _events(db, "programme_assigned", "od1") if a["from_waitlist"]]
    assert [p["registration_id"] for p in promoted] == [first_in_line["registration_id"]]
    assert promoted[0]["workshop"]["workshop_id"] == "garage"
    assert promoted[0]["plan_version"] == 2
    assert first_in_line["registration_id"] not in seated
    # Nobody else hears anything: no changed programmes, no new waiting-list messages.
    assert _events(db, "programme_changed", "od1") == []
    assert len(_events(db, "waitlisted", "od1")) == 2


def test_after_the_cutoff_a_freed_seat_stays_empty(orientation_day, broker):
    container, db = orientation_day
    _plan(container, "od1")
    garage = next(
        a
        for a in _events(db, "programme_assigned", "od1")
        if a["workshop"]["workshop_id"] == "garage"
    )

    _cancel(broker, "od1", int(garage["registration_id"][-2:]), at=AFTERNOON - timedelta(hours=3))
    poll(lambda: _versions(db, "od1") == 2, what="the plan updated after the cancellation")

    assert [a for a in _events(db, "programme_assigned", "od1") if a["from_waitlist"]] == []
    with entrypoint_hook(container, "programmes") as programmes:
        plan = programmes("od1", None)
    assert sum(p["status"] == "assigned" for p in plan["programmes"]) == 2
    assert sum(p["status"] == "waitlisted" for p in plan["programmes"]) == 2


def test_no_show_history_overbooks_a_workshop_within_the_cap(broker, make_scheduling, tmp_path):
    container, db = make_scheduling(
        f"sqlite:///{tmp_path}/s.db", ORIENTATION_MIN_BOOKINGS=4, ORIENTATION_MAX_OVERBOOKING=0.2
    )
    earlier = [{"workshop_id": "garage", "title": "Autotechniek", "capacity": 10}]
    _publish_activity(
        broker, "od-nov", "orientation_day", AFTERNOON - timedelta(days=70), workshops=earlier
    )
    _publish_activity(broker, "od-dec", "orientation_day", AFTERNOON, workshops=earlier)
    _publish_activity(  # this date's own setting: no overbooking
        broker, "od-off", "orientation_day", AFTERNOON, workshops=earlier, max_overbooking=0.0
    )
    for n in range(8):
        _sign_up(broker, "od-nov", "orientation_day", n, ranking=("garage",))
    for n in range(20, 34):
        _sign_up(broker, "od-dec", "orientation_day", n, ranking=("garage",))
        _sign_up(broker, "od-off", "orientation_day", n, ranking=("garage",))
    poll(
        lambda: [_active(db, a) for a in ("od-nov", "od-dec", "od-off")] == [8, 14, 14],
        what="the sign-ups",
    )
    _plan(container, "od-nov")
    for n in range(8):  # half of November's pupils stayed away
        publish_event(
            broker,
            "attendance_recorded",
            sample(
                "attendance_recorded",
                registration_id=f"od-nov-r{n:02d}",
                activity_id="od-nov",
                person_id=f"p{n:02d}",
                attended=n % 2 == 0,
            ),
        )
    poll(lambda: _count(db, Attendance) == 8, what="the attendance records")

    summary = _plan(container, "od-dec")

    # rate 0.5 would justify 10 extra seats; the cap (20% of 10) allows 2.
    assert summary["assigned"] == 12 and summary["waitlisted"] == 2
    assert summary["metrics"]["overbooked"] == {"garage": 2}
    assert summary["metrics"]["no_show_rates"] == {"garage": 0.5}
    assert _plan(container, "od-off")["assigned"] == 10


def _count(db, model):
    with db() as uow:
        return len(uow.session.scalars(select(model)).all())


# --- bus tours ---------------------------------------------------------------------------------

DEPARTURE = {"stop_id": "amersfoort-cs", "name": "Amersfoort Centraal"}
STOPS = [
    {"stop_id": "ede", "name": "Aeres MBO Ede", "visit_minutes": 75, "opens": "09:30"},
    {"stop_id": "barneveld", "name": "Aeres MBO Barneveld", "visit_minutes": 75, "opens": "13:00"},
]
TRAVEL = {
    "amersfoort-cs": {"ede": 35, "barneveld": 25},
    "ede": {"barneveld": 25},
}


@pytest.fixture
def bus_tour(broker, make_scheduling, database_url):
    container, db = make_scheduling(database_url)
    _publish_activity(
        broker,
        "bus",
        "bus_tour",
        TOUR,
        hours=8,
        buses=[{"bus_id": "touringcar", "seats": 2}],
        departure=DEPARTURE,
        stops=STOPS,
        travel_minutes=TRAVEL,
    )
    for n in range(3):
        _sign_up(broker, "bus", "bus_tour", n)
    poll(lambda: _active(db, "bus") == 3, what="the three sign-ups")
    return container, db


def test_bus_seats_go_first_come_and_everyone_seated_gets_the_timetable(bus_tour):
    container, db = bus_tour

    summary = _plan(container, "bus")

    assigned = {a["registration_id"]: a for a in _events(db, "programme_assigned", "bus")}
    assert {r: a["seat"]["seat"] for r, a in assigned.items()} == {"bus-r00": 1, "bus-r01": 2}
    [waiting] = _events(db, "waitlisted", "bus")
    assert (waiting["registration_id"], waiting["position"]) == ("bus-r02", 1)
    itinerary = assigned["bus-r00"]["itinerary"]
    assert [row["stop_id"] for row in itinerary] == [
        "amersfoort-cs",
        "ede",
        "barneveld",
        "amersfoort-cs",
    ]
    # Leave 08:30, Ede 09:05 (wait until 09:30), leave 10:45, Barneveld 11:10 (wait until 13:00).
    assert itinerary[0]["leave_at"].startswith("2027-10-14T08:30")
    assert itinerary[1]["arrive_at"].startswith("2027-10-14T09:05")
    assert itinerary[1]["visit_starts_at"].startswith("2027-10-14T09:30")
    assert itinerary[2]["visit_starts_at"].startswith("2027-10-14T13:00")
    assert itinerary[3]["arrive_at"].startswith("2027-10-14T14:40")
    assert summary["metrics"]["travel_minutes"] == 85
    with entrypoint_hook(container, "room_lists") as room_lists:
        [seat_list] = room_lists("bus")
    assert seat_list["pupils"] == ["bus-r00", "bus-r01"]


def test_a_cancelled_bus_seat_goes_to_the_first_in_line_and_a_late_sign_up_waits(bus_tour, broker):
    container, db = bus_tour
    _plan(container, "bus")

    _cancel(broker, "bus", 0)
    poll(lambda: _versions(db, "bus") == 2, what="the plan updated after the cancellation")
    _sign_up(broker, "bus", "bus_tour", 3)
    poll(lambda: _versions(db, "bus") == 3, what="the plan updated after the late sign-up")

    [promoted] = [a for a in _events(db, "programme_assigned", "bus") if a["from_waitlist"]]
    assert promoted["registration_id"] == "bus-r02"
    assert promoted["seat"] == {"bus_id": "touringcar", "seat": 1}  # the freed seat
    late = _events(db, "waitlisted", "bus")[-1]
    assert (late["registration_id"], late["position"]) == ("bus-r03", 1)
    assert _events(db, "programme_changed", "bus") == []


def test_a_tour_whose_windows_cannot_be_met_still_gets_seats_and_says_why(
    broker, make_scheduling, tmp_path
):
    container, db = make_scheduling(f"sqlite:///{tmp_path}/s.db")
    late_stop = {**STOPS[1], "opens": "16:00", "closes": "17:00"}
    _publish_activity(
        broker,
        "bus2",
        "bus_tour",
        TOUR,
        hours=8,  # back by 16:30
        buses=[{"bus_id": "touringcar", "seats": 40}],
        departure=DEPARTURE,
        stops=[STOPS[0], late_stop],
        travel_minutes=TRAVEL,
    )
    _sign_up(broker, "bus2", "bus_tour", 1)
    poll(lambda: _active(db, "bus2") == 1, what="the sign-up")

    summary = _plan(container, "bus2")

    assert summary["assigned"] == 1
    assert "barneveld" in summary["metrics"]["itinerary_problem"]
    [assigned] = _events(db, "programme_assigned", "bus2")
    assert assigned["seat"]["seat"] == 1 and assigned["itinerary"] == []


# --- kinds with a capacity and no planner of their own -----------------------------------------


@pytest.fixture
def career_event(broker, make_scheduling, database_url):
    container, db = make_scheduling(database_url)
    _publish_activity(broker, "le", "career_event", AFTERNOON, capacity=5)
    poll(lambda: _count(db, ActivityCopy) == 1, what="the career event")
    return container, db


def test_parallel_sign_ups_take_exactly_the_seats_there_are_and_the_rest_wait_in_line(
    career_event, broker
):
    container, db = career_event
    for n in range(12):  # back to back: the service handles up to ten at a time
        _sign_up(broker, "le", "career_event", n)
    poll(lambda: _versions(db, "le") == 12, what="a plan version per sign-up")

    seated = {p["registration_id"] for p in _events(db, "programme_assigned", "le")}
    waiting = {p["registration_id"]: p["position"] for p in _events(db, "waitlisted", "le")}
    assert len(seated) == 5
    assert sorted(waiting.values()) == list(range(1, 8))
    assert not seated & set(waiting)
    with entrypoint_hook(container, "programmes") as programmes:
        plan = programmes("le")
    statuses = [p["status"] for p in plan["programmes"]]
    assert statuses.count("assigned") == 5 and statuses.count("waitlisted") == 7
    [room] = plan_room_lists(container, "le")
    assert room["count"] == 5 and room["capacity"] == 5


def test_a_cancelled_seat_goes_to_the_first_in_line_with_a_message(career_event, broker):
    container, db = career_event
    for n in range(7):
        _sign_up(broker, "le", "career_event", n)
        poll(lambda n=n: _versions(db, "le") == n + 1, what=f"sign-up {n} to be placed")
    first_in_line = next(
        p["registration_id"] for p in _events(db, "waitlisted", "le") if p["position"] == 1
    )
    seated = _events(db, "programme_assigned", "le")[0]["registration_id"]

    _cancel(broker, "le", int(seated[-2:]))

    poll(lambda: _versions(db, "le") == 8, what="the plan after the cancellation")
    promoted = _events(db, "programme_assigned", "le")[-1]
    assert promoted["registration_id"] == first_in_line and promoted["from_waitlist"] is True
    with entrypoint_hook(container, "programmes") as programmes:
        plan = programmes("le")
    line = {p["registration_id"]: p["waitlist_position"] for p in plan["programmes"]}
    assert sorted(p for p in line.values() if p) == [1]  # the second in line moved up
    assert seated not in line  # a cancelled sign-up is no longer in the plan


def test_a_career_event_without_a_capacity_gets_no_plan(broker, make_scheduling, tmp_path):
    _, db = make_scheduling(f"sqlite:///{tmp_path}/s.db")
    _publish_activity(broker, "open", "career_event", AFTERNOON)
    _sign_up(broker, "open", "career_event", 1)
    poll(lambda: _active(db, "open") == 1, what="the sign-up")

    assert _versions(db, "open") == 0
    assert _events(db, "programme_assigned", "open") == []


def test_sign_ups_that_came_before_their_event_get_seats_at_the_next_planning_round(
    broker, make_scheduling, tmp_path
):
    container, db = make_scheduling(f"sqlite:///{tmp_path}/s.db")
    for n in range(3):  # the event itself is not known yet
        _sign_up(broker, "early", "career_event", n)
    poll(lambda: _active(db, "early") == 3, what="the sign-ups")
    with db() as uow:  # the event arrives, as if its own message were handled at the same time
        uow.session.add(
            ActivityCopy(
                id="early",
                kind="career_event",
                title="Loopbaanevenement",
                starts_at=AFTERNOON,
                ends_at=AFTERNOON,
                capacity=2,
                spec={},
                updated_at=AFTERNOON,
            )
        )
        uow.commit()

    with entrypoint_hook(container, "plan_closed_activities") as plan_due:
        plan_due()

    assert len(_events(db, "programme_assigned", "early")) == 2
    assert [p["position"] for p in _events(db, "waitlisted", "early")] == [1]


def plan_room_lists(container, activity_id):
    with entrypoint_hook(container, "room_lists") as room_lists:
        return room_lists(activity_id)


def test_erasure_forgets_attendance_too(broker, make_scheduling, tmp_path):
    _, db = make_scheduling(f"sqlite:///{tmp_path}/s.db")
    publish_event(
        broker,
        "attendance_recorded",
        sample("attendance_recorded", registration_id="r9", person_id="p9", activity_id="a"),
    )
    poll(lambda: _count(db, Attendance) == 1, what="the attendance record")

    publish_event(broker, "person_erased", sample("person_erased", person_id="p9"))

    poll(lambda: _count(db, Attendance) == 0, what="the attendance to be erased")
