"""Info-day benchmark: `lob schedule infoday` as a user runs it, on the public instances and on a
sweep of generated ones, against the bars of the scheduling issue.

Each instance is solved by `lob schedule infoday FILE -o PLAN` in a child process: the time is
the wall clock from process start to exit, the memory the child's peak RSS. Every plan is
checked with shared/bench/infoday/score.py. The bars, on every instance:
- the plan is valid;
- every seat there can be is taken (seated == the solver's seats bound);
- the wish utility is at least 99.9% of the solver's own upper bound;
- 1300 pupils in under 2 s, 5000 and 13 000 in under 30 s; peak memory under 1 GiB.
The sweep's instances are made with gen.py from the recipe below (seeds, sizes, sessions,
schools, tightness); they are generated on first use into bench/results/instances/.

    .venv/bin/python bench/infoday_bench.py                 # public instances + the sweep
    .venv/bin/python bench/infoday_bench.py --quick         # public-60 and public-1300 only
    .venv/bin/python bench/infoday_bench.py --sizes 1300 --repeat 3
    .venv/bin/python bench/infoday_bench.py --only sweep-13000-s60-t1.05-seed9305

Exit status 1 when any instance misses a bar; the summary names which.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "bench" / "infoday"
RESULTS = ROOT / "results"
LOB = Path(sys.executable).parent / "lob"
REFERENCE = json.loads((SHARED / "reference.json").read_text())["instances"]

SECONDS_BAR = {1300: 2.0, 5000: 30.0, 13000: 30.0}
MIB_BAR = 1024
SHARE_BAR = 0.999


@dataclass(frozen=True)
class Recipe:
    pupils: int
    sessions: int
    schools: int
    seed: int
    tightness: float

    @property
    def name(self) -> str:
        return f"sweep-{self.pupils}-s{self.sessions}-t{self.tightness:.2f}-seed{self.seed}"


# The sweep: 14 instances per size, 42 in all. Tightness runs from 0.95 (fewer seats than
# pupils in every round) to 1.20; sessions from 26 (the real day) to 60; seeds from 9100 up,
# never used while the solver was developed (that used seeds 1-11, 101-105, 201 and 5000-5999).
TIGHTNESS = (0.95, 0.96, 0.97, 0.98, 1.00, 1.01, 1.02, 1.04, 1.05, 1.07, 1.10, 1.12, 1.15, 1.20)
SIZES = {  # pupils: (schools, sessions cycled over the instances, first seed)
    1300: (16, (26, 30, 34, 40), 9100),
    5000: (50, (26, 40, 50, 60), 9200),
    13000: (120, (60, 40, 50, 60), 9300),  # 60 sessions, 120 schools: as public-13000
}


def sweep(first_seeds: dict[int, int] | None = None) -> list[Recipe]:
    recipes = []
    for pupils, (schools, sessions, seed) in SIZES.items():
        seed = (first_seeds or {}).get(pupils, seed)
        for i, tightness in enumerate(TIGHTNESS):
            count = sessions[i % len(sessions)]
            recipes.append(Recipe(pupils, count, schools, seed + i, tightness))
    return recipes


PUBLIC = ("public-60-t110", "public-1300-t110", "public-13000-t105")
QUICK = ("public-60-t110", "public-1300-t110")
DEV_SEEDS = {1300: 5100, 5000: 5200, 13000: 5300}  # `--dev`: the seeds used to develop on


def instance_path(name: str, recipes: dict[str, Recipe]) -> Path:
    if name.startswith("public-"):
        return SHARED / "public" / f"{name}.json"
    path = RESULTS / "instances" / f"{name}.json"
    if not path.exists():
        r = recipes[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        args = ["--pupils", r.pupils, "--sessions", r.sessions, "--rounds", 3]
        args += ["--schools", r.schools, "--seed", r.seed, "--tightness", r.tightness]
        subprocess.run(
            [sys.executable, str(SHARED / "gen.py"), *map(str, args), "-o", str(path)],
            check=True,
            capture_output=True,
        )
    return path


def run_lob(path: Path, plan: Path) -> tuple[float, float, int, dict]:
    """One solve as a user runs it: (wall seconds from process start, CPU seconds, peak MiB,
    its summary). The peak is the child's own maximum resident set, which `lob` reports
    (getrusage). CPU time hardly depends on what else runs on the machine; wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(LOB), "schedule", "infoday", str(path), "-o", str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{path.name}: lob schedule infoday failed:\n{err}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(out.strip().splitlines()[-1])
    return wall, cpu, summary["peak_mib"], summary


