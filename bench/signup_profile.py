"""Where a sign-up's time goes: registration's use case in-process, with every SQL statement
counted (an SQLAlchemy event listener) and cProfile's top functions.

No HTTP, no broker: the key check and the sign-up as the API runs them (`auth.authenticate`,
`handlers.sign_up`) on a fresh database seeded with the demo season; the events stay in the
outbox. Prints the statements of one sign-up and the profile of N.

    .venv/bin/python bench/signup_profile.py [--sign-ups 300] [--postgres] [--top 25]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
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
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
        print(out.getvalue())
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ups", type=int, default=300)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    run(args.sign_ups, args.postgres, args.top)


if __name__ == "__main__":
    main()
