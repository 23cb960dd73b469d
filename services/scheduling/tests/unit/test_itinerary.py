"""The bus tour's exact timed itinerary, and travel times."""

import itertools
import math
import random
from datetime import datetime, time, timedelta

import pytest

from scheduling.domain.itinerary import (
    ItineraryError,
    ItineraryInfeasibleError,
    Stop,
    estimate_travel_minutes,
    plan_itinerary,
)

# Plausible coordinates (WGS84) for the places of the 2024-2025 tours.
AMERSFOORT_CS = Stop("depot", "Amersfoort Centraal", lat=52.1533, lon=5.3731)
AERES_EDE = Stop("aeres-ede", "Aeres MBO Ede", 75, time(9, 30), time(12, 30), 52.0360, 5.6640)
AERES_BARNEVELD = Stop(
    "aeres-barneveld", "Aeres MBO Barneveld", 75, time(13, 0), time(15, 30), 52.1390, 5.5840
)
FEB_2025_STOPS = [
    Stop(
        "mboa-techniek",
        "MBO Amersfoort School voor Techniek",
        40,
        time(8, 30),
        time(16, 0),
        52.1700,
        5.4030,
    ),
    Stop("mboa-garage", "MBO Amersfoort de Garage", 40, time(8, 30), time(16, 0), 52.1625, 5.3960),
    Stop("mboa-koppelt", "MBO Amersfoort Koppel't", 40, time(8, 30), time(16, 0), 52.1580, 5.3650),
    Stop(
        "mboa-admin", "MBO Amersfoort Admin Company", 30, time(8, 30), time(16, 0), 52.1510, 5.3820
    ),
    Stop(
        "rocmn-utrecht",
        "ROC Midden Nederland Utrecht",
        45,
        time(11, 0),
        time(15, 0),
        52.0840,
        5.0870,
    ),
    Stop(
        "rocmn-nieuwegein",
        "ROC Midden Nederland Nieuwegein",
        45,
        time(11, 0),
        time(15, 0),
        52.0290,
        5.0830,
    ),
]


# --- travel times ------------------------------------------------------------------------------


def test_estimated_travel_is_haversine_times_road_factor_at_50_kmh_rounded_up():
    a = Stop("a", "A", lat=52.0, lon=5.0)
    b = Stop("b", "B", lat=52.5, lon=5.0)  # half a degree north: 55.60 km along the meridian

    # 55.597 km * 1.3 = 72.28 km at 50 km/h = 86.7 minutes -> 87
    assert estimate_travel_minutes(a, b) == 87
    assert estimate_travel_minutes(a, a) == 0


def test_matrix_is_used_in_the_reverse_direction_when_one_is_missing():
    depot, stop = Stop("d", "Depot"), Stop("s", "Stop", 10)

    plan = plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), [stop], {("d", "s"): 12})

    assert [leg.travel_minutes for leg in plan.legs] == [12, 12]
    assert plan.ends_at == datetime(2025, 2, 20, 9, 34)


def test_missing_travel_time_without_coordinates_is_an_error_naming_the_pair():
    with pytest.raises(ItineraryError, match="no travel time from 'd' to 's'"):
        plan_itinerary(Stop("d", "Depot"), datetime(2025, 2, 20, 9), [Stop("s", "Stop")])


# --- itinerary ---------------------------------------------------------------------------------


def simulate(order, matrix, stops, depart, return_by=math.inf, back=True):
    """Independent reference: total travel of an order, or None when a window is missed."""
    clock, here, travel = 0, "depot", 0
    for index in order:
        stop = stops[index]
        travel += matrix[(here, stop["id"])]
        start = max(clock + matrix[(here, stop["id"])], stop["opens"])
        clock = start + stop["visit"]
        if clock > stop["closes"]:
            return None
        here = stop["id"]
    if back:
        travel += matrix[(here, "depot")]
        if clock + matrix[(here, "depot")] > return_by:
            return None
    return travel


