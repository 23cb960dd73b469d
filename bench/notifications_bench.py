"""Notifications: N programme mails with calendar invitations, rendered and delivered to a local
SMTP sink (aiosmtpd, its own process), the sending-rate limit off.

What runs is notifications' own delivery path, in this process, as the service's sending loop
runs it (notifications/sending.py): N `programme_assigned` messages (three info-day rounds with
times and rooms, a workshop, `from_waitlist` off) are queued in a fresh SQLite database and their
ids handed over as the event handlers do; two lanes (green threads, as under `nameko run`) each
take batches of up to 50 and deliver them: one claim statement (a fenced claim per message), the
contacts of the batch in one call, the Jinja2 templates (plain text + HTML) and the .ics
(REQUEST, VTIMEZONE) per mail, one SMTP connection per lane, the outcomes recorded with their
`notification_sent` outbox rows (a few commits per batch). The contacts come from a function
instead of registration's RPC (that round trip belongs to the sign-up benchmark). The sink counts
Message-IDs; the run checks every message arrived exactly once. Reported: wall time, CPU time of
this process (per mail), mails per second, the resident memory at each quarter and the peak
(ru_maxrss), the load average before and after.

    .venv/bin/python bench/notifications_bench.py [--count 10000] [--quick] [--lanes 2]
"""

# ruff: noqa: E402 - eventlet patches the standard library before anything imports it
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # as `nameko run` does: the lanes are green threads

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventlet.queue import LightQueue

from lob_common.db import DatabaseHandle, make_engine, migrate
from lob_testing import free_port, poll, port_open
from notifications import handlers
from notifications.adapters.smtp import Mailer, RateLimiter
from notifications.adapters.tables import Base, Message
from notifications.domain.samples import CONTACT
from notifications.sending import STOP, next_batch
from notifications.service import MIGRATIONS

SINK = textwrap.dedent(
    """
    import sys, time
    from aiosmtpd.controller import Controller

    class Count:
        def __init__(self, path):
            self.out = open(path, "a", buffering=1)

        async def handle_DATA(self, server, session, envelope):
            for line in envelope.content.split(b"\\r\\n"):
                if line.lower().startswith(b"message-id:"):
                    self.out.write(line.split(b":", 1)[1].strip().decode() + "\\n")
                    break
            return "250 OK"

    controller = Controller(Count(sys.argv[2]), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    while True:
        time.sleep(1)
    """
)

PROGRAMME = {
    "plan_version": 1,
    "sessions": [
        {
            "round": n,
            "session_id": f"S{n:02d}",
            "title": title,
            "room": f"Lokaal {100 + n}",
            "starts_at": f"2030-12-10T{7 + n:02d}:15:00+00:00",
            "ends_at": f"2030-12-10T{7 + n:02d}:55:00+00:00",
        }
        for n, title in ((1, "Zorg & Welzijn"), (2, "ICT & Software"), (3, "Techniek"))
    ],
    "workshop": {"workshop_id": "w1", "title": "Bouwen", "location": "Hal B"},
}


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def queue(db: DatabaseHandle, count: int) -> list[str]:
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    table = Message.__table__
    for start in range(0, count, 1000):  # in slices, so the peak RSS is the delivery's
        with db() as uow:
            uow.session.execute(
                table.insert(),
                [
                    {
                        "id": message_id,
                        "source_event_id": str(uuid.uuid4()),
                        "template": "programme_assigned",
                        "registration_id": f"r{n}",
                        "person_id": f"p{n}",
                        "activity_id": "voorlichtingsdag-2030",
                        "data": {**PROGRAMME, "sequence": 1},
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now - timedelta(seconds=1),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n, message_id in enumerate(ids[start : start + 1000], start)
                ],
            )
            uow.commit()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1000 mails instead")
    parser.add_argument(
        "--lanes", type=int, default=2, help="batches delivered at once, as the service's loop"
    )
    args = parser.parse_args()
    count = 1000 if args.quick else args.count

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        port, ids_file = free_port(), root / "ids.txt"
        script = root / "sink.py"
        script.write_text(SINK)
        sink = subprocess.Popen([sys.executable, str(script), str(port), str(ids_file)])
        try:
            poll(lambda: port_open(port), what="the SMTP sink")
            engine = make_engine(f"sqlite:///{root}/notifications.db")
            migrate(engine, MIGRATIONS)
            db = DatabaseHandle(engine, Base.metadata)
            ids_in_order = queue(db, count)
            limiter = RateLimiter(0)  # unlimited

            def contacts(registration_id: str) -> dict:
                return {**CONTACT, "registration_id": registration_id, "person_id": registration_id}

            def contacts_many(registration_ids: list[str]) -> dict:  # registration's `contacts`
                return {rid: contacts(rid) for rid in registration_ids}

            policy = handlers.DeliveryPolicy(max_attempts=3)
            handed_over: LightQueue = LightQueue()
            for message_id in ids_in_order:  # as the event handlers hand them over
                handed_over.put(message_id)
            for _ in range(args.lanes):
                handed_over.put(STOP)
            rss, sent = [rss_mib()], [0]

            def lane() -> None:
                mailer = Mailer({"SMTP_PORT": port})
                try:
                    while True:
                        batch, stopping = next_batch(handed_over, handlers.BATCH_SIZE)
                        if batch:
                            outcomes = handlers.deliver_due(
                                db,
                                contacts,
                                mailer.send,
                                policy,
                                batch,
                                contacts_many=contacts_many,
                                pace=limiter.wait,
                            )
                            sent[0] += outcomes.get("sent", 0)
                            if sent[0] * 4 // count > len(rss) - 1:
                                rss.append(rss_mib())
                        if stopping:
                            return
                finally:
                    mailer.close()

            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            cpu_started = time.process_time()
            for thread in [eventlet.spawn(lane) for _ in range(args.lanes)]:
                thread.wait()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            poll(
                lambda: ids_file.exists() and len(ids_file.read_text().split()) >= count,
                timeout=60,
                what="every mail at the sink",
            )
            ids = ids_file.read_text().split()
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    result = {
        "mails": count,
        "lanes": args.lanes,
        "sent": sent[0],
        "at_sink": len(ids),
        "distinct_message_ids": len(set(ids)),
        "wall_s": round(elapsed, 1),
        "cpu_s": round(cpu, 1),
        "cpu_ms_per_mail": round(cpu * 1000 / count, 2),
        "mails_per_s": round(sent[0] / elapsed, 1),
        "rss_mib_by_quarter": [round(r, 1) for r in rss],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    print(json.dumps(result, indent=2))
    assert len(ids) == len(set(ids)) == count, "every mail exactly once"


if __name__ == "__main__":
    main()