def score(path: Path, plan: Path) -> tuple[bool, dict]:
    check = subprocess.run(
        [sys.executable, str(SHARED / "score.py"), str(path), str(plan), "--quiet"],
        capture_output=True,
        text=True,
    )
    return check.returncode == 0, json.loads(check.stdout.strip().splitlines()[-1])


def greedy_wish(path: Path, name: str) -> int:
    plan = RESULTS / f"{name}.greedy.json"
    subprocess.run(
        [sys.executable, str(SHARED / "greedy.py"), str(path), "-o", str(plan)],
        check=True,
        capture_output=True,
    )
    return score(path, plan)[1]["wish_utility"]


def solve(name: str, path: Path, repeat: int, with_greedy: bool) -> dict:
    plan = RESULTS / f"{name}.plan.json"
    runs = [run_lob(path, plan) for _ in range(repeat)]
    walls = [w for w, _, _, _ in runs]
    mib = max(m for _, _, m, _ in runs)
    ours = runs[-1][3]
    valid, scored = score(path, plan)
    bound = ours["wish_upper_bound"]
    share = scored["wish_utility"] / bound if bound > 0 else 1.0
    reference = REFERENCE.get(name, {})
    best = (reference.get("optimum") or reference.get("best_known") or {}).get("wish_utility")
    row = {
        "instance": name,
        "pupils": scored["pupils"],
        "valid": valid,
        "seated": scored["seated"],
        "seats_bound": ours["seats_bound"],
        "seated_max": scored["seated_max"],
        "wish": scored["wish_utility"],
        "wish_bound": bound,
        "share_of_bound": share,
        "proven_optimal": ours["proven_optimal"],
        "le1": scored["le1"],
        "warning": ours["warning"],
        "wall_seconds": statistics.median(walls),
        "wall_seconds_all": [round(w, 3) for w in walls],
        "cpu_seconds": statistics.median(c for _, c, _, _ in runs),
        "solver_seconds": ours["seconds"],
        "peak_mib": mib,
        "reference": best,
        "vs_reference": scored["wish_utility"] / best if best else None,
    }
    if with_greedy:
        row["greedy_share"] = greedy_wish(path, name) / bound if bound > 0 else None
    row["missed"] = missed(row)
    return row


def missed(row: dict) -> list[str]:
    bars = []
    if not row["valid"]:
        bars.append("invalid plan")
    if row["seated"] != row["seats_bound"]:
        bars.append(f"seated {row['seated']} != seats bound {row['seats_bound']}")
    if row["share_of_bound"] < SHARE_BAR:
        bars.append(f"wish {row['share_of_bound']:.4%} < {SHARE_BAR:.1%} of the bound")
    limit = SECONDS_BAR.get(row["pupils"])
    if limit is not None and row["wall_seconds"] >= limit:
        bars.append(f"{row['wall_seconds']:.2f} s >= {limit:g} s")
    if row["peak_mib"] >= MIB_BAR:
        bars.append(f"{row['peak_mib']} MiB >= {MIB_BAR} MiB")
    return bars


def print_row(row: dict) -> None:
    greedy = row.get("greedy_share")
    print(
        f"{row['instance']:<36}{row['valid']!s:>6}{row['seated']:>7}/{row['seats_bound']:<7}"
        f"{row['wish']:>8}{row['wish_bound']:>9}{row['share_of_bound']:>10.4%}"
        f"{'-' if greedy is None else f'{greedy:.1%}':>8}{row['le1']:>5}"
        f"{row['wall_seconds']:>7.2f}{row['cpu_seconds']:>6.2f}{row['peak_mib']:>6}  "
        f"{'; '.join(row['missed']) or 'ok'}",
        flush=True,
    )


def summarise(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "per size, min / median / max (wall and CPU seconds from process start; MiB peak; "
        "share of own bound):",
    ]
    for pupils in sorted({r["pupils"] for r in rows}):
        group = [r for r in rows if r["pupils"] == pupils]
        walls = [r["wall_seconds"] for r in group]
        cpus = [r["cpu_seconds"] for r in group]
        mibs = [r["peak_mib"] for r in group]
        shares = [r["share_of_bound"] for r in group]
        lines.append(
            f"  {pupils:>6} pupils, {len(group):>2} instances: "
            f"s {min(walls):.2f} / {statistics.median(walls):.2f} / {max(walls):.2f}   "
            f"cpu {min(cpus):.2f} / {statistics.median(cpus):.2f} / {max(cpus):.2f}   "
            f"MiB {min(mibs)} / {statistics.median(mibs):.0f} / {max(mibs)}   "
            f"share {min(shares):.4%} / {statistics.median(shares):.4%} / {max(shares):.4%}   "
            f"proven optimal {sum(r['proven_optimal'] for r in group)}"
        )
    failed = [r for r in rows if r["missed"]]
    lines.append("")
    if failed:
        lines.append(f"{len(failed)} of {len(rows)} instance(s) missed a bar:")
        lines += [f"  {r['instance']}: {'; '.join(r['missed'])}" for r in failed]
    else:
        lines.append(f"all {len(rows)} instances meet every bar")
    return lines


