"""Seats, first come, first served, with a waiting list: bus tours, and every activity kind
with a capacity but no planner of its own (career events, network meetings, decanen meetings).

Seats are numbered from 1 within blocks (the buses of a tour in the order given; one hall for
an event). Sign-ups take the first free seat in sign-up order; who does not fit waits in line,
and a cancellation hands the freed seat (same block, same number) to the first in line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum


class SeatError(ValueError):
    """Bad input for a seat allocation; the message names the person or block."""


@dataclass(frozen=True)
class SeatBlock:
    """A bus, or the hall of an event: `seats` seats, numbered from 1."""

    id: str
    seats: int


@dataclass(frozen=True)
class SeatRequest:
    person_id: str
    signed_up_at: datetime


@dataclass(frozen=True, order=True)
class SeatRef:
    block_id: str
    seat_no: int


@dataclass(frozen=True)
class SeatAllocation:
    """Who sits where and who waits. Changes return a new allocation."""

    blocks: tuple[SeatBlock, ...]
    seats: Mapping[str, SeatRef]  # person id -> seat
    waitlist: tuple[str, ...]

    def free_seats(self) -> list[SeatRef]:
        """Free seats in filling order: blocks as given, seat numbers ascending."""
        taken = set(self.seats.values())
        return [ref for ref in _all_seats(self.blocks) if ref not in taken]

    def waitlist_position(self, person_id: str) -> int | None:
        return self.waitlist.index(person_id) + 1 if person_id in self.waitlist else None


class SeatChangeKind(Enum):
    SEATED = "seated"  # got a seat (at sign-up or promoted from the waiting list)
    WAITLISTED = "waitlisted"  # joined the waiting list
    RELEASED = "released"  # cancelled and gave up a seat
    LEFT_WAITLIST = "left_waitlist"  # cancelled while waiting
    WAITLIST_MOVED = "waitlist_moved"  # moved up in the waiting list


@dataclass(frozen=True)
class SeatChange:
    person_id: str
    kind: SeatChangeKind
    seat: SeatRef | None = None
    waitlist_position: int | None = None


@dataclass(frozen=True)
class SeatUpdate:
    """The new allocation and every person whose situation changed (to notify them)."""

    allocation: SeatAllocation
    changes: tuple[SeatChange, ...]


def allocate_seats(blocks: Sequence[SeatBlock], signups: Sequence[SeatRequest]) -> SeatAllocation:
    """First come, first served; equal sign-up times keep the order given."""
    _validate_blocks(blocks)
    ordered = sorted(signups, key=lambda s: s.signed_up_at)  # stable: ties keep input order
    allocation = SeatAllocation(tuple(blocks), {}, ())
    for signup in ordered:
        allocation = add_signup(allocation, signup.person_id).allocation
    return allocation


def add_signup(allocation: SeatAllocation, person_id: str) -> SeatUpdate:
    """A late sign-up takes the first free seat, or joins the end of the waiting list."""
    if person_id in allocation.seats or person_id in allocation.waitlist:
        raise SeatError(f"person {person_id!r} has already signed up")
    free = allocation.free_seats()
    if free:
        seats = {**allocation.seats, person_id: free[0]}
        change = SeatChange(person_id, SeatChangeKind.SEATED, seat=free[0])
        return SeatUpdate(replace(allocation, seats=seats), (change,))
    waitlist = (*allocation.waitlist, person_id)
    change = SeatChange(person_id, SeatChangeKind.WAITLISTED, waitlist_position=len(waitlist))
    return SeatUpdate(replace(allocation, waitlist=waitlist), (change,))


def cancel_seat(allocation: SeatAllocation, person_id: str) -> SeatUpdate:
    """Release a seat (the first in line takes it) or leave the waiting list."""
    if person_id in allocation.seats:
        return _release(allocation, person_id)
    if person_id in allocation.waitlist:
        position = allocation.waitlist.index(person_id)
        waitlist = allocation.waitlist[:position] + allocation.waitlist[position + 1 :]
        changes = (
            SeatChange(person_id, SeatChangeKind.LEFT_WAITLIST),
            *_moved_up(waitlist, position),
        )
        return SeatUpdate(replace(allocation, waitlist=waitlist), changes)
    raise SeatError(f"person {person_id!r} has no seat and is not on the waiting list")


def reconcile_seats(
    blocks: Sequence[SeatBlock],
    signups: Sequence[SeatRequest],
    seats: Mapping[str, SeatRef],
    waitlist: Sequence[str],
    *,
    fill_free_seats: bool = True,
) -> SeatAllocation:
    """Bring an earlier allocation up to date with the sign-ups as they are now.

    Nobody who keeps a seat moves. Who is no longer signed up leaves; who lost a seat because a
    block shrank or went goes to the head of the line (in sign-up order); new sign-ups join the
    end in sign-up order; then free seats go to the first in line, unless `fill_free_seats` is
    off (after the cut-off a seat stays empty rather than going to someone who cannot come).
    """
    _validate_blocks(blocks)
    ordered = sorted(signups, key=lambda s: s.signed_up_at)
    present = {s.person_id for s in ordered}
    valid = set(_all_seats(blocks))
    kept = {p: ref for p, ref in seats.items() if p in present and ref in valid}
    bumped = [s.person_id for s in ordered if s.person_id in seats and s.person_id not in kept]
    waiting = [p for p in waitlist if p in present and p not in kept]
    new = [s.person_id for s in ordered if s.person_id not in seats and s.person_id not in waitlist]
    allocation = SeatAllocation(tuple(blocks), kept, tuple(dict.fromkeys(bumped + waiting + new)))
    if not fill_free_seats:
        return allocation
    free = allocation.free_seats()
    promoted = dict(zip(allocation.waitlist, free, strict=False))
    return SeatAllocation(
        allocation.blocks,
        {**kept, **promoted},
        allocation.waitlist[len(promoted) :],
    )


def _release(allocation: SeatAllocation, person_id: str) -> SeatUpdate:
    seat = allocation.seats[person_id]
    seats = {p: s for p, s in allocation.seats.items() if p != person_id}
    changes = [SeatChange(person_id, SeatChangeKind.RELEASED, seat=seat)]
    waitlist = allocation.waitlist
    if waitlist:
        promoted, waitlist = waitlist[0], waitlist[1:]
        seats[promoted] = seat
        changes.append(SeatChange(promoted, SeatChangeKind.SEATED, seat=seat))
        changes.extend(_moved_up(waitlist, 0))
    return SeatUpdate(replace(allocation, seats=seats, waitlist=waitlist), tuple(changes))


def _moved_up(waitlist: tuple[str, ...], start: int) -> list[SeatChange]:
    return [
        SeatChange(p, SeatChangeKind.WAITLIST_MOVED, waitlist_position=i + 1)
        for i, p in enumerate(waitlist)
        if i >= start
    ]


def _validate_blocks(blocks: Sequence[SeatBlock]) -> None:
    seen: set[str] = set()
    for block in blocks:
        if block.id in seen:
            raise SeatError(f"{block.id!r} is listed twice")
        if block.seats < 0:
            raise SeatError(f"{block.id!r} has a negative number of seats ({block.seats})")
        seen.add(block.id)


def _all_seats(blocks: Sequence[SeatBlock]) -> list[SeatRef]:
    return [SeatRef(block.id, n) for block in blocks for n in range(1, block.seats + 1)]