def random_tour(seed):
    """6 stops, an asymmetric seeded matrix and windows tight enough to rule out many orders."""
    rng = random.Random(seed)
    ids = ["depot"] + [f"s{i}" for i in range(6)]
    matrix = {(a, b): rng.randint(5, 40) for a in ids for b in ids if a != b}
    stops = []
    for i in range(6):
        opens = rng.randint(0, 240)
        stops.append(
            {
                "id": f"s{i}",
                "visit": rng.randint(10, 40),
                "opens": opens,
                "closes": opens + rng.randint(60, 200),
            }
        )
    return matrix, stops


@pytest.mark.parametrize("seed", range(12))
def test_six_stop_itinerary_equals_brute_force_over_all_orders(seed):
    matrix, raw = random_tour(seed)
    departure = datetime(2025, 2, 20, 8, 0)
    stops = [
        Stop(
            s["id"],
            s["id"],
            s["visit"],
            (departure + timedelta(minutes=s["opens"])).time(),
            (departure + timedelta(minutes=s["closes"])).time(),
        )
        for s in raw
    ]
    results = {p: simulate(p, matrix, raw, 0) for p in itertools.permutations(range(6))}
    feasible = [t for t in results.values() if t is not None]

    if not feasible:
        with pytest.raises(ItineraryInfeasibleError):
            plan_itinerary(Stop("depot", "Depot"), departure, stops, matrix)
        return
    plan = plan_itinerary(Stop("depot", "Depot"), departure, stops, matrix)

    assert plan.total_travel_minutes == min(feasible)
    chosen = tuple(int(stop_id[1:]) for stop_id in plan.order)
    assert results[chosen] == plan.total_travel_minutes  # the timetable itself is valid
    assert len(feasible) < len(results)  # the windows really constrain this instance


def test_brute_force_seeds_cover_both_feasible_and_infeasible_instances():
    outcomes = set()
    for seed in range(12):
        matrix, raw = random_tour(seed)
        orders = itertools.permutations(range(6))
        outcomes.add(any(simulate(p, matrix, raw, 0) is not None for p in orders))
    assert outcomes == {True, False}


def test_bus_waits_for_a_location_to_open_and_the_timetable_shows_it():
    depot = Stop("d", "Depot")
    stop = Stop("s", "Koppel't", 30, opens=time(10, 0))

    plan = plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), [stop], {("d", "s"): 20})

    visit = plan.visits[0]
    assert (visit.arrive.time(), visit.start.time(), visit.leave.time()) == (
        time(9, 20),
        time(10, 0),
        time(10, 30),
    )
    assert visit.wait_minutes == 40
    assert plan.ends_at.time() == time(10, 50)


def test_windows_can_force_a_longer_route_than_the_shortest():
    # Shortest is d-a-b-d (3 + 3 + 30 = 36) but b must be left by 9:20, so a comes after b.
    depot = Stop("d", "Depot")
    a, b = Stop("a", "A", 10), Stop("b", "B", 10, closes=time(9, 20))
    matrix = {
        ("d", "a"): 3,
        ("a", "b"): 3,
        ("b", "d"): 30,
        ("d", "b"): 5,
        ("b", "a"): 4,
        ("a", "d"): 40,
    }

    plan = plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), [a, b], matrix)

    assert plan.order == ("b", "a")
    assert plan.total_travel_minutes == 5 + 4 + 40


