"""Properties of the info-day solver on small random instances, judged by the reference scorer
and the reference first-come-first-served plan (shared/bench/infoday), and by brute force
where the instance is small enough to try every plan."""

import importlib.util
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.domain.infoday import InfoDayInstance, assign_programmes

SHARED = Path(__file__).resolve().parents[4].parent / "shared" / "bench" / "infoday"
BRUTE_FORCE_LIMIT = 5_000  # plans to try at most


def _load(name):
    spec = importlib.util.spec_from_file_location(f"reference_{name}", SHARED / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


score = _load("score")
greedy = _load("greedy")


@st.composite
def instances(draw):
    """Raw instances as in the JSON format: 1-3 rounds, 1-5 sessions (some in fewer rounds,
    some without seats), 1-6 pupils with up to 3 choices and a backup (repeats allowed)."""
    rounds = draw(st.integers(1, 3))
    n_sessions = draw(st.integers(1, 5))
    ids = [f"S{i}" for i in range(n_sessions)]
    sessions = [
        {
            "id": sid,
            "capacity": draw(st.integers(0, 3)),
            "rounds": sorted(draw(st.sets(st.integers(1, rounds), min_size=1))),
        }
        for sid in ids
    ]
    pupils = []
    for p in range(draw(st.integers(1, 6))):
        choices = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3))
        pupils.append(
            {
                "id": f"P{p}",
                "school": draw(st.sampled_from(["A", "B"])),
                "choices": choices,
                "backup": draw(st.sampled_from(ids)),
            }
        )
    return {
        "kind": "infoday",
        "version": 1,
        "rounds": rounds,
        "sessions": sessions,
        "pupils": pupils,
    }


def programmes(raw, pupil):
    """Every row one pupil can have on its own: per round a session that runs then, or none."""
    options = [
        [None] + [s["id"] for s in raw["sessions"] if r in s["rounds"] and s["capacity"] > 0]
        for r in range(1, raw["rounds"] + 1)
    ]
    rows = []
    for row in itertools.product(*options):
        taken = [s for s in row if s is not None]
        if len(taken) == len(set(taken)):
            rows.append(list(row))
    return rows


def brute_force_optimum(raw):
    """The best objective over every valid plan, or None when there are too many to try."""
    per_pupil = [programmes(raw, p) for p in raw["pupils"]]
    count = 1
    for rows in per_pupil:
        count *= len(rows)
    if count > BRUTE_FORCE_LIMIT:
        return None
    best = -1
    ids = [p["id"] for p in raw["pupils"]]
    for combination in itertools.product(*per_pupil):
        violations, metrics = score.evaluate(
            raw, {"assignments": dict(zip(ids, combination, strict=True))}
        )
        if not violations:
            best = max(best, metrics["objective"])
    return best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_every_plan_is_valid_beats_first_come_first_served_and_respects_its_bounds(raw):
    plan = assign_programmes(InfoDayInstance.from_dict(raw))

    violations, metrics = score.evaluate(raw, plan.to_dict())
    assert violations == []
    assert metrics["objective"] == plan.metrics.objective
    _, baseline = score.evaluate(raw, greedy.greedy(raw))
    assert metrics["objective"] >= baseline["objective"]
    assert metrics["objective"] <= plan.upper_bound
    assert metrics["seated"] <= plan.seats_bound


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_where_brute_force_can_try_every_plan_the_solver_finds_the_optimum(raw):
    optimum = brute_force_optimum(raw)
    plan = assign_programmes(InfoDayInstance.from_dict(raw))

    if optimum is not None:
        assert plan.metrics.objective == optimum
        assert plan.upper_bound >= optimum
