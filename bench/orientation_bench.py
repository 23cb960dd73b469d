"""Orientation afternoons and bus tours: quality against first come, first served, and speed.

Orientation: seeded synthetic dates (skewed workshop popularity, per-school taste, 1-3 ranks,
rooms at a given tightness) are allocated by `allocate_workshops` (exact min-cost flow) and by
first come, first served in sign-up order (what a sign-up form with a counter does). Reported:
pupils seated, seats by rank, the mean rank, the smallest share of its pupils a school got
seated, and seconds.

Bus tour: `plan_itinerary` on seeded random tours of 6, 8 and 10 stops with opening windows.

    .venv/bin/python bench/orientation_bench.py
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta

from scheduling.domain.itinerary import ItineraryError, Stop, plan_itinerary
from scheduling.domain.orientation import Workshop, WorkshopRequest, allocate_workshops

OPENS = datetime(2026, 11, 2, 9, 0)

# name: (pupils, workshops, schools, seed, tightness = seats / pupils)
DATES = {
    "date-450-w24": (450, 24, 16, 1, 1.1),
    "date-450-w24-tight": (450, 24, 16, 2, 0.9),
    "date-1300-w40": (1300, 40, 24, 3, 1.0),
    "date-5000-w120": (5000, 120, 60, 4, 1.0),
    "date-13000-w300": (13000, 300, 160, 5, 1.0),
}


def generate(pupils: int, workshops: int, schools: int, seed: int, tightness: float):
    rng = random.Random(seed)
    popularity = [rng.paretovariate(1.5) for _ in range(workshops)]
    seats = pupils * tightness
    # Rooms are sized by a flattened popularity: the popular ones are still oversubscribed.
    weights = [p**0.5 for p in popularity]
    capacity = [max(4, round(seats * w / sum(weights))) for w in weights]
    ids = [f"w{i:03d}" for i in range(workshops)]
    taste = [[p * rng.uniform(0.3, 3.0) for p in popularity] for _ in range(schools)]
    requests = []
    for n in range(pupils):
        school = rng.randrange(schools)
        ranks = rng.choices((1, 2, 3), weights=(1, 2, 7))[0]
        chosen: list[str] = []
        while len(chosen) < ranks:
            pick = rng.choices(ids, weights=taste[school])[0]
            if pick not in chosen:
                chosen.append(pick)
        requests.append(
            WorkshopRequest(
                f"p{n:05d}",
                f"school{school:03d}",
                tuple(chosen),
                OPENS + timedelta(seconds=rng.randrange(14 * 24 * 3600)),
            )
        )
    return [Workshop(i, c) for i, c in zip(ids, capacity, strict=True)], requests


def first_come(workshops, requests) -> dict[str, int | None]:
    """Rank each pupil gets when each takes their best workshop with a seat left, in order."""
    left = {w.id: w.capacity for w in workshops}
    got: dict[str, int | None] = {}
    for request in sorted(requests, key=lambda r: r.signed_up_at):
        got[request.pupil_id] = None
        for rank, workshop in enumerate(request.ranking, start=1):
            if left[workshop] > 0:
                left[workshop] -= 1
                got[request.pupil_id] = rank
                break
    return got


def summary(requests, ranks: dict[str, int | None]) -> dict[str, object]:
    seated = [r for r in ranks.values() if r is not None]
    by_school: dict[str, list[int]] = {}
    for request in requests:
        counts = by_school.setdefault(request.school_id, [0, 0])
        counts[0] += 1
        counts[1] += ranks[request.pupil_id] is not None
    histogram = Counter(seated)
    return {
        "seated": len(seated),
        "ranks": "/".join(str(histogram.get(k, 0)) for k in (1, 2, 3)),
        "mean_rank": sum(seated) / len(seated),
        "worst_school": min(s / n for n, s in by_school.values()),
    }


def bench_dates() -> None:
    print(
        "| date | pupils | seats | method | seated | 1st/2nd/3rd | mean rank | worst school | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, params in DATES.items():
        workshops, requests = generate(*params)
        seats = sum(w.capacity for w in workshops)
        started = time.perf_counter()
        allocation = allocate_workshops(workshops, requests)
        seconds = time.perf_counter() - started
        ours = summary(requests, {r.pupil_id: allocation.rank_of(r.pupil_id) for r in requests})
        started = time.perf_counter()
        theirs = summary(requests, first_come(workshops, requests))
        fcfs_seconds = time.perf_counter() - started
        for method, result, took in (("flow", ours, seconds), ("fcfs", theirs, fcfs_seconds)):
            print(
                f"| {name} | {len(requests)} | {seats} | {method} | {result['seated']} | "
                f"{result['ranks']} | {result['mean_rank']:.3f} | "
                f"{result['worst_school']:.0%} | {took:.2f} |"
            )


def bench_tours() -> None:
    print()
    print("| stops | tours | feasible | mean ms | max ms |")
    print("|---|---|---|---|---|")
    depot = Stop("depot", "Amersfoort Centraal", lat=52.1533, lon=5.3731)
    departure = datetime(2027, 2, 19, 8, 30)
    for count in (6, 8, 10):
        rng = random.Random(count)
        times, feasible = [], 0
        for _ in range(20):
            stops = []
            for i in range(count):
                opens = rng.choice((8, 9, 10, 11, 12))
                stops.append(
                    Stop(
                        f"s{i}",
                        f"Locatie {i}",
                        rng.choice((30, 40, 45)),
                        datetime(2027, 2, 19, opens).time(),
                        datetime(2027, 2, 19, min(opens + 5, 23)).time(),
                        52.0 + rng.random() * 0.3,
                        5.0 + rng.random() * 0.6,
                    )
                )
            started = time.perf_counter()
            try:
                plan_itinerary(depot, departure, stops)
                feasible += 1
            except ItineraryError:
                pass
            times.append((time.perf_counter() - started) * 1000)
        print(f"| {count} | 20 | {feasible} | {sum(times) / 20:.1f} | {max(times):.1f} |")


if __name__ == "__main__":
    bench_dates()
    bench_tours()
