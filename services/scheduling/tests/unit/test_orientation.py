"""Orientation afternoons: rank-optimal, fair, overbooked allocation with waiting lists."""

import itertools
import random
from datetime import datetime, timedelta

import pytest

from scheduling.domain.orientation import (
    AttendanceRecord,
    OrientationInputError,
    PromotionOutcome,
    Workshop,
    WorkshopRequest,
    allocate_workshops,
    effective_capacity,
    no_show_rates,
    promote_after_cancellation,
    restore_allocation,
)

OPEN = datetime(2024, 11, 1, 9, 0)  # sign-up for the 28 Nov 2024 afternoon opens
DAY = datetime(2024, 11, 28, 14, 0)
CUTOFF = DAY - timedelta(days=2)


def request(pupil: str, school: str, *ranking: str, minute: int = 0) -> WorkshopRequest:
    return WorkshopRequest(pupil, school, tuple(ranking), OPEN + timedelta(minutes=minute))


def school_group(school: str, count: int, *ranking: str, first_minute: int = 0):
    return [
        request(f"{school}{i}", school, *ranking, minute=first_minute + i) for i in range(count)
    ]


# --- fairness between schools ------------------------------------------------------------------


def test_oversubscribed_workshop_is_split_in_proportion_to_school_demand():
    # 'de Garage' has 6 seats; Farel College asks with 6 pupils, Het Element with 3. Everyone's
    # second choice has room, so seats and ranks are equal for every split: fairness decides.
    workshops = [Workshop("garage", 6, "Autotechniek"), Workshop("zorg", 20, "Zorg & Welzijn")]
    requests = school_group("farel", 6, "garage", "zorg") + school_group(
        "element", 3, "garage", "zorg", first_minute=100
    )

    allocation = allocate_workshops(workshops, requests)

    assert allocation.seats_by_school("garage") == {"element": 2, "farel": 4}
    assert allocation.metrics.by_rank == {1: 6, 2: 3, 3: 0}


def test_a_school_whose_pupils_only_want_the_popular_workshop_still_gets_its_share():
    # 4 seats in all. Every pupil of 't Atrium wants only 'garage'; Farel's would also take
    # 'zorg'. Seating Farel in 'garage' too would cost no seat and no rank, but leave 't Atrium
    # with 1 of 4 pupils seated against Farel's 3 of 4: the seats are shared 2 and 2.
    workshops = [Workshop("garage", 2), Workshop("zorg", 2)]
    requests = school_group("atrium", 4, "garage") + school_group(
        "farel", 4, "garage", "zorg", first_minute=10
    )

    allocation = allocate_workshops(workshops, requests)

    assert allocation.seats_by_school("garage") == {"atrium": 2}
    assert allocation.seats_by_school("zorg") == {"farel": 2}
    assert {s: share.seated for s, share in allocation.metrics.schools.items()} == {
        "atrium": 2,
        "farel": 2,
    }


def test_small_school_is_not_shut_out_sainte_lague_not_dhondt():
    # 2 seats, demand 5 against 2, no alternatives: proportional is 1.43 : 0.57, so 1 and 1
    # (Sainte-Laguë, x²/d: 1/5 + 1/2 < 4/5). D'Hondt - or first come, first served with the big
    # school first - would give 2 and 0.
    workshops = [Workshop("techniek", 2)]
    requests = school_group("atrium", 5, "techniek") + school_group(
        "trivium", 2, "techniek", first_minute=50
    )

    allocation = allocate_workshops(workshops, requests)

    assert allocation.seats_by_school("techniek") == {"atrium": 1, "trivium": 1}
    assert allocation.assignments == {"atrium0": "techniek", "trivium0": "techniek"}
    assert allocation.waitlists["techniek"] == (
        "atrium1",
        "atrium2",
        "atrium3",
        "atrium4",
        "trivium1",
    )


def test_fairness_never_costs_a_seat():
    # Trivium's pupils have no alternative, Atrium's do: fairness must yield to seating all.
    workshops = [Workshop("techniek", 3), Workshop("handel", 3)]
    requests = school_group("atrium", 3, "techniek", "handel") + school_group(
        "trivium", 3, "techniek", first_minute=10
    )

    allocation = allocate_workshops(workshops, requests)

    assert allocation.metrics.seated == 6
    assert allocation.seats_by_school("techniek") == {"trivium": 3}


