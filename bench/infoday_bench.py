"""Info-day benchmark: quality and speed of `lob schedule infoday` on public and unseen instances.

For each instance: solve in a child process (time and peak memory per solve), validate the plan
with shared/bench/infoday/score.py, and compare with the reference figures (proven optimum, best
known, LP bound), with greedy (first come, first served) and with the solver's own upper bound.
Unseen instances are generated with gen.py (other seeds, tighter rooms, 5000 and 13 000 pupils).

    .venv/bin/python bench/infoday_bench.py [--quick] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "bench" / "infoday"
RESULTS = ROOT / "results"
LOB = Path(sys.executable).parent / "lob"
REFERENCE = json.loads((SHARED / "reference.json").read_text())["instances"]

# name: (pupils, sessions, schools, seed, tightness) for gen.py
GENERATED = {
    "gen-1300-seed1-t1.00": (1300, 26, 16, 1, 1.0),
    "gen-1300-seed2-t1.02": (1300, 26, 16, 2, 1.02),
    "gen-5000-seed9-t1.05": (5000, 40, 40, 9, 1.05),
    "gen-13000-seed11-t1.02": (13000, 26, 160, 11, 1.02),
}
QUICK = ("public-60-t110", "public-1300-t110")


def instance_path(name: str) -> Path:
    if name.startswith("public-"):
        return SHARED / "public" / f"{name}.json"
    path = RESULTS / "instances" / f"{name}.json"
    if not path.exists():
        pupils, sessions, schools, seed, tightness = GENERATED[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(SHARED / "gen.py"),
                "--pupils",
                str(pupils),
                "--sessions",
                str(sessions),
                "--rounds",
                "3",
                "--schools",
                str(schools),
                "--seed",
                str(seed),
                "--tightness",
                str(tightness),
                "-o",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
    return path


def solve(name: str, path: Path) -> dict:
    plan = RESULTS / f"{name}.plan.json"
    started = time.perf_counter()
    run = subprocess.run(
        [str(LOB), "schedule", "infoday", str(path), "-o", str(plan)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"{name}: the solver failed:\n{run.stderr}")
    ours = json.loads(run.stdout.strip().splitlines()[-1])
    check = subprocess.run(
        [sys.executable, str(SHARED / "score.py"), str(path), str(plan), "--quiet"],
        capture_output=True,
        text=True,
    )
    scored = json.loads(check.stdout.strip().splitlines()[-1])
    greedy_plan = RESULTS / f"{name}.greedy.json"
    subprocess.run(
        [sys.executable, str(SHARED / "greedy.py"), str(path), "-o", str(greedy_plan)],
        check=True,
        capture_output=True,
    )
    greedy = json.loads(
        subprocess.run(
            [sys.executable, str(SHARED / "score.py"), str(path), str(greedy_plan), "--quiet"],
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    reference = REFERENCE.get(name, {})
    best = (reference.get("optimum") or reference.get("best_known") or {}).get("wish_utility")
    return {
        "instance": name,
        "pupils": scored["pupils"],
        "valid": check.returncode == 0,
        "seated": scored["seated"],
        "seated_max": scored["seated_max"],
        "wish": scored["wish_utility"],
        "le1": scored["le1"],
        "own_bound": ours["wish_upper_bound"],
        "vs_own_bound": round(scored["wish_utility"] / ours["wish_upper_bound"], 5),
        "reference": best,
        "reference_kind": "optimum"
        if reference.get("optimum")
        else ("best_known" if best else None),
        "vs_reference": round(scored["wish_utility"] / best, 5) if best else None,
        "lp_bound": (reference.get("upper_bound") or {}).get("wish_utility"),
        "greedy_vs_own_bound": round(greedy["wish_utility"] / ours["wish_upper_bound"], 5),
        "greedy_le1": greedy["le1"],
        "solver_seconds": ours["seconds"],
        "wall_seconds": round(wall, 2),
        "peak_mib": ours["peak_mib"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="public-60 and public-1300 only")
    parser.add_argument("--only", help="one instance by name")
    args = parser.parse_args()
    names = (
        list(QUICK)
        if args.quick
        else ["public-60-t110", "public-1300-t110", "public-13000-t105", *GENERATED]
    )
    if args.only:
        names = [args.only]
    RESULTS.mkdir(exist_ok=True)
    rows = []
    header = (
        f"{'instance':<24}{'valid':>6}{'seated':>14}{'wish':>9}{'own bound':>11}"
        f"{'vs bound':>10}{'vs ref':>9}{'greedy':>9}{'le1':>5}{'s':>7}{'MiB':>6}"
    )
    print(header)
    for name in names:
        row = solve(name, instance_path(name))
        rows.append(row)
        ref = f"{row['vs_reference']:.2%}" if row["vs_reference"] else "-"
        print(
            f"{name:<24}{row['valid']!s:>6}{row['seated']:>7}/{row['seated_max']:<6}"
            f"{row['wish']:>9}{row['own_bound']:>11}{row['vs_own_bound']:>10.3%}{ref:>9}"
            f"{row['greedy_vs_own_bound']:>9.2%}{row['le1']:>5}{row['solver_seconds']:>7}"
            f"{row['peak_mib']:>6}",
            flush=True,
        )
    (RESULTS / "infoday.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["valid"] for r in rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
