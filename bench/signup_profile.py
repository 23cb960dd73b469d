"""Where a sign-up's time goes: registration's use case in-process, with every SQL statement
counted (an SQLAlchemy event listener) and cProfile's top functions.

No HTTP, no broker: the key check and the sign-up as the API runs them (`auth.authenticate`,
`handlers.sign_up`) on a fresh database seeded with the demo season; the events stay in the
outbox. Prints the statements of one sign-up and the profile of N.

With --http, the whole registration process instead: `nameko run` under cProfile (HTTP server,
worker, key check, sign-up, the outbox relay publishing to an isolated vhost), N sign-ups posted
to it by 4 clients from this process, and its CPU seconds per sign-up from /proc (without the
profiler: a second run, --http-cpu). cProfile's attribution across eventlet's green threads is
approximate; the call counts and own times are what to read.

    .venv/bin/python bench/signup_profile.py [--sign-ups 300] [--postgres] [--top 25]
    .venv/bin/python bench/signup_profile.py --http [--sign-ups 300] [--postgres] [--no-profile]
        [--py-spy stacks.txt]   # with py-spy installed (not a dependency): collapsed stacks
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event

from lob_testing import isolated_postgres_database

BIN = Path(sys.executable).parent
KEY = "profile-operator-key"


def _statement_kind(sql: str) -> str:
    words = sql.split()
    head = words[0].upper() if words else "?"
    if head in ("SELECT", "DELETE", "UPDATE"):
        table = next((w for w in words if w.upper() == "FROM" or w.upper() == "UPDATE"), None)
        index = words.index(table) + 1 if table else None
        name = words[index] if index is not None and index < len(words) else "?"
        return f"{head} {name if head != 'UPDATE' else words[1]}"
    if head == "INSERT":
        return f"INSERT {words[2]}"
    return head


def run(sign_ups: int, postgres: bool, top: int) -> None:
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if postgres:
            url = stack.enter_context(isolated_postgres_database())
        else:
            url = f"sqlite:///{root}/registration.db"
        env = {"REGISTRATION_DATABASE_URL": url, "LOB_OPERATOR_KEY": KEY}
        for name in ("scheduling", "notifications", "reporting"):
            env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{root}/{name}.db"
        os.environ.update(env)
        subprocess.run([str(BIN / "lob"), "seed-demo"], check=True, capture_output=True, cwd=root)

        from lob_cli.services import open_database
        from registration import auth, handlers

        db = open_database("registration")
        auth.authenticate(db, KEY, KEY)  # the operator key works
        starts = datetime.now(UTC) + timedelta(days=40)
        from registration.schemas import ActivityIn

        activity = {
            "id": "profile",
            "kind": "career_event",
            "title": "Loopbaanevenement",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "location": "Amersfoort",
        }
        handlers.publish_activity(db, ActivityIn().load(activity), None)

        statements: list[str] = []
        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda _c, _cur, sql, *_: statements.append(" ".join(sql.split())),
        )

        def one(n: int) -> None:
            caller = auth.authenticate(db, KEY, KEY)
            handlers.sign_up(
                db,
                {
                    "activity_id": "profile",
                    "first_name": f"Leerling{n}",
                    "last_name": "Profiel",
                    "email": f"p{n}@example.nl",
                    "date_of_birth": "2009-01-01",
                    "school_id": "farel-college",
                    "school_year": 4,
                },
                caller,
                f"key-{n}",
            )

        one(-1)  # warm: caches, prepared mappers
        statements.clear()
        one(0)
        print(f"one sign-up: {len(statements)} SQL statements")
        for kind, count in Counter(_statement_kind(s) for s in statements).items():
            print(f"  {count} x {kind}")
        statements.clear()
        cpu_began, began = time.process_time(), time.perf_counter()
        for n in range(1, sign_ups + 1):
            one(-1 - n)
        cpu, took = time.process_time() - cpu_began, time.perf_counter() - began
        print(
            f"{sign_ups} sign-ups without the profiler: {cpu / sign_ups * 1000:.2f} ms CPU and "
            f"{took / sign_ups * 1000:.2f} ms wall each (load average {os.getloadavg()[0]:.1f})"
        )
        statements.clear()
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        for n in range(1, sign_ups + 1):
            one(n)
        profiler.disable()
        took = time.perf_counter() - began
        print(
            f"{sign_ups} sign-ups in {took:.2f} s ({took / sign_ups * 1000:.1f} ms each, one "
            f"client, {'PostgreSQL' if postgres else 'SQLite'}); "
            f"{len(statements) / sign_ups:.1f} statements each"
        )
        out = io.StringIO()
        order = os.environ.get("PROFILE_SORT", "cumulative")
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue())
        db.engine.dispose()


# nameko run with a profiler that SIGUSR1 starts and SIGUSR2 stops and writes (argv[1]): only
# the measured sign-ups are in the profile, not the start-up's imports.
PROFILED_NAMEKO = """
import cProfile, signal, sys
from nameko.cli.main import main
profiler, out = cProfile.Profile(), sys.argv.pop(1)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, lambda *_: (profiler.disable(), profiler.dump_stats(out)))
sys.argv[0] = "nameko"
sys.exit(main())
"""


def run_http(
    sign_ups: int,
    postgres: bool,
    top: int,
    profile: bool,
    profile_out: str | None,
    py_spy: str | None = None,
) -> None:
    """Registration as its own process (optionally under cProfile), N sign-ups over HTTP."""
    import signal
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from lob_cli.services import SERVICES
    from lob_testing import OPERATOR_KEY, isolated_vhost, poll
    from lob_testing.local import LocalSystem, cpu_seconds

    sys.path.insert(0, str(Path(__file__).parent))
    from signup_bench import processes_named, publish_activity, sign_up_body

    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        system = LocalSystem(root, stack.enter_context(isolated_vhost()))
        if postgres:
            url = stack.enter_context(isolated_postgres_database())
            system.env["REGISTRATION_DATABASE_URL"] = url
        system.env["LOG_LEVEL"] = "WARNING"
        system.lob("seed-demo")
        info = SERVICES["registration"]
        stats = root / "registration.prof"
        command = [str(BIN / "nameko"), "run", "--config", str(info.config_path), info.entry]
        if profile:
            command = [sys.executable, "-c", PROFILED_NAMEKO, str(stats), *command[1:]]
        log = open(root / "registration.log", "w")  # noqa: SIM115
        process = subprocess.Popen(command, env=system.env, cwd=root, stdout=log, stderr=log)
        stack.callback(lambda: process.poll() is None and process.kill())
        system.processes["registration"] = process
        poll(lambda: system._ready("registration"), timeout=90, what="registration")
        publish_activity(system, "profile")
        headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        base = system.url("registration")
        local_sessions: dict[int, requests.Session] = {}

        def post(n: int) -> None:
            import threading

            session = local_sessions.setdefault(threading.get_ident(), requests.Session())
            answer = session.post(
                f"{base}/registrations", headers=headers, json=sign_up_body("profile", n)
            )
            assert answer.status_code == 201, answer.text

        for n in range(20):  # warm up: mappers, caches, connections
            post(-1 - n)
        database = url.rsplit("/", 1)[-1] if postgres else None

        def database_cpu() -> dict[int, float]:
            """CPU seconds of each of registration's PostgreSQL backends (by process title)."""
            if database is None:
                return {}
            pids = processes_named(lambda c: c.startswith("postgres:") and f" {database} " in c)
            return {pid: s for pid in pids if (s := cpu_seconds(pid)) is not None}

        database_before = database_cpu()
        cpu_before = cpu_seconds(process.pid)
        if profile:
            process.send_signal(signal.SIGUSR1)
        if py_spy:  # a sampling profiler outside the process: no cProfile overhead or skew
            spy_command = ["py-spy", "record", "--pid", str(process.pid), "--rate", "250"]
            spy = subprocess.Popen(
                [*spy_command, "--format", "raw", "--output", py_spy],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)  # py-spy attaches
        began = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, range(sign_ups)))
        took = time.perf_counter() - began
        time.sleep(1.5)  # let the relay publish the last events (their CPU counts too)
        cpu = cpu_seconds(process.pid) - cpu_before
        if py_spy:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        database_after = database_cpu()
        database_ms = (
            1000
            / sign_ups
            * sum(s - database_before.get(pid, 0.0) for pid, s in database_after.items())
        )
        if profile:
            process.send_signal(signal.SIGUSR2)
            poll(stats.exists, timeout=30, what="the profile")
            time.sleep(0.5)  # dump_stats writes it whole
        print(
            f"{sign_ups} sign-ups over HTTP in {took:.2f} s; registration process CPU "
            f"{cpu / sign_ups * 1000:.2f} ms per sign-up"
            f"{' (under cProfile)' if profile else ''}"
            f"{f', its PostgreSQL {database_ms:.2f} ms' if postgres else ''} "
            f"({'PostgreSQL' if postgres else 'SQLite'}, load average {os.getloadavg()[0]:.1f})"
        )
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if profile:
            if profile_out:
                shutil.copy(stats, profile_out)
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(str(stats), stream=out).sort_stats(order).print_stats(top)
                print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ups", type=int, default=300)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--http", action="store_true", help="the whole process, over HTTP")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--profile-out", help="--http: keep the profile (pstats) here")
    parser.add_argument(
        "--py-spy",
        help="--http: also sample the process with py-spy (if installed) into this file, "
        "as collapsed stacks (flamegraph.pl's input); best with --no-profile",
    )
    args = parser.parse_args()
    if args.http:
        run_http(
            args.sign_ups, args.postgres, args.top, args.profile, args.profile_out, args.py_spy
        )
    else:
        run(args.sign_ups, args.postgres, args.top)


if __name__ == "__main__":
    main()