def test_within_identical_requests_the_earlier_sign_up_gets_the_seat():
    workshops = [Workshop("techniek", 1), Workshop("handel", 5)]
    requests = [
        request("late", "s", "techniek", "handel", minute=9),
        request("early", "s", "techniek", "handel", minute=1),
    ]

    allocation = allocate_workshops(workshops, requests)

    assert allocation.assignments == {"early": "techniek", "late": "handel"}


# --- optimality --------------------------------------------------------------------------------


def first_come_first_served(workshops, requests):
    """The region's old way, as a reference to beat."""
    free = {w.id: w.capacity for w in workshops}
    seats = {}
    for r in sorted(requests, key=lambda r: r.signed_up_at):
        for workshop_id in r.ranking:
            if free[workshop_id] > 0:
                free[workshop_id] -= 1
                seats[r.pupil_id] = workshop_id
                break
    return seats


def test_rank_optimal_beats_first_come_first_served():
    # Early Ana takes Zorg first-come, forcing Bo to his 3rd choice; Ana's 2nd choice was free.
    workshops = [
        Workshop("zorg", 1),
        Workshop("ict", 1),
        Workshop("horeca", 0),
        Workshop("bouw", 1),
    ]
    requests = [
        request("ana", "s1", "zorg", "ict", minute=1),
        request("bo", "s2", "zorg", "horeca", "bouw", minute=2),
    ]

    fcfs = first_come_first_served(workshops, requests)
    allocation = allocate_workshops(workshops, requests)

    assert fcfs == {"ana": "zorg", "bo": "bouw"}  # ranks 1 + 3
    assert allocation.assignments == {"ana": "ict", "bo": "zorg"}  # ranks 2 + 1
    assert allocation.metrics.by_rank == {1: 1, 2: 1, 3: 0}


def test_seating_everyone_beats_giving_first_choices():
    workshops = [Workshop("zorg", 1), Workshop("ict", 1)]
    requests = [
        request("ana", "s1", "zorg", "ict", minute=1),
        request("bo", "s1", "zorg", minute=2),
    ]

    allocation = allocate_workshops(workshops, requests)

    assert first_come_first_served(workshops, requests) == {"ana": "zorg"}
    assert allocation.assignments == {"ana": "ict", "bo": "zorg"}


def lexicographic_score(assignment, requests, demand, scale):
    """(-seats, school share, rank cost, fairness) exactly as the module documents it."""
    seats = sum(1 for w in assignment if w is not None)
    sizes, seated = {}, {}
    for r, w in zip(requests, assignment, strict=True):
        sizes[r.school_id] = sizes.get(r.school_id, 0) + 1
        seated[r.school_id] = seated.get(r.school_id, 0) + (w is not None)
    school_scale = max(sizes.values()) ** 2
    share = sum(
        school_scale * (2 * k - 1) // sizes[school]
        for school, x in seated.items()
        for k in range(1, x + 1)
    )
    rank = sum(r.ranking.index(w) for r, w in zip(requests, assignment, strict=True) if w)
    counts = {}
    for r, w in zip(requests, assignment, strict=True):
        if w is not None:
            counts[(w, r.school_id)] = counts.get((w, r.school_id), 0) + 1
    fairness = sum(
        scale * (2 * k - 1) // demand[key] for key, x in counts.items() for k in range(1, x + 1)
    )
    return -seats, share, rank, fairness


def brute_force_best(workshops, requests, seats_per_school=None):
    """The best score over all valid assignments (optionally: with these seats per school)."""
    capacity = {w.id: w.capacity for w in workshops}
    demand = {}
    for r in requests:
        for w in r.ranking:
            demand[(w, r.school_id)] = demand.get((w, r.school_id), 0) + 1
    scale = max(demand.values()) ** 2
    best = None
    for assignment in itertools.product(*[(None, *r.ranking) for r in requests]):
        used = {}
        for w in assignment:
            if w is not None:
                used[w] = used.get(w, 0) + 1
        if any(n > capacity[w] for w, n in used.items()):
            continue
        if seats_per_school is not None and _seats_per_school(assignment, requests) != (
            seats_per_school
        ):
            continue
        score = lexicographic_score(assignment, requests, demand, scale)
        best = score if best is None or score < best else best
    return best, demand, scale