def test_more_travel_can_be_right_when_it_leaves_earlier():
    # Over {e, b, a} ending at a, b-e-a travels 35 minutes but waits at b until 9:45 and leaves
    # a at 10:15, too late for c (closes 10:30, 15 minutes away, 10-minute visit); e-b-a
    # travels 65 and leaves a at 10:05. A DP keeping only the least travel per (subset, last
    # stop) would drop e-b-a and call the tour impossible; the Pareto labels keep both.
    depot = Stop("d", "Depot")
    stops = [
        Stop("a", "A", 0, time(9, 45), time(10, 30)),
        Stop("b", "B", 0, time(9, 45), time(9, 45)),
        Stop("c", "C", 10, time(9, 45), time(10, 30)),
        Stop("e", "E", 0, time(9, 30), time(10, 15)),
    ]
    matrix = {
        ("d", "e"): 30,
        ("a", "d"): 20,
        ("a", "b"): 20,
        ("a", "c"): 15,
        ("a", "e"): 15,
        ("b", "d"): 5,
        ("b", "c"): 30,
        ("b", "e"): 15,
        ("c", "d"): 5,
        ("c", "e"): 20,
    }

    plan = plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), stops, matrix)

    assert plan.order == ("e", "b", "a", "c")
    assert plan.total_travel_minutes == 30 + 15 + 20 + 15 + 5
    assert [v.leave.time() for v in plan.visits][2:] == [time(10, 5), time(10, 30)]


def test_impossible_window_is_reported_with_the_stop_and_times():
    late = Stop("aeres-ede", "Aeres MBO Ede", 60, closes=time(9, 0), lat=52.036, lon=5.664)

    with pytest.raises(ItineraryInfeasibleError, match="'aeres-ede'") as caught:
        plan_itinerary(AMERSFOORT_CS, datetime(2024, 10, 17, 8, 30), [AERES_BARNEVELD, late])

    message = str(caught.value)
    assert "earliest arrival is 09:08" in message
    assert "closes at 09:00" in message
    assert caught.value.stop_ids == ("aeres-ede",)


def test_two_windows_that_exclude_each_other_are_named_together():
    depot = Stop("d", "Depot")
    a = Stop("a", "A", 60, time(10, 0), time(11, 0))
    b = Stop("b", "B", 60, time(10, 0), time(11, 30))
    matrix = {("d", "a"): 10, ("d", "b"): 10, ("a", "b"): 10}

    with pytest.raises(
        ItineraryInfeasibleError, match=r"'a'.*'b'.*cannot both be visited"
    ) as caught:
        plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), [a, b], matrix)
    assert caught.value.stop_ids == ("a", "b")


def test_stops_that_fit_in_pairs_but_not_all_together_list_what_is_left_out():
    depot = Stop("d", "Depot")
    window = (time(9, 0), time(10, 0))
    stops = [Stop(s, s.upper(), 20, *window) for s in "abc"]  # 3 x 20 min + travel > 60
    matrix = {(p, q): 5 for p in "dabc" for q in "dabc" if p != q}

    with pytest.raises(ItineraryInfeasibleError, match="at most 2 of 3 stops fit") as caught:
        plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), stops, matrix)
    assert len(caught.value.stop_ids) == 1


def test_window_shorter_than_the_visit_is_an_error():
    stop = Stop("s", "Green Outlet", 90, time(10, 0), time(11, 0))
    with pytest.raises(ItineraryInfeasibleError, match="needs 90 minutes but is open only"):
        plan_itinerary(Stop("d", "Depot"), datetime(2025, 2, 20, 9), [stop], {("d", "s"): 5})


def test_late_return_to_the_depot_is_reported():
    depot = Stop("d", "Depot", closes=time(10, 0))
    stop = Stop("s", "Stop", 50)
    with pytest.raises(ItineraryInfeasibleError, match="cannot be back at Depot by 10:00"):
        plan_itinerary(depot, datetime(2025, 2, 20, 9, 0), [stop], {("d", "s"): 10})


def test_october_2024_tour_visits_ede_in_the_morning_and_barneveld_after_lunch():
    departure = datetime(2024, 10, 17, 8, 30)

    plan = plan_itinerary(AMERSFOORT_CS, departure, [AERES_BARNEVELD, AERES_EDE])

    assert plan.order == ("aeres-ede", "aeres-barneveld")
    assert plan.visits[0].start.time() == time(9, 30)
    assert plan.visits[1].start.time() == time(13, 0)  # waits for Barneveld to open
    assert [(leg.from_id, leg.to_id) for leg in plan.legs] == [
        ("depot", "aeres-ede"),
        ("aeres-ede", "aeres-barneveld"),
        ("aeres-barneveld", "depot"),
    ]
    assert plan.total_travel_minutes == sum(leg.travel_minutes for leg in plan.legs)
    assert plan.ends_at == plan.legs[-1].arrive


