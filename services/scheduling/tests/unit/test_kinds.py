"""Each kind from activity + sign-ups to an outcome, and who is told what: plain domain
objects, no database."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduling.domain.kinds import (
    plan_bus_tour,
    plan_infoday,
    plan_orientation,
    planner_for,
    timetable,
    update_orientation,
    update_seats,
    updater_for,
)
from scheduling.domain.plan import (
    Activity,
    CannotPlan,
    Outcome,
    PlanInForce,
    PlanInput,
    Settings,
    SignUp,
    Waiting,
    announcements,
)

DAY = datetime(2027, 12, 9, 13, 0, tzinfo=UTC)
OPEN = datetime(2027, 11, 1, 9, 0, tzinfo=UTC)


def activity(kind, capacity=None, **spec):
    return Activity(
        "a1", kind, "Activiteit", DAY, DAY + timedelta(hours=2), capacity=capacity, spec=spec
    )


def sign_up(n, ranking=(), school="farel-college", **preferences):
    return SignUp(
        f"r{n}",
        f"p{n}",
        school,
        {"ranking": list(ranking), **preferences},
        OPEN + timedelta(minutes=n),
    )


def in_force(outcome, version=1):
    return PlanInForce(
        version, outcome.programmes, outcome.waitlist, outcome.details, outcome.metrics
    )


WORKSHOPS = [{"workshop_id": "garage", "title": "Autotechniek", "capacity": 1}]


def test_repeated_and_unknown_workshops_are_dropped_and_who_has_none_left_is_counted():
    inp = PlanInput(
        activity("orientation_day", workshops=WORKSHOPS),
        [sign_up(1, ["garage", "garage", "weg"]), sign_up(2, ["weg"]), sign_up(3, ["garage"])],
    )

    outcome = plan_orientation(inp)

    assert outcome.programmes == {
        "r1": {"workshop": {"workshop_id": "garage", "title": "Autotechniek", "location": ""}}
    }
    assert outcome.waitlist["r3"].position == 1
    assert "r2" not in outcome.waitlist
    assert outcome.metrics["without_valid_choice"] == 1


def test_after_the_cutoff_a_cancellation_frees_a_seat_nobody_gets():
    inp = PlanInput(
        activity("orientation_day", workshops=WORKSHOPS),
        [sign_up(1, ["garage"]), sign_up(2, ["garage"])],
        settings=Settings(promotion_cutoff=timedelta(hours=48)),
    )
    first = plan_orientation(inp)
    previous = in_force(first)
    cancelled, waiting = sign_up(1, ["garage"]), sign_up(2, ["garage"])
    later = PlanInput(inp.activity, [waiting], previous, inp.settings)

    too_late = update_orientation(later, cancelled, DAY - timedelta(hours=47))
    in_time = update_orientation(later, cancelled, DAY - timedelta(hours=49))

    assert too_late.programmes == {} and too_late.waitlist["r2"].position == 1
    assert in_time.programmes["r2"]["workshop"]["workshop_id"] == "garage"


def test_a_bus_tour_without_buses_says_what_to_publish():
    with pytest.raises(CannotPlan, match="buses"):
        plan_bus_tour(PlanInput(activity("bus_tour"), [sign_up(1)]))


def test_a_tour_without_a_departure_point_gets_no_timetable_and_says_why():
    tour = activity("bus_tour", stops=[{"stop_id": "ede", "name": "Aeres MBO Ede"}])
    result = timetable(tour)
    assert result.rows == [] and "departure" in result.problem


def test_without_stops_there_is_nothing_to_time_and_no_problem():
    result = timetable(activity("bus_tour"))
    assert (result.rows, result.problem) == ([], None)


# --- kinds with a capacity and no planner of their own ----------------------------------------


def test_a_career_event_seats_up_to_its_capacity_first_come_and_the_rest_wait_in_order():
    event = activity("career_event", capacity=2)
    people = [sign_up(n) for n in (3, 1, 2, 4)]  # given out of order: sign-up time decides

    outcome = planner_for(event)(PlanInput(event, people), None)

    assert set(outcome.programmes) == {"r1", "r2"}
    assert {r: w.position for r, w in outcome.waitlist.items()} == {"r3": 1, "r4": 2}
    assert outcome.metrics == {"seats": 2, "seated": 2, "waitlisted": 2}
    assert outcome.details["room_lists"][0]["pupils"] == ["r1", "r2"]


def test_a_cancelled_seat_goes_to_the_first_in_line_before_the_cutoff_only():
    event = activity("network_meeting", capacity=1)
    first = update_seats(PlanInput(event, [sign_up(1), sign_up(2)]), None, OPEN)
    later = PlanInput(event, [sign_up(2)], in_force(first))

    in_time = update_seats(later, sign_up(1), DAY - timedelta(hours=49))
    too_late = update_seats(later, sign_up(1), DAY - timedelta(hours=47))

    assert set(in_time.programmes) == {"r2"} and not in_time.waitlist
    assert not too_late.programmes and too_late.waitlist["r2"].position == 1


def test_who_holds_a_seat_keeps_it_when_an_earlier_sign_up_arrives_late():
    event = activity("decanen_meeting", capacity=1)
    first = update_seats(PlanInput(event, [sign_up(5)]), None, OPEN)

    again = update_seats(PlanInput(event, [sign_up(5), sign_up(1)], in_force(first)), None, OPEN)

    assert set(again.programmes) == {"r5"} and again.waitlist["r1"].position == 1


def test_only_kinds_without_a_planner_and_with_a_capacity_get_seats():
    assert updater_for(activity("career_event")) is None  # no capacity: no limit
    assert updater_for(activity("career_event", capacity=10)) is update_seats
    assert planner_for(activity("infoday", capacity=10)) is plan_infoday


# --- who is told what --------------------------------------------------------------------------


def test_new_places_changed_programmes_and_new_waits_are_announced_once():
    event = activity("career_event", capacity=1)
    people = [sign_up(1), sign_up(2), sign_up(3)]
    before = PlanInForce(
        1, {"r1": {"seat": {"bus_id": "b", "seat": 1}}}, {"r2": Waiting(1), "r3": Waiting(2)}
    )
    now = Outcome(
        programmes={"r1": {"seat": {"bus_id": "b", "seat": 2}}, "r2": {}},
        waitlist={"r3": Waiting(1)},
    )

    told = announcements(PlanInput(event, people, before), 2, now, {"seated": 2})

    kinds = [(kind, payload["registration_id"]) for kind, payload in told.events[:-1]]
    assert kinds == [("programme_changed", "r1"), ("programme_assigned", "r2")]
    assert told.events[1][1]["from_waitlist"] is True
    assert told.events[-1][0] == "schedule_published"  # r3 moved up: not announced
    assert told.summary["changed"] == 1 and told.summary["newly_assigned"] == 1


# --- info day ----------------------------------------------------------------------------------

SESSIONS = [
    {"session_id": s, "title": f"Sessie {s}", "capacity": 2, "rounds": [1, 2, 3], "room": s}
    for s in ("A", "B", "C", "D")
]


def test_info_day_room_lists_hold_every_seated_pupil_once_sorted_by_school():
    day = activity("infoday", sessions=SESSIONS, rounds=[])
    people = [
        sign_up(n, school=school, choices=["A", "B", "C"], backup="D")
        for n, school in enumerate(["z-school", "a-school", "m-school", "a-school"])
    ]

    outcome = plan_infoday(PlanInput(day, people))

    lists = outcome.details["room_lists"]
    assert sum(room["count"] for room in lists) == outcome.metrics["seated"] == 12
    schools = {p.registration_id: p.school_id for p in people}
    for room in lists:
        assert room["count"] == len(room["pupils"]) <= room["capacity"]
        assert [schools[p] for p in room["pupils"]] == sorted(schools[p] for p in room["pupils"])
    assert outcome.metrics["gap_to_upper_bound"] == 0 and outcome.metrics["warning"] is None


def test_an_info_day_whose_search_hits_its_limit_still_gets_every_programme():
    sessions = [
        {"session_id": "A", "capacity": 1, "rounds": [1]},
        {"session_id": "B", "capacity": 1, "rounds": [2]},
        {"session_id": "C", "capacity": 2, "rounds": [1, 2, 3]},
        {"session_id": "D", "capacity": 5, "rounds": [1, 2, 3]},
    ]
    day = activity("infoday", sessions=sessions, rounds=[])
    people = [sign_up(n, choices=["A", "B", "C"]) for n in range(2)]

    outcome = plan_infoday(PlanInput(day, people, settings=Settings(infoday_time_limit_s=0)))

    assert len(outcome.programmes) == 2
    assert "time limit" in outcome.metrics["warning"]
    assert outcome.metrics["gap_to_upper_bound"] > 0


def test_settings_keep_their_defaults_when_unset_and_take_what_is_set():
    assert Settings.from_config({"ORIENTATION_MIN_BOOKINGS": None}) == Settings()
    assert Settings.from_config(
        {"PROMOTION_CUTOFF_HOURS": 24, "INFODAY_TIME_LIMIT_SECONDS": "5"}
    ) == Settings(promotion_cutoff=timedelta(hours=24), infoday_time_limit_s=5.0)
