"""Class rosters: how long reading a school's file takes, CSV and XLSX, 300 and 5000 pupils.

Files are generated with a seed in the shapes schools send: a Magister-style CSV (UTF-8 with
BOM, semicolons, CRLF, tussenvoegsels, an ignored Mobiel column, a few quoted names), a Dutch
Excel CSV (Windows-1252) and an .xlsx written by openpyxl with date cells and numeric student
numbers. The info-day variants add four choice columns, by id and by title. The last file is
the worst a sheet may be under the limits: 5000 pupils with 30 filled columns. About 2% of the
lines carry a problem (a date that does not exist, a missing name), so the problem path is
timed too. Each file is read `--repeat` times in this process with `read_roster` (bytes ->
rows and problems, no database); reported are the best and the median wall time, the least
CPU time (steadier than wall time on a shared machine), the split
between reading the file (`read_table`) and checking the rows (`parse_roster`), and the peak
memory Python allocated for one read (tracemalloc, a separate run, since tracing slows it).

The upload (`--part upload`) measures the endpoint end to end: the registration service runs
as its own process (as `make run` starts it, in an isolated vhost and a fresh database: SQLite,
and an isolated PostgreSQL database), and a client POSTs a Magister-style CSV of 300 and 5000
pupils of one school (no problems in it) to /activities/{id}/rosters: read, every row checked
with the sign-up rules, matched against the school's known pupils, stored with its `signed_up`
events in one transaction, answered. Timed is the HTTP request, client side: the first upload
(every pupil new), the same file again (every pupil unchanged) and a dry run. Each repeat uses
another school of the demo region, so every first upload really creates its pupils.

    .venv/bin/python bench/roster_bench.py [--part parser|upload|all] [--repeat N]
        [--sizes 300,5000] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import random
import statistics
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import requests

from registration.adapters.roster_files import CELLS_PER_LINE, read_roster, read_table
from registration.domain.roster import parse_roster

RESULTS = Path(__file__).resolve().parent / "results"
TODAY = date(2025, 11, 1)
FIRST = ["Sanne", "Daan", "Zoë", "Mohammed", "Fleur", "Lucas", "Noor", "Sem", "Chloé", "Ömer"]
FIRST += ["Lotte", "Jesse", "Anne-Sophie", "Renée", "Finn", "Yara", "Bram", "Iris", "Milan"]
LAST = ["Vries", "Bakker", "Berg", "Amrani", "Jansen", "Smit", "Dijk", "Kaya", "Hof", "Visser"]
LAST += ["Graaf", "Meijer", "Mulder", "Bos", "Yılmaz", "Dekker", "Peters", "Brink", "Bruijn"]
PREFIXES = ["", "", "", "", "de", "van", "van der", "van 't", "ter", "el"]
CLASSES = ["3B", "3KB", "4GT-a", "m3b", "H4a", "4 vmbo-k", "3-TL", "B4", "3.04", "KB3"]
SESSIONS = {f"s{i:02d}": f"Voorlichting {i} ({i % 5} mbo)" for i in range(1, 27)}
HEADER = ["Stamnummer", "Roepnaam", "Tussenvoegsel", "Achternaam", "Klas", "Geboortedatum"]
HEADER += ["E-mail", "Mobiel"]
CHOICES = ["Keuze 1", "Keuze 2", "Keuze 3", "Reserve"]


def pupils(n: int, seed: int, with_choices: bool) -> list[list[object]]:
    rng = random.Random(seed)
    rows: list[list[object]] = []
    ids = list(SESSIONS)
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if rng.random() < 0.02:
            last = f"{last}, jr."  # a separator inside a quoted cell
        born = date(2009, 9, 1) + timedelta(days=rng.randrange(3 * 365))
        row: list[object] = [
            300000 + i,
            first,
            rng.choice(PREFIXES),
            last,
            rng.choice(CLASSES),
            born,
            f"{first.lower()}.{i}@leerling.example" if rng.random() < 0.7 else "",
            f"06{rng.randrange(10**8):08d}",
        ]
        problem = rng.random()
        if problem < 0.01:
            row[5] = "31-02-2010"
        elif problem < 0.02:
            row[1] = "  "
        if with_choices:
            picked = rng.sample(ids, 4)
            row += [SESSIONS[s] if rng.random() < 0.2 else s for s in picked]
        rows.append(row)
    return rows


def as_csv(rows: list[list[object]], header: list[str], encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([v.strftime("%d-%m-%Y") if isinstance(v, date) else v for v in row])
    text = out.getvalue()
    if encoding == "cp1252":
        text = text.replace("ı", "i")  # what Excel's ANSI save does with it
    return text.encode(encoding)


def as_xlsx(rows: list[list[object]], header: list[str]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(
            [datetime.combine(v, datetime.min.time()) if isinstance(v, date) else v for v in row]
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def files(sizes: list[int]) -> dict[str, tuple[bytes, dict[str, str] | None]]:
    made: dict[str, tuple[bytes, dict[str, str] | None]] = {}
    for n in sizes:
        plain = pupils(n, seed=n, with_choices=False)
        infoday = pupils(n, seed=n + 1, with_choices=True)
        made[f"csv-utf8-bom-{n}"] = (as_csv(plain, HEADER, "utf-8-sig"), None)
        made[f"csv-cp1252-{n}"] = (as_csv(plain, HEADER, "cp1252"), None)
        made[f"csv-infoday-{n}"] = (as_csv(infoday, HEADER + CHOICES, "utf-8-sig"), SESSIONS)
        made[f"xlsx-{n}"] = (as_xlsx(plain, HEADER), None)
        made[f"xlsx-infoday-{n}"] = (as_xlsx(infoday, HEADER + CHOICES), SESSIONS)
    if max(sizes) >= 5000:
        # The worst a sheet may be under the limits: 5000 pupils, every column filled.
        extra = [f"Extra {i}" for i in range(CELLS_PER_LINE - len(HEADER))]
        wide = [row + [f"waarde {i}" for i in range(len(extra))] for row in pupils(5000, 7, False)]
        made[f"xlsx-5000-{CELLS_PER_LINE}-columns"] = (as_xlsx(wide, HEADER + extra), None)
    return made


def measure(data: bytes, sessions: dict[str, str] | None, repeat: int) -> dict[str, object]:
    totals, cpus, reads, parses = [], [], [], []
    roster = None
    for _ in range(repeat):
        cpu_started = time.process_time()
        started = time.perf_counter()
        table = read_table(data)
        read_done = time.perf_counter()
        roster = parse_roster(table, sessions=sessions, today=TODAY)
        done = time.perf_counter()
        cpus.append(time.process_time() - cpu_started)
        reads.append(read_done - started)
        parses.append(done - read_done)
        totals.append(done - started)
    tracemalloc.start()
    read_roster(data, sessions=sessions, today=TODAY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert roster is not None
    return {
        "bytes": len(data),
        "rows": len(roster.rows),
        "problems": len(roster.problems),
        "best_s": min(totals),
        "median_s": statistics.median(totals),
        "cpu_s": min(cpus),
        "read_s": statistics.median(reads),
        "check_s": statistics.median(parses),
        "peak_mib": peak / 2**20,
    }


# --- the endpoint, end to end ------------------------------------------------------------------

UPLOAD_SCHOOLS = ["farel-college", "het-element", "muurhuizen", "vmbo-trivium", "t-atrium"]


def clean_roster(n: int, seed: int) -> bytes:
    """A Magister-style CSV of `n` pupils without problems (distinct names and birth dates)."""
    rows = pupils(n, seed=seed, with_choices=False)
    seen: set[tuple[object, ...]] = set()
    for i, row in enumerate(rows):
        row[1] = FIRST[i % len(FIRST)]
        born = date(2010, 1, 1) + timedelta(days=i % 700)
        while (row[1], row[2], row[3], born) in seen:
            born += timedelta(days=1)
        row[5] = born
        seen.add((row[1], row[2], row[3], born))
    return as_csv(rows, HEADER, "utf-8-sig")


def upload_results(sizes: list[int], repeat: int, database: str) -> dict[str, dict[str, float]]:
    from lob_testing import OPERATOR_KEY, isolated_postgres_database, isolated_vhost
    from lob_testing.local import LocalSystem

    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    results: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        amqp_uri = stack.enter_context(isolated_vhost())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        system = LocalSystem(root, amqp_uri)
        if database == "postgresql":
            system.env["REGISTRATION_DATABASE_URL"] = stack.enter_context(
                isolated_postgres_database()
            )
        stack.callback(system.stop_all)
        system.lob("seed-demo")
        system.start("registration")
        url = system.url("registration")
        starts = datetime.now().astimezone() + timedelta(days=60)
        for n in sizes:
            requests.post(
                f"{url}/activities",
                headers=operator,
                json={
                    "id": f"bench-{n}",
                    "kind": "career_event",
                    "title": f"Klassenlijsten {n}",
                    "starts_at": starts.isoformat(),
                    "ends_at": (starts + timedelta(hours=3)).isoformat(),
                },
                timeout=60,
            ).raise_for_status()
        for n in sizes:
            data = clean_roster(n, seed=n)
            timings: dict[str, list[float]] = {"created": [], "unchanged": [], "dry_run": []}
            for school in UPLOAD_SCHOOLS[:repeat]:
                for what, params in (
                    ("dry_run", {"dry_run": "true"}),
                    ("created", {}),
                    ("unchanged", {}),
                ):
                    began = time.perf_counter()
                    answer = requests.post(
                        f"{url}/activities/bench-{n}/rosters",
                        params={"school_id": school, **params},
                        headers={**operator, "Content-Type": "text/csv"},
                        data=data,
                        timeout=300,
                    )
                    took = time.perf_counter() - began
                    body = answer.json()
                    expected = n if what != "unchanged" else 0
                    if answer.status_code != 200 or body["created"] != expected:
                        raise RuntimeError(f"{what} {n}: {answer.status_code} {answer.text[:500]}")
                    timings[what].append(took)
            results[f"{database}-{n}"] = {
                "bytes": len(data),
                "pupils": n,
                **{f"{what}_best_s": min(t) for what, t in timings.items()},
                **{f"{what}_median_s": statistics.median(t) for what, t in timings.items()},
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("parser", "upload", "all"), default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="300,5000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.part in ("upload", "all"):
        uploads = {}
        print(
            "| database, pupils | KiB | first upload (created) best / median s "
            "| same file again (unchanged) | dry run |"
        )
        print("|---|---|---|---|---|")
        for database in args.databases.split(","):
            for name, r in upload_results(sizes, min(args.repeat, 5), database).items():
                uploads[name] = r
                print(
                    f"| {name} | {r['bytes'] / 1024:.0f} "
                    f"| {r['created_best_s']:.2f} / {r['created_median_s']:.2f} "
                    f"| {r['unchanged_best_s']:.2f} / {r['unchanged_median_s']:.2f} "
                    f"| {r['dry_run_best_s']:.2f} / {r['dry_run_median_s']:.2f} |"
                )
        RESULTS.mkdir(exist_ok=True)
        stamp = {"date": date.today().isoformat(), "repeat": args.repeat, "uploads": uploads}
        (RESULTS / "roster-upload.json").write_text(json.dumps(stamp, indent=2))
    if args.part == "upload":
        return
    results = {}
    print("| file | KiB | pupils | problems | best s | median s | CPU s | read s | check s | MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (data, sessions) in files(sizes).items():
        r = measure(data, sessions, args.repeat)
        results[name] = r
        print(
            f"| {name} | {r['bytes'] / 1024:.0f} | {r['rows']} | {r['problems']} "
            f"| {r['best_s']:.3f} | {r['median_s']:.3f} | {r['cpu_s']:.3f} | {r['read_s']:.3f} "
            f"| {r['check_s']:.3f} | {r['peak_mib']:.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = {"date": date.today().isoformat(), "repeat": args.repeat, "files": results}
    (RESULTS / "roster.json").write_text(json.dumps(stamp, indent=2))


if __name__ == "__main__":
    main()
