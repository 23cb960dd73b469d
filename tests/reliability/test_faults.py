"""The fault suite: a burst of sign-ups through the API while something breaks, then the
guarantees of ARCHITECTURE.md, checked once everything has settled:
every acknowledged sign-up exists exactly once; each person got exactly one confirmation;
reporting counts what registration stores; no outbox row unsent; no message waiting, unacked or
in a retry or dead-letter queue.

The four services run as `nameko run` processes under supervisord, as `lob run` runs them, on
PostgreSQL (a database each) and RabbitMQ (a vhost of this run), each reached through a
lob_testing.TcpProxy: cutting the proxy is a broker or database restart for the services only,
never for the other users of this machine's servers (see lob_testing.faults).

Sizes come from LOB_FAULT_* (lob_testing.faults.Settings); `make soak` runs a long burst. Each
case prints its figures; the run ends with a table of them (docs/reliability.md keeps it).
"""

from __future__ import annotations

import random
import re
import time

import pytest

from lob_cli.services import SERVICES
from lob_testing import poll
from lob_testing.faults import FIGURES, Burst, Duplicator, Examination, Settings, settle

SETTINGS = Settings.from_env()
# The hard bound of one case: its burst with the faults, then settling.
CASE_TIMEOUT = int(120 + SETTINGS.burst_seconds + SETTINGS.settle_seconds)
pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(CASE_TIMEOUT)]

# The one duplicate no outbox can remove: notifications killed between the SMTP server's 250 and
# its commit of "sent". Another process takes the message over when the claim's lease runs out
# (about a minute) and sends it again with the same Message-ID (docs/notifications.md).
KILL_DEFECT = (
    "a notifications process killed between the SMTP server accepting a mail and recording it "
    "sends that mail again after the lease, with the same Message-ID (docs/notifications.md)."
)


def wait_for_progress(burst: Burst, share: float) -> int:
    """Block until `share` of the burst is answered (or the burst is over); return how many."""
    target = int(share * len(burst.sign_ups))
    poll(
        lambda: burst.done >= target,
        timeout=SETTINGS.burst_seconds,
        interval=0.02,
        what=f"{target} answers",
    )
    return burst.done


def conclude(
    case: str,
    settings,
    burst: Burst,
    faults: list[str],
    found: Examination,
    took: float,
    known_defect: str | None = None,
) -> None:
    row = {
        "case": case,
        "faults": "; ".join(faults) or "none",
        **found.figures,
        "recover_s": took,
        "settings": f"{settings} (seed {settings.seed}; rerun with LOB_FAULT_SEED)",
    }
    FIGURES.append(row)
    print(f"\n{case}: {row}")
    # Only the named defect is excused: every problem is a resend with the same Message-ID.
    resends_only = all(
        re.fullmatch(r"(\d+) duplicate confirmations \(\1 with the same Message-ID\)", p)
        for p in found.problems
    )
    if found.problems and known_defect and resends_only:
        pytest.xfail(f"{known_defect} Found: {found.problems}")
    assert not found.problems, f"{case} (seed {settings.seed}): {found.problems}"


def outage_case(system, settings, case: str, proxy, rng: random.Random) -> None:
    pids = system.pids()
    system.publish_activity(case)
    burst = Burst(system, case, settings.sign_ups, settings.clients).start()
    at = wait_for_progress(burst, rng.uniform(0.2, 0.5))
    proxy.cut()
    # The fault itself lasts this long; nothing is being waited for.
    time.sleep(settings.outage_seconds)
    proxy.open()
    restored = time.monotonic()
    burst.join(timeout=SETTINGS.burst_seconds)
    found, _ = settle(system, burst, settings.settle_seconds)
    took = time.monotonic() - restored
    faults = [f"{case.split('-')[1]} cut for {settings.outage_seconds:g} s at {at} answers"]
    # A broker or database outage costs a few seconds of /readyz, never a process.
    assert system.pids() == pids, f"a service died: {pids} -> {system.pids()}\n{system.logs()}"
    conclude(case, settings, burst, faults, found, took)


def test_kill_9_of_each_service_in_turn_mid_burst(system, settings):
    """supervisord restarts the killed service; the clients retry with the same key."""
    rng = random.Random(settings.seed)
    case = "fault-kill"
    system.publish_activity(case)
    order = list(SERVICES)
    rng.shuffle(order)
    points = sorted(rng.uniform(0.05, 0.8) for _ in order)
    pids = system.pids()
    burst = Burst(system, case, settings.sign_ups, settings.clients).start()
    faults = []
    for name, point in zip(order, points, strict=True):
        at = wait_for_progress(burst, point)
        back = system.kill(name)
        faults.append(f"kill -9 {name} at {at} answers (ready after {back:.1f} s)")
    restored = time.monotonic()
    burst.join(timeout=SETTINGS.burst_seconds)
    found, _ = settle(system, burst, settings.settle_seconds)
    took = time.monotonic() - restored
    after = system.pids()
    assert all(after[name] != pids[name] for name in SERVICES), (pids, after)
    conclude(case, settings, burst, faults, found, took, known_defect=KILL_DEFECT)


def test_broker_outage_mid_burst(system, settings):
    """Every AMQP connection reset and refused for a while: a RabbitMQ restart, to the services."""
    outage_case(system, settings, "fault-broker", system.broker_proxy, random.Random(settings.seed))


def test_database_outage_mid_burst(system, settings):
    """Every PostgreSQL connection reset and refused for a while: a database restart."""
    rng = random.Random(settings.seed + 1)
    outage_case(system, settings, "fault-database", system.database_proxy, rng)


def test_a_duplicate_of_every_event(system, settings):
    """Each event every relay published is delivered a second time, while the burst runs."""
    case = "fault-duplicates"
    pids = system.pids()
    system.publish_activity(case)
    duplicator = Duplicator(system).start()
    burst = Burst(system, case, settings.sign_ups, settings.clients).start()
    try:
        burst.join(timeout=SETTINGS.burst_seconds)
    finally:
        duplicator.stop()
    ended = time.monotonic()
    found, _ = settle(system, burst, settings.settle_seconds, before_each=duplicator.scan)
    took = time.monotonic() - ended
    assert system.pids() == pids, f"a service died\n{system.logs()}"
    assert duplicator.published >= found.figures["stored"], "not every sign-up was duplicated"
    faults = [f"{duplicator.published} events delivered twice"]
    conclude(case, settings, burst, faults, found, took)