def markdown(rows: list[dict], load_before: tuple, load_after: tuple) -> str:
    """The tables for docs/benchmarks.md: every instance, then min / median / max per size."""
    lines = [
        "| instance | seated / seats bound | wish utility | own bound | share | greedy | "
        "proven optimal | wall s | CPU s | MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        greedy = r.get("greedy_share")
        lines.append(
            f"| {r['instance']} | {r['seated']:,} / {r['seats_bound']:,} | {r['wish']:,} | "
            f"{r['wish_bound']:,} | {r['share_of_bound']:.4%} | "
            f"{'-' if greedy is None else f'{greedy:.1%}'} | "
            f"{'yes' if r['proven_optimal'] else 'no'} | {r['wall_seconds']:.2f} | "
            f"{r['cpu_seconds']:.2f} | {r['peak_mib']} |".replace(",", " ")
        )
    lines += [
        "",
        "| pupils | instances | wall s min / median / max | CPU s min / median / max | "
        "MiB max | share of bound min / median | proven optimal |",
        "|---|---|---|---|---|---|---|",
    ]
    for pupils in sorted({r["pupils"] for r in rows}):
        group = [r for r in rows if r["pupils"] == pupils]
        walls = [r["wall_seconds"] for r in group]
        cpus = [r["cpu_seconds"] for r in group]
        shares = [r["share_of_bound"] for r in group]
        lines.append(
            f"| {pupils:,} | {len(group)} | {min(walls):.2f} / {statistics.median(walls):.2f} / "
            f"{max(walls):.2f} | {min(cpus):.2f} / {statistics.median(cpus):.2f} / "
            f"{max(cpus):.2f} | {max(r['peak_mib'] for r in group)} | {min(shares):.4%} / "
            f"{statistics.median(shares):.4%} | "
            f"{sum(r['proven_optimal'] for r in group)} of {len(group)} |".replace(",", " ")
        )
    lines.append("")
    lines.append(
        f"Load average (1 min) {load_before[0]:.1f} before and {load_after[0]:.1f} after, "
        "on 2 cores."
    )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="public-60 and public-1300 only")
    parser.add_argument("--only", help="one instance by name")
    parser.add_argument("--sizes", help="sweep sizes only, e.g. 1300,5000")
    parser.add_argument("--no-public", action="store_true", help="the sweep only")
    parser.add_argument("--dev", action="store_true", help="the development seeds instead")
    parser.add_argument("--repeat", type=int, default=1, help="solves per instance (median)")
    parser.add_argument("--no-greedy", action="store_true", help="skip the greedy baseline")
    args = parser.parse_args()
    recipes = {r.name: r for r in sweep(DEV_SEEDS if args.dev else None)}
    names = [] if args.no_public else list(PUBLIC)
    sizes = {int(s) for s in args.sizes.split(",")} if args.sizes else set(SIZES)
    names += [n for n, r in recipes.items() if r.pupils in sizes]
    if args.quick:
        names = list(QUICK)
    if args.only:
        names = [args.only]
    RESULTS.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(
        f"{'instance':<36}{'valid':>6}{'seated/bound':>15}{'wish':>8}{'bound':>9}"
        f"{'share':>10}{'greedy':>8}{'le1':>5}{'s':>7}{'cpu':>6}{'MiB':>6}  bars"
    )
    rows = []
    for name in names:
        row = solve(name, instance_path(name, recipes), args.repeat, not args.no_greedy)
        rows.append(row)
        print_row(row)
    load_after = os.getloadavg()
    lines = summarise(rows)
    lines.append(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print("\n".join(lines))
    (RESULTS / "infoday.md").write_text(markdown(rows, load_before, load_after))
    (RESULTS / "infoday.json").write_text(
        json.dumps({"load": [load_before, load_after], "rows": rows}, indent=1) + "\n"
    )
    return 1 if any(r["missed"] for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