def test_february_2025_tour_of_six_locations_is_optimal_and_keeps_towns_together():
    departure = datetime(2025, 2, 20, 8, 30)
    places = [AMERSFOORT_CS, *FEB_2025_STOPS]
    matrix = {(a.id, b.id): estimate_travel_minutes(a, b) for a in places for b in places}
    raw = [
        {
            "id": s.id,
            "visit": s.visit_minutes,
            "opens": (datetime.combine(departure.date(), s.opens) - departure).seconds // 60,
            "closes": (datetime.combine(departure.date(), s.closes) - departure).seconds // 60,
        }
        for s in FEB_2025_STOPS
    ]

    plan = plan_itinerary(AMERSFOORT_CS, departure, FEB_2025_STOPS)

    brute = min(
        t
        for p in itertools.permutations(range(6))
        if (t := simulate(p, matrix, raw, 0)) is not None
    )
    assert plan.total_travel_minutes == brute
    utrecht_area = [plan.order.index("rocmn-utrecht"), plan.order.index("rocmn-nieuwegein")]
    assert abs(utrecht_area[0] - utrecht_area[1]) == 1  # one trip out, not two
    windows = {s.id: (s.opens, s.closes) for s in FEB_2025_STOPS}
    for visit in plan.visits:
        opens, closes = windows[visit.stop_id]
        assert opens <= visit.start.time() and visit.leave.time() <= closes


def test_without_return_the_tour_ends_at_the_last_stop():
    depot, stop = Stop("d", "Depot"), Stop("s", "Stop", 30)

    plan = plan_itinerary(
        depot, datetime(2025, 2, 20, 9, 0), [stop], {("d", "s"): 10}, return_to_depot=False
    )

    assert len(plan.legs) == 1
    assert plan.ends_at == plan.visits[0].leave == datetime(2025, 2, 20, 9, 40)


def test_no_stops_gives_an_empty_tour():
    plan = plan_itinerary(Stop("d", "Depot"), datetime(2025, 2, 20, 9, 0), [])

    assert (plan.order, plan.legs, plan.total_travel_minutes) == ((), (), 0)


def test_eight_stops_are_planned_exactly():
    rng = random.Random(8)
    ids = ["depot"] + [f"s{i}" for i in range(8)]
    matrix = {(a, b): rng.randint(5, 30) for a in ids for b in ids if a != b}
    stops = [Stop(f"s{i}", f"S{i}", 20) for i in range(8)]
    raw = [{"id": s.id, "visit": 20, "opens": 0, "closes": math.inf} for s in stops]

    plan = plan_itinerary(Stop("depot", "Depot"), datetime(2025, 2, 20, 8, 0), stops, matrix)

    brute = min(simulate(p, matrix, raw, 0) for p in itertools.permutations(range(8)))
    assert plan.total_travel_minutes == brute


def test_bad_stops_are_rejected_by_name():
    depot = Stop("d", "Depot")
    with pytest.raises(ItineraryError, match="stop 'd' appears twice"):
        plan_itinerary(depot, datetime(2025, 2, 20), [Stop("d", "Again")], {})
    with pytest.raises(ItineraryError, match="stop 's' has a negative visit time"):
        plan_itinerary(depot, datetime(2025, 2, 20), [Stop("s", "S", -5)], {("d", "s"): 1})
    with pytest.raises(ItineraryError, match="travel time from 'd' to 's' is negative"):
        plan_itinerary(depot, datetime(2025, 2, 20), [Stop("s", "S")], {("d", "s"): -1})
    with pytest.raises(ItineraryError, match="at most 10"):
        plan_itinerary(depot, datetime(2025, 2, 20), [Stop(f"s{i}", "S") for i in range(11)])
