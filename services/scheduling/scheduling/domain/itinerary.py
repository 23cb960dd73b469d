"""The LOB bus tour's timetable: the order in which a bus visits mbo locations, timed.

The itinerary visits every mbo location once, each within its window: `opens` is the earliest
start of the visit (arriving earlier means waiting outside), `closes` the latest moment to leave.
Among the orders that meet all windows it takes the least total travel time (return leg
included when asked), then the earliest end; remaining ties are broken deterministically. Exact:
a Held-Karp dynamic programme over subsets of stops, keeping for each (subset, last stop) the
Pareto set of (travel so far, time of leaving) - an order with more travel may still leave
earlier because it waits less, so a single best label would not be exact.

Travel times come from the matrix given with the activity (minutes, per ordered pair; the
reverse pair is used when one direction is missing) or else are estimated from coordinates:
great-circle (haversine) distance x road factor 1.3 at an average 50 km/h, rounded up to whole
minutes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

ROAD_FACTOR = 1.3
AVERAGE_SPEED_KMH = 50.0
EARTH_RADIUS_KM = 6371.0
MAX_STOPS = 10  # the DP is exact; 10 stops take well under a second, tours visit 2 to 6


class ItineraryError(ValueError):
    """Bad stops or travel times, or no order that fits; the message names the bad item."""


class ItineraryInfeasibleError(ItineraryError):
    """No visiting order meets the windows; `stop_ids` names the stops that cannot be fitted."""

    def __init__(self, message: str, stop_ids: Sequence[str]) -> None:
        super().__init__(message)
        self.stop_ids = tuple(stop_ids)


@dataclass(frozen=True)
class Stop:
    """A place on the tour. For the depot, `closes` is the latest return and visit is ignored."""

    id: str
    name: str
    visit_minutes: int = 0
    opens: time | None = None
    closes: time | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Leg:
    from_id: str
    to_id: str
    depart: datetime
    arrive: datetime
    travel_minutes: int


@dataclass(frozen=True)
class Visit:
    stop_id: str
    name: str
    arrive: datetime
    start: datetime  # later than arrive when the bus waits for the location to open
    leave: datetime

    @property
    def wait_minutes(self) -> int:
        return int((self.start - self.arrive) / timedelta(minutes=1))


@dataclass(frozen=True)
class Itinerary:
    order: tuple[str, ...]
    visits: tuple[Visit, ...]
    legs: tuple[Leg, ...]
    total_travel_minutes: int
    ends_at: datetime  # back at the depot, or leaving the last stop without a return


def estimate_travel_minutes(origin: Stop, destination: Stop) -> int:
    """Bus minutes from coordinates: haversine km x ROAD_FACTOR at AVERAGE_SPEED_KMH, rounded up.

    A rough estimate for when the activity gives no matrix; roads are longer than straight lines
    (factor 1.3 is a common detour index for Dutch regional roads) and a bus averages about
    50 km/h over town and provincial roads.
    """
    for stop in (origin, destination):
        if stop.lat is None or stop.lon is None:
            raise ItineraryError(
                f"no travel time from {origin.id!r} to {destination.id!r} and "
                f"stop {stop.id!r} has no coordinates to estimate it"
            )
    lat1, lon1, lat2, lon2 = map(
        math.radians, (origin.lat, origin.lon, destination.lat, destination.lon)
    )
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    km = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
    return math.ceil(km * ROAD_FACTOR / AVERAGE_SPEED_KMH * 60 - 1e-9)


def plan_itinerary(
    depot: Stop,
    departure: datetime,
    stops: Sequence[Stop],
    travel_minutes: Mapping[tuple[str, str], int] | None = None,
    *,
    return_to_depot: bool = True,
) -> Itinerary:
    """The visiting order with least travel that meets every window, and its timetable."""
    _validate_stops(depot, stops)
    problem = _Problem(depot, departure, tuple(stops), travel_minutes or {}, return_to_depot)
    labels = problem.solve()
    best = problem.best_tour(labels)
    if best is None:
        raise problem.diagnose(labels)
    return problem.timetable(best)


@dataclass(frozen=True)
class _Label:
    travel: int
    leave: int  # minutes after departure
    order: tuple[int, ...]


class _Problem:
    """Stops as indices 1..n (0 is the depot); all times in minutes after departure."""

    def __init__(
        self,
        depot: Stop,
        departure: datetime,
        stops: tuple[Stop, ...],
        matrix: Mapping[tuple[str, str], int],
        return_to_depot: bool,
    ) -> None:
        self.places = (depot, *stops)
        self.departure = departure
        self.return_to_depot = return_to_depot
        self.travel = [
            [0 if a is b else _travel(a, b, matrix) for b in self.places] for a in self.places
        ]
        self.opens = [self._minutes(p.opens, math.ceil, 0) for p in self.places]
        self.closes = [self._minutes(p.closes, math.floor, math.inf) for p in self.places]

    def _minutes(self, at: time | None, rounding, default: float) -> float:
        if at is None:
            return default
        moment = datetime.combine(self.departure.date(), at, tzinfo=self.departure.tzinfo)
        return rounding((moment - self.departure) / timedelta(minutes=1))

    def visit(self, index: int, arrive: int) -> int | None:
        """Leaving time at a stop reached at `arrive`, None when its window is missed."""
        leave = max(arrive, self.opens[index]) + self.places[index].visit_minutes
        return leave if leave <= self.closes[index] else None

    def solve(self) -> dict[tuple[int, int], list[_Label]]:
        n = len(self.places) - 1
        labels: dict[tuple[int, int], list[_Label]] = {}
        for i in range(1, n + 1):
            leave = self.visit(i, self.travel[0][i])
            if leave is not None:
                labels[(1 << i, i)] = [_Label(self.travel[0][i], leave, (i,))]
        for mask in range(2, 1 << (n + 1), 2):  # ascending: every subset before its supersets
            for last in range(1, n + 1):
                for label in labels.get((mask, last), ()):
                    self._extend(labels, mask, last, label, n)
        return labels

    def _extend(
        self,
        labels: dict[tuple[int, int], list[_Label]],
        mask: int,
        last: int,
        label: _Label,
        n: int,
    ) -> None:
        for j in range(1, n + 1):
            if mask & (1 << j):
                continue
            leave = self.visit(j, label.leave + self.travel[last][j])
            if leave is not None:
                new = _Label(label.travel + self.travel[last][j], leave, (*label.order, j))
                _insert_pareto(labels.setdefault((mask | 1 << j, j), []), new)

    def closing(self, label: _Label) -> tuple[int, int] | None:
        """(total travel, end time) after the optional return, None when back too late."""
        if not self.return_to_depot:
            return label.travel, label.leave
        back = self.travel[label.order[-1]][0]
        end = label.leave + back
        return (label.travel + back, end) if end <= self.closes[0] else None

    def best_tour(self, labels: Mapping[tuple[int, int], list[_Label]]) -> _Label | None:
        n = len(self.places) - 1
        if n == 0:
            return _Label(0, 0, ())
        full = (1 << (n + 1)) - 2
        candidates = []
        for last in range(1, n + 1):
            for label in labels.get((full, last), ()):
                closed = self.closing(label)
                if closed is not None:
                    candidates.append((*closed, label.order, label))
        return min(candidates)[-1] if candidates else None

    def timetable(self, label: _Label) -> Itinerary:
        visits, legs = [], []
        clock, here = 0, 0
        for index in label.order:
            visits.append(self._visit_row(index, clock + self.travel[here][index]))
            legs.append(self._leg(here, index, clock))
            clock, here = self._offset(visits[-1].leave), index
        total = label.travel
        if self.return_to_depot and label.order:
            legs.append(self._leg(here, 0, clock))
            total += self.travel[here][0]
            clock += self.travel[here][0]
        order = tuple(self.places[i].id for i in label.order)
        return Itinerary(order, tuple(visits), tuple(legs), total, self._at(clock))

    def _visit_row(self, index: int, arrive: int) -> Visit:
        start = max(arrive, self.opens[index])
        place = self.places[index]
        return Visit(
            place.id,
            place.name,
            self._at(arrive),
            self._at(start),
            self._at(start + place.visit_minutes),
        )

    def _leg(self, origin: int, destination: int, depart: int) -> Leg:
        minutes = self.travel[origin][destination]
        return Leg(
            self.places[origin].id,
            self.places[destination].id,
            self._at(depart),
            self._at(depart + minutes),
            minutes,
        )

    def _at(self, minutes: float) -> datetime:
        return self.departure + timedelta(minutes=minutes)

    def _offset(self, moment: datetime) -> int:
        return int((moment - self.departure) / timedelta(minutes=1))

    def _clock(self, minutes: float) -> str:
        return f"{self._at(minutes):%H:%M}"

    def diagnose(self, labels: Mapping[tuple[int, int], list[_Label]]) -> ItineraryInfeasibleError:
        """Name the window that breaks the tour: alone, as a pair, or what is left over."""
        return self._single_stop_problem() or self._pair_problem() or self._leftover_problem(labels)

    def _single_stop_problem(self) -> ItineraryInfeasibleError | None:
        for i, place in enumerate(self.places[1:], start=1):
            arrive = self.travel[0][i]
            leave = max(arrive, self.opens[i]) + place.visit_minutes
            if leave > self.closes[i]:
                return ItineraryInfeasibleError(
                    f"stop {place.id!r} ({place.name}) cannot be visited in its window: "
                    f"the earliest arrival is {self._clock(arrive)}, the {place.visit_minutes}-"
                    f"minute visit would end at {self._clock(leave)}, but it closes at "
                    f"{self._clock(self.closes[i])}",
                    [place.id],
                )
            if self.return_to_depot and leave + self.travel[i][0] > self.closes[0]:
                return ItineraryInfeasibleError(
                    f"after stop {place.id!r} ({place.name}) the bus cannot be back at "
                    f"{self.places[0].name} by {self._clock(self.closes[0])}",
                    [place.id],
                )
        return None

    def _pair_problem(self) -> ItineraryInfeasibleError | None:
        n = len(self.places) - 1
        for i, j in itertools.combinations(range(1, n + 1), 2):
            if not (self._pair_fits(i, j) or self._pair_fits(j, i)):
                a, b = self.places[i], self.places[j]
                return ItineraryInfeasibleError(
                    f"stops {a.id!r} ({self._window(i)}) and {b.id!r} ({self._window(j)}) "
                    f"cannot both be visited: in either order the second window is missed",
                    [a.id, b.id],
                )
        return None

    def _pair_fits(self, first: int, second: int) -> bool:
        leave = self.visit(first, self.travel[0][first])
        if leave is None:
            return False
        leave = self.visit(second, leave + self.travel[first][second])
        if leave is None:
            return False
        return not self.return_to_depot or leave + self.travel[second][0] <= self.closes[0]

    def _leftover_problem(
        self, labels: Mapping[tuple[int, int], list[_Label]]
    ) -> ItineraryInfeasibleError:
        fitting = [
            (bin(mask).count("1"), -mask)
            for (mask, _), found in labels.items()
            if any(self.closing(label) is not None for label in found)
        ]
        best = -max(fitting)[1] if fitting else 0
        n = len(self.places) - 1
        left = [i for i in range(1, n + 1) if not best & (1 << i)]
        names = ", ".join(f"{self.places[i].id!r} ({self._window(i)})" for i in left)
        return ItineraryInfeasibleError(
            f"no visiting order meets all windows: at most {n - len(left)} of {n} stops fit; "
            f"left out: {names}",
            [self.places[i].id for i in left],
        )

    def _window(self, index: int) -> str:
        opens = "any time" if self.opens[index] <= 0 else self._clock(self.opens[index])
        closes = "open end" if self.closes[index] == math.inf else self._clock(self.closes[index])
        return f"{opens}-{closes}"


def _insert_pareto(front: list[_Label], new: _Label) -> None:
    """Keep labels no other label beats on both travel and leaving time (ties: smaller order)."""
    for old in front:
        if (
            old.travel <= new.travel
            and old.leave <= new.leave
            and (old.travel, old.leave, old.order) <= (new.travel, new.leave, new.order)
        ):
            return
    front[:] = [old for old in front if not (new.travel <= old.travel and new.leave <= old.leave)]
    front.append(new)


def _travel(origin: Stop, destination: Stop, matrix: Mapping[tuple[str, str], int]) -> int:
    minutes = matrix.get((origin.id, destination.id), matrix.get((destination.id, origin.id)))
    if minutes is None:
        return estimate_travel_minutes(origin, destination)
    if minutes < 0:
        raise ItineraryError(
            f"travel time from {origin.id!r} to {destination.id!r} is negative ({minutes})"
        )
    return minutes


def _validate_stops(depot: Stop, stops: Sequence[Stop]) -> None:
    if len(stops) > MAX_STOPS:
        raise ItineraryError(f"{len(stops)} stops; the exact planner handles at most {MAX_STOPS}")
    seen = {depot.id}
    for stop in stops:
        if stop.id in seen:
            raise ItineraryError(f"stop {stop.id!r} appears twice (or is the depot)")
        seen.add(stop.id)
        if stop.visit_minutes < 0:
            raise ItineraryError(f"stop {stop.id!r} has a negative visit time")
        if _window_too_short(stop):
            raise ItineraryInfeasibleError(
                f"stop {stop.id!r} ({stop.name}) needs {stop.visit_minutes} minutes but is open "
                f"only from {stop.opens:%H:%M} to {stop.closes:%H:%M}",
                [stop.id],
            )


def _window_too_short(stop: Stop) -> bool:
    if stop.opens is None or stop.closes is None:
        return False
    day = datetime(2000, 1, 1)
    span = datetime.combine(day, stop.closes) - datetime.combine(day, stop.opens)
    return span < timedelta(minutes=stop.visit_minutes)
