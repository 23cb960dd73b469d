"""Scheduling's own Prometheus metrics: how good the last plan is (counts and shares only).

The shared ones (runs, duration) are in lob_common.metrics; these are scheduling's alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge

PLAN_GAP = Gauge(
    "lob_schedule_gap_ratio",
    "Share of its upper bound the last plan's wish utility fell short by (0: proven optimal)",
    ["activity_kind"],
)
PLANS_SHORT = Counter(
    "lob_schedule_stopped_short_total",
    "Plans whose search stopped at its time limit or without closing its gap (see the plan's "
    "metrics: warning, gap_to_upper_bound)",
    ["activity_kind"],
)


def record_plan_quality(kind: str, metrics: Mapping[str, Any]) -> None:
    """Info days carry their bound: the gap goes to a gauge, a warning to the counter."""
    share = metrics.get("wish_share_of_bound")
    if share is None:
        return
    PLAN_GAP.labels(kind).set(round(1.0 - share, 6))
    if metrics.get("warning"):
        PLANS_SHORT.labels(kind).inc()