def _seats_per_school(assignment, requests):
    seats = {}
    for r, w in zip(requests, assignment, strict=True):
        seats[r.school_id] = seats.get(r.school_id, 0) + (w is not None)
    return seats


@pytest.mark.parametrize("seed", range(25))
def test_allocation_matches_brute_force_lexicographic_optimum(seed):
    rng = random.Random(seed)
    workshops = [Workshop(w, rng.randint(0, 3)) for w in ("a", "b", "c")]
    requests = [
        request(
            f"p{i}",
            rng.choice("XY"),
            *rng.sample(["a", "b", "c"], rng.randint(1, 3)),
            minute=rng.randint(0, 9),
        )
        for i in range(6)
    ]

    allocation = allocate_workshops(workshops, requests)

    got = tuple(allocation.assignments.get(r.pupil_id) for r in requests)
    # Seats, school shares and rank: the exact optimum over all assignments.
    best, demand, scale = brute_force_best(workshops, requests)
    assert lexicographic_score(got, requests, demand, scale)[:3] == best[:3]
    # Workshop fairness: the optimum among assignments with the same seats per school.
    best_here, _, _ = brute_force_best(workshops, requests, _seats_per_school(got, requests))
    assert lexicographic_score(got, requests, demand, scale) == best_here


def test_same_input_in_another_order_gives_the_same_allocation():
    rng = random.Random(7)
    workshops = [Workshop(f"w{i}", rng.randint(1, 4)) for i in range(5)]
    requests = [
        request(
            f"p{i:02}",
            rng.choice("ABC"),
            *rng.sample([w.id for w in workshops], 3),
            minute=rng.randint(0, 30),
        )
        for i in range(30)
    ]
    shuffled = requests[:]
    rng.shuffle(shuffled)

    first = allocate_workshops(workshops, requests)
    second = allocate_workshops(list(reversed(workshops)), shuffled)

    assert first.assignments == second.assignments
    assert first.waitlists == second.waitlists


# --- overbooking -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "rate", "cap", "expected"),
    [
        (20, None, 0.15, 20),  # no history: no overbooking
        (20, 0.0, 0.15, 20),
        (20, 0.1, 0.15, 22),  # 20 * 0.1 / 0.9 = 2.2 -> 2, under the cap of 3
        (20, 0.2, 0.15, 23),  # 20 * 0.2 / 0.8 = 5, capped at floor(0.15 * 20) = 3
        (13, 0.35, 1.0, 20),  # 13 * 0.35 / 0.65 is 7, in floats 6.999...: must not become 6
        (20, 1.0, 0.15, 23),  # everybody stayed away: only the cap limits
        (20, 0.5, 0.0, 20),  # overbooking switched off
        (0, 0.5, 0.15, 0),
    ],
)
def test_effective_capacity_overbooks_by_expected_no_shows_up_to_the_cap(
    capacity, rate, cap, expected
):
    assert effective_capacity(capacity, rate, cap) == expected


def test_overbooking_seats_more_pupils_than_chairs_but_no_more_than_the_cap():
    workshops = [Workshop("koppelt", 10)]
    requests = school_group("farel", 20, "koppelt")

    allocation = allocate_workshops(workshops, requests, no_show_rates={"koppelt": 0.5})

    # 10 * 0.5 / 0.5 = 10 extra expected no-shows, but the 15 % cap allows 1
    assert allocation.capacities == {"koppelt": 11}
    assert allocation.metrics.seated == 11
    assert len(allocation.waitlists["koppelt"]) == 9


def test_no_show_rates_pool_schools_and_ignore_thin_history():
    records = [
        AttendanceRecord("koppelt", "farel", 12, 9),
        AttendanceRecord("koppelt", "element", 8, 7),
        AttendanceRecord("garage", "farel", 5, 1),
    ]

    rates = no_show_rates(records, min_bookings=20)

    assert rates == {"koppelt": pytest.approx(4 / 20)}


def test_no_show_history_with_more_attended_than_booked_is_rejected():
    with pytest.raises(OrientationInputError, match="'koppelt'"):
        no_show_rates([AttendanceRecord("koppelt", "farel", 3, 4)])


# --- waiting list and promotion -----------------------------------------------------------------


