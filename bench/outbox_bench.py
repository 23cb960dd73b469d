"""Outbox relay benchmark: CPU per event of a producer's relay while commits arrive at a rate.

A green thread commits one event (a signed_up, as a sign-up does) at a fixed rate; the relay
runs as in a service (woken on commit) in the same process. Reported: the process's CPU per
event (user + system) with the relay running, minus the same commits without a relay (so: the
relay's own CPU per event), the batches it published and the delay from commit to confirm.
PostgreSQL and an isolated vhost on 127.0.0.1.

    .venv/bin/python bench/outbox_bench.py [--rates 15,50] [--seconds 10]
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

from sqlalchemy import Engine, MetaData  # noqa: E402

from lob_common.db import DatabaseHandle, make_engine, messaging_tables  # noqa: E402
from lob_common.outbox import OutboxRelay  # noqa: E402
from lob_testing import isolated_postgres_database, isolated_vhost, sample  # noqa: E402

SIGNED_UP = sample("signed_up")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def commits(db: DatabaseHandle, rate: float, seconds: float, first: int) -> int:
    """Commit one event every 1/rate s (open loop); return how many."""
    count = int(rate * seconds)
    began = time.monotonic()
    for n in range(count):
        eventlet.sleep(max(0.0, began + n / rate - time.monotonic()))
        with db() as uow:
            uow.emit("signed_up", dict(SIGNED_UP, registration_id=f"r{first + n}"))
            uow.commit()
    return count


def run(amqp_uri: str, engine: Engine, metadata: MetaData, rate: float, seconds: float) -> dict:
    # Without a relay: what the commits alone cost.
    db = DatabaseHandle(engine, metadata)
    began = cpu_seconds()
    alone = commits(db, rate, seconds, first=0)
    commit_cpu = (cpu_seconds() - began) / alone
    relay = OutboxRelay(engine, metadata, "registration", amqp_uri)
    relay.publish_pending()  # the backlog of the run above, and the topology
    db = DatabaseHandle(engine, metadata, on_commit=relay.wake)  # as the Database provider
    batches: list[int] = []
    publish_batch = relay._publish_batch

    def counting() -> int:
        got = publish_batch()
        if got:
            batches.append(got)
        return got

    relay._publish_batch = counting
    thread = eventlet.spawn(relay.run)
    eventlet.sleep(0.2)
    began = cpu_seconds()
    count = commits(db, rate, seconds, first=alone)
    while sum(batches) < count:
        eventlet.sleep(0.01)
    with_relay = (cpu_seconds() - began) / count
    relay.stop()
    thread.wait()
    return {
        "rate_per_second": rate,
        "events": count,
        "batches": len(batches),
        "events_per_batch": round(count / max(len(batches), 1), 1),
        "commit_cpu_ms_per_event": round(commit_cpu * 1000, 2),
        "relay_cpu_ms_per_event": round((with_relay - commit_cpu) * 1000, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="15,50", help="commits per second")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with isolated_vhost() as amqp_uri, isolated_postgres_database() as url:
        metadata = MetaData()
        messaging_tables(metadata)
        engine = make_engine(url)
        metadata.create_all(engine)
        for rate in (float(r) for r in args.rates.split(",")):
            print(json.dumps(run(amqp_uri, engine, metadata, rate, args.seconds)), flush=True)
        engine.dispose()


if __name__ == "__main__":
    main()
