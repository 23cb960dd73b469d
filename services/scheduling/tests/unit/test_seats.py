"""Seats first come, first served with a waiting list (bus tours and capacity kinds)."""

from datetime import datetime, timedelta

import pytest

from scheduling.domain.seats import (
    SeatBlock,
    SeatChange,
    SeatChangeKind,
    SeatError,
    SeatRef,
    SeatRequest,
    add_signup,
    allocate_seats,
    cancel_seat,
    reconcile_seats,
)

SIGNUP_OPENS = datetime(2024, 9, 2, 9, 0)


def people(count: int) -> list[SeatRequest]:
    return [SeatRequest(f"pro{i:02}", SIGNUP_OPENS + timedelta(minutes=i)) for i in range(count)]


def test_seats_go_first_come_over_the_buses_and_the_rest_waits():
    buses = [SeatBlock("bus-a", 2), SeatBlock("bus-b", 1)]
    signups = list(reversed(people(5)))  # given out of order; sign-up time decides

    allocation = allocate_seats(buses, signups)

    assert allocation.seats == {
        "pro00": SeatRef("bus-a", 1),
        "pro01": SeatRef("bus-a", 2),
        "pro02": SeatRef("bus-b", 1),
    }
    assert allocation.waitlist == ("pro03", "pro04")
    assert allocation.waitlist_position("pro04") == 2


def test_october_2024_tour_of_23_people_fits_one_coach():
    allocation = allocate_seats([SeatBlock("touringcar", 50)], people(23))

    assert len(allocation.seats) == 23
    assert allocation.waitlist == ()
    assert len(allocation.free_seats()) == 27


def test_cancelled_seat_goes_to_first_in_line_and_the_line_moves_up():
    allocation = allocate_seats([SeatBlock("bus", 22)], people(24))  # February 2025: 24 people
    seat = allocation.seats["pro05"]

    update = cancel_seat(allocation, "pro05")

    assert update.allocation.seats["pro22"] == seat
    assert update.allocation.waitlist == ("pro23",)
    assert update.changes == (
        SeatChange("pro05", SeatChangeKind.RELEASED, seat=seat),
        SeatChange("pro22", SeatChangeKind.SEATED, seat=seat),
        SeatChange("pro23", SeatChangeKind.WAITLIST_MOVED, waitlist_position=1),
    )
    assert "pro05" in allocation.seats  # the old allocation is left alone


def test_leaving_the_waiting_list_moves_only_those_behind():
    allocation = allocate_seats([SeatBlock("bus", 1)], people(4))

    update = cancel_seat(allocation, "pro02")

    assert update.allocation.waitlist == ("pro01", "pro03")
    assert update.changes == (
        SeatChange("pro02", SeatChangeKind.LEFT_WAITLIST),
        SeatChange("pro03", SeatChangeKind.WAITLIST_MOVED, waitlist_position=2),
    )


def test_seat_freed_with_nobody_waiting_goes_to_the_next_sign_up():
    allocation = allocate_seats([SeatBlock("bus", 2)], people(2))
    freed = cancel_seat(allocation, "pro00")
    assert [c.kind for c in freed.changes] == [SeatChangeKind.RELEASED]

    update = add_signup(freed.allocation, "late")

    assert update.changes == (SeatChange("late", SeatChangeKind.SEATED, seat=SeatRef("bus", 1)),)
    assert add_signup(update.allocation, "later").changes[0].waitlist_position == 1


def test_reconciling_keeps_every_seat_and_gives_freed_seats_to_the_line_in_order():
    before = allocate_seats([SeatBlock("bus", 3)], people(5))  # pro00-02 seated, pro03-04 wait
    now = [s for s in people(7) if s.person_id != "pro01"]  # pro01 left, pro05-06 are new

    after = reconcile_seats([SeatBlock("bus", 3)], now, before.seats, before.waitlist)

    assert after.seats == {
        "pro00": SeatRef("bus", 1),
        "pro03": SeatRef("bus", 2),  # pro01's seat, to the first in line
        "pro02": SeatRef("bus", 3),
    }
    assert after.waitlist == ("pro04", "pro05", "pro06")


def test_reconciling_after_the_cutoff_leaves_a_freed_seat_empty():
    before = allocate_seats([SeatBlock("bus", 2)], people(3))
    now = [s for s in people(3) if s.person_id != "pro00"]

    after = reconcile_seats(
        [SeatBlock("bus", 2)], now, before.seats, before.waitlist, fill_free_seats=False
    )

    assert after.seats == {"pro01": SeatRef("bus", 2)}
    assert after.waitlist == ("pro02",)
    assert after.free_seats() == [SeatRef("bus", 1)]


def test_who_loses_a_seat_to_a_smaller_bus_is_first_in_line():
    before = allocate_seats([SeatBlock("bus", 3)], people(4))  # pro03 waits

    after = reconcile_seats([SeatBlock("bus", 2)], people(4), before.seats, before.waitlist)

    assert after.seats == {"pro00": SeatRef("bus", 1), "pro01": SeatRef("bus", 2)}
    assert after.waitlist == ("pro02", "pro03")


def test_seat_errors_name_the_person_or_block():
    allocation = allocate_seats([SeatBlock("bus", 1)], people(1))
    with pytest.raises(SeatError, match="'ghost' has no seat"):
        cancel_seat(allocation, "ghost")
    with pytest.raises(SeatError, match="'pro00' has already signed up"):
        add_signup(allocation, "pro00")
    with pytest.raises(SeatError, match="'b' has a negative number of seats"):
        allocate_seats([SeatBlock("b", -1)], [])
    with pytest.raises(SeatError, match="'b' is listed twice"):
        allocate_seats([SeatBlock("b", 1), SeatBlock("b", 2)], [])