def waitlist_case():
    """One seat each; p0 (early) gets techniek, p1 gets zorg; p2, p3, p4 wait."""
    workshops = [Workshop("techniek", 1), Workshop("zorg", 1)]
    requests = [
        request("p0", "s", "techniek", minute=0),
        request("p1", "s", "zorg", "techniek", minute=1),
        request("p2", "s", "techniek", minute=2),
        request("p3", "s", "zorg", "techniek", minute=3),
        request("p4", "s", "techniek", minute=4),
    ]
    return allocate_workshops(workshops, requests)


def test_waitlist_orders_by_rank_then_sign_up_time():
    allocation = waitlist_case()

    assert allocation.assignments == {"p0": "techniek", "p1": "zorg"}
    # p3 signed up before p4 but ranked techniek only second, so waits behind p4
    assert allocation.waitlists == {"techniek": ("p2", "p4", "p3"), "zorg": ("p3",)}
    assert allocation.waitlist_positions("p3") == {"techniek": 3, "zorg": 1}
    assert allocation.metrics.waitlisted == 3


def test_cancellation_before_cutoff_promotes_first_in_line():
    allocation = waitlist_case()

    promotion = promote_after_cancellation(
        allocation, "p0", now=CUTOFF - timedelta(hours=1), cutoff=CUTOFF
    )

    assert promotion.outcome is PromotionOutcome.PROMOTED
    assert promotion.promoted_pupil_id == "p2"
    assert promotion.freed_workshop_id == "techniek"
    assert promotion.allocation.assignments == {"p1": "zorg", "p2": "techniek"}
    assert promotion.allocation.waitlists == {"techniek": ("p4", "p3"), "zorg": ("p3",)}
    assert allocation.assignments["p0"] == "techniek"  # the old plan is left alone


def test_cancellation_after_cutoff_leaves_the_seat_empty_and_says_why():
    allocation = waitlist_case()

    promotion = promote_after_cancellation(allocation, "p1", now=CUTOFF, cutoff=CUTOFF)

    assert promotion.outcome is PromotionOutcome.AFTER_CUTOFF
    assert promotion.promoted_pupil_id is None
    assert "after the cut-off" in promotion.message
    assert promotion.allocation.seats_taken("zorg") == 0
    assert promotion.allocation.waitlists["zorg"] == ("p3",)


def test_cancelling_a_waiting_pupil_only_removes_them_from_the_lists():
    promotion = promote_after_cancellation(waitlist_case(), "p3", now=OPEN, cutoff=CUTOFF)

    assert promotion.outcome is PromotionOutcome.NOT_SEATED
    assert promotion.allocation.waitlists == {"techniek": ("p2", "p4"), "zorg": ()}
    assert promotion.allocation.metrics.requested == 4


def test_cancellation_with_nobody_waiting_frees_the_seat():
    allocation = allocate_workshops([Workshop("zorg", 2)], [request("p0", "s", "zorg")])

    promotion = promote_after_cancellation(allocation, "p0", now=OPEN, cutoff=CUTOFF)

    assert promotion.outcome is PromotionOutcome.WAITLIST_EMPTY
    assert promotion.allocation.assignments == {}


def test_cancelling_twice_or_an_unknown_pupil_is_an_error():
    once = promote_after_cancellation(waitlist_case(), "p4", now=OPEN, cutoff=CUTOFF)
    with pytest.raises(OrientationInputError, match="'p4' has already cancelled"):
        promote_after_cancellation(once.allocation, "p4", now=OPEN, cutoff=CUTOFF)
    with pytest.raises(OrientationInputError, match="unknown pupil 'nobody'"):
        promote_after_cancellation(once.allocation, "nobody", now=OPEN, cutoff=CUTOFF)


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_count_seats_by_rank_and_share_per_school():
    workshops = [Workshop("zorg", 2), Workshop("ict", 1)]
    requests = [*school_group("a", 3, "zorg", "ict"), request("t1", "trivium", "ict")]

    allocation = allocate_workshops(workshops, requests)
    metrics = allocation.metrics

    # a2 could take ict as a 2nd choice, but t1 has it as 1st choice
    assert allocation.assignments == {"a0": "zorg", "a1": "zorg", "t1": "ict"}
    assert (metrics.requested, metrics.seated, metrics.waitlisted) == (4, 3, 1)
    assert metrics.by_rank == {1: 3, 2: 0, 3: 0}
    assert metrics.schools["trivium"].share == 1.0
    assert metrics.schools["a"].seated == 2
    assert metrics.schools["a"].share == pytest.approx(2 / 3)


