"""From stored activity + sign-ups to an outcome: input cleaning and plain errors, no database."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from scheduling.planners import (
    CannotPlan,
    PlanInput,
    Previous,
    Settings,
    plan_bus_tour,
    plan_orientation,
    timetable,
    update_orientation,
)

DAY = datetime(2027, 12, 9, 13, 0, tzinfo=UTC)
OPEN = datetime(2027, 11, 1, 9, 0, tzinfo=UTC)


def activity(kind, **spec):
    return SimpleNamespace(
        id="a1", kind=kind, starts_at=DAY, ends_at=DAY + timedelta(hours=2), spec=spec
    )


def sign_up(n, ranking=(), school="farel-college"):
    return SimpleNamespace(
        registration_id=f"r{n}",
        person_id=f"p{n}",
        school_id=school,
        preferences={"ranking": list(ranking)},
        signed_up_at=OPEN + timedelta(minutes=n),
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
    previous = Previous(1, first.programmes, first.waitlist, first.details, first.metrics)
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