def test_nobody_signed_up_gives_an_empty_plan():
    allocation = allocate_workshops([Workshop("zorg", 2)], [])

    assert allocation.assignments == {}
    assert allocation.waitlists == {"zorg": ()}


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workshops", "requests", "message"),
    [
        (
            [Workshop("zorg", 2)],
            [request("p1", "s", "zorg", "bakkerij")],
            "pupil 'p1' ranked unknown workshop 'bakkerij'",
        ),
        (
            [Workshop("zorg", 2)],
            [request("p1", "s", "zorg", "zorg")],
            "pupil 'p1' ranked workshop 'zorg' more than once",
        ),
        ([Workshop("zorg", -1)], [], "workshop 'zorg' has a negative capacity"),
        (
            [Workshop(w, 1) for w in "abcd"],
            [request("p1", "s", "a", "b", "c", "d")],
            "pupil 'p1' ranked 4 workshops; at most 3",
        ),
        ([Workshop("zorg", 2)], [request("p1", "s")], "pupil 'p1' ranked no workshop"),
        (
            [Workshop("zorg", 2)],
            [request("p1", "s", "zorg"), request("p1", "s", "zorg")],
            "pupil 'p1' has more than one request",
        ),
        ([Workshop("zorg", 2), Workshop("zorg", 3)], [], "workshop 'zorg' is listed twice"),
    ],
)
def test_bad_input_is_rejected_with_a_message_naming_the_item(workshops, requests, message):
    with pytest.raises(OrientationInputError, match=message):
        allocate_workshops(workshops, requests)


def test_bad_no_show_rates_are_rejected():
    workshops = [Workshop("zorg", 2)]
    with pytest.raises(OrientationInputError, match="unknown workshop 'ict'"):
        allocate_workshops(workshops, [], no_show_rates={"ict": 0.1})
    with pytest.raises(OrientationInputError, match="between 0 and 1"):
        allocate_workshops(workshops, [], no_show_rates={"zorg": 1.5})
    with pytest.raises(OrientationInputError, match="max_overbooking"):
        allocate_workshops(workshops, [], max_overbooking=-0.1)


def test_input_errors_are_value_errors():
    assert issubclass(OrientationInputError, ValueError)


# --- re-planning ---------------------------------------------------------------------------------


def test_a_replan_keeps_every_seat_and_seats_newcomers_in_what_is_left():
    workshops = [Workshop("garage", 2), Workshop("zorg", 2)]
    first = allocate_workshops(workshops, [request("a", "farel", "zorg", "garage")])
    assert first.assignments == {"a": "zorg"}
    # Two pupils who want only 'zorg' arrive late: the flow from scratch would move 'a' to
    # 'garage' to seat them both; a re-plan keeps a's seat and one of them waits.
    late = [request("b", "farel", "zorg", minute=5), request("c", "element", "zorg", minute=6)]

    replan = allocate_workshops(
        workshops, [request("a", "farel", "zorg", "garage"), *late], keep=first.assignments
    )
    scratch = allocate_workshops(workshops, [request("a", "farel", "zorg", "garage"), *late])

    assert replan.assignments["a"] == "zorg"
    assert replan.metrics.seated == 2 and replan.metrics.waitlisted == 1
    assert scratch.assignments["a"] == "garage" and scratch.metrics.seated == 3


def test_a_kept_seat_at_a_workshop_that_was_dropped_is_allocated_anew():
    workshops = [Workshop("zorg", 2)]
    allocation = allocate_workshops(
        workshops, [request("a", "farel", "zorg")], keep={"a": "garage"}
    )
    assert allocation.assignments == {"a": "zorg"}


def test_a_restored_allocation_has_the_waiting_lists_it_had():
    workshops = [Workshop("garage", 1)]
    requests = [request(p, "farel", "garage", minute=i) for i, p in enumerate("abc")]
    planned = allocate_workshops(workshops, requests)

    restored = restore_allocation(workshops, planned.capacities, requests, planned.assignments)

    assert restored == planned
