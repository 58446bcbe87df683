"""The main job's wall time: ``permaplug run --source era5land --model tcn`` on cached demo data.

Runs, in fresh processes, alternating, ``--repeats`` times:

* **full**: ``permaplug run --source era5land --model tcn --quiet`` (train, evaluate, project
  with ``qm``, SHAP, HTML report);
* **floor**: the same training alone (``--no-project --no-explain --no-report``);
* **before** (with ``--before DIR``): the full run of an older checkout (a folder holding an
  older ``permaplug`` package, imported instead of this one), after one untimed run (numba
  compiles the emulator's kernels into that checkout's ``__pycache__`` on first use).

Reports the median wall time (from the interpreter's start to the process's end, measured
around the child process, and in-process: after the interpreter's start to the command's
return), the CPU time of the command's own process and of its child processes (``permaplug
run`` works on the projection's inputs in a second process while the networks train, and
explains in a forked child alongside the projection), the ratio full / floor and, with ``--before``, before / full, with the 1-minute
load average (wall time on a shared machine follows the load; CPU time much less), and whether
the runs wrote the same results (comparison table, metrics without timings, predictions,
projections, SHAP attributions). The demo data are built first if missing, and one untimed
one-epoch run stores the sources' reads (:mod:`permaplug.core.read_cache`), as any earlier run
on the same files does: "cached data" means both.
``--write`` puts the result into the "Main job" section of benchmarks/RESULTS.md.

    python benchmarks/bench_main_job.py [--repeats 3] [--epochs 50] [--before DIR] [--write]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _common import load_average, machine, write_section

ROOT = Path(__file__).resolve().parents[1]
STEPS_OFF = ["--no-project", "--no-explain", "--no-report"]
CHILD = r"""
import json, os, resource, sys, time
tree = sys.argv.pop(1)
if tree:  # an older checkout instead of the installed (editable) package
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
    sys.path.insert(0, tree)
t = time.perf_counter()
import permaplug
from permaplug.cli import cli
try:
    cli(sys.argv[1:], prog_name="permaplug")
except SystemExit as exc:
    if exc.code:
        raise
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print("BENCH " + json.dumps({"inner": time.perf_counter() - t,
                             "cpu": own.ru_utime + own.ru_stime,
                             "background": kids.ru_utime + kids.ru_stime,
                             "package": permaplug.__file__}), flush=True)
try:  # the console command's exit (permaplug.cli:main); an older checkout: the usual one
    from permaplug.cli import exit_now
except ImportError:
    exit_now = None
if exit_now is not None:
    exit_now(0)
"""


def run_once(tree: str, extra: list[str], epochs: int, out: Path) -> dict:
    cmd = [sys.executable, "-c", CHILD, tree, "run", "--source", "era5land", "--model", "tcn",
           "--epochs", str(epochs), "--out", str(out), "--quiet", *extra]
    load = load_average()
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=str(out.parent))
    wall = time.perf_counter() - t  # what a user waits: interpreter start to process end
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{' '.join(cmd[3:])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    r = json.loads(lines[-1][6:])
    if tree and not r["package"].startswith(tree):
        raise SystemExit(f"--before: imported {r['package']}, not the checkout in {tree}")
    return {**r, "wall": wall, "load": load}


def _metrics(path: Path) -> dict:
    """metrics.json without its timings (``train_seconds``, at any depth)."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "train_seconds"}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return strip(json.loads(path.read_text()))


def same_results(a: Path, b: Path) -> bool:
    """Both run folders hold the same comparison table, metrics (timings aside), predictions,
    projections and SHAP attributions."""
    if (a / "comparison.md").read_text() != (b / "comparison.md").read_text():
        return False
    if _metrics(a / "metrics.json") != _metrics(b / "metrics.json"):
        return False
    if not pd.read_parquet(a / "predictions.parquet").equals(pd.read_parquet(b / "predictions.parquet")):
        return False
    files = sorted(p.relative_to(a) for p in a.rglob("*.nc") if "inputs" not in p.parts)
    if files != sorted(p.relative_to(b) for p in b.rglob("*.nc") if "inputs" not in p.parts):
        return False
    for f in files:
        with xr.open_dataset(a / f) as x, xr.open_dataset(b / f) as y:
            if set(x.variables) != set(y.variables) or not all(
                    np.array_equal(x[v].values, y[v].values, equal_nan=x[v].dtype.kind == "f")
                    for v in x.variables):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--before", type=Path, default=None,
                    help="a folder holding an older permaplug package (e.g. a git worktree)")
    ap.add_argument("--label", default="before this work", help="name of --before")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    subprocess.run([str(Path(sys.executable).with_name("permaplug")), "demo", "build",
                    "--quiet"], check=False, capture_output=True)  # cached demo data first
    modes = {"full": ("", []), "floor": ("", STEPS_OFF)}
    before = str(args.before.resolve()) if args.before else ""
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        tmp = Path(tmp)
        if before:
            modes = {"before": (before, []), **modes}
            run_once(before, [], 1, tmp / "warm-up")  # compiles its numba kernels
        # cached data: the sources' reads stored by an earlier run on the same files
        # (permaplug.core.read_cache), as after any first run
        run_once("", [], 1, tmp / "warm-up-now")
        runs: dict[str, list[dict]] = {k: [] for k in modes}
        for i in range(args.repeats):
            for name, (tree, extra) in modes.items():
                runs[name].append(run_once(tree, extra, args.epochs, tmp / f"{name}{i}"))
                r = runs[name][-1]
                print(f"{name}: wall {r['wall']:.1f} s (in-process {r['inner']:.1f} s), "
                      f"CPU {r['cpu']:.1f} s + background "
                      f"{r['background']:.1f} s, load {r['load']:.1f}", flush=True)
        same_floor = (tmp / "full0" / "comparison.md").read_text() == \
            (tmp / "floor0" / "comparison.md").read_text()
        same_before = same_results(tmp / "before0", tmp / "full0") if before else None
    med = {k: {m: statistics.median(r[m] for r in v)
               for m in ("wall", "inner", "cpu", "background", "load")}
           for k, v in runs.items()}
    rows = [("full run (train, project, SHAP, report)", "full"),
            ("training only (floor)", "floor")]
    if before:
        rows.insert(0, (f"full run, {args.label}", "before"))
    lines = ["## Main job (issue 16 item 4)", "", f"Machine: {machine()}. data: demo emulator.",
             "", (f"`permaplug run --source era5land --model tcn --epochs {args.epochs}` with the "
                  f"demo data cached, median of {args.repeats} runs alternating with the same "
                  "training alone (`--no-project --no-explain --no-report`, the floor)"
                  + (f" and the full run of {args.label}" if before else "")
                  + ", each in a fresh process. CPU: the command's own process; background: "
                    "its child processes (the projection's inputs, prepared while the networks "
                    "train, and the explanation forked alongside the projection)."), "",
             ("Wall: from the interpreter's start to the process's end (what a user waits); "
             "in-process: from after the interpreter's start to the command's return (what "
             "the tables before 2026-12-02 called wall: without the interpreter's start and "
             "exit)."), "",
             "| command | wall (s) | in-process (s) | CPU (s) | background CPU (s) | load |",
             "|---|---:|---:|---:|---:|---:|"]
    for title, k in rows:
        m = med[k]
        lines.append(f"| {title} | {m['wall']:.1f} | {m['inner']:.1f} | {m['cpu']:.1f} | "
                     f"{m['background']:.1f} | {m['load']:.1f} |")
    lines.append(f"| steps after training (full - floor) | "
                 f"{med['full']['wall'] - med['floor']['wall']:.1f} | "
                 f"{med['full']['inner'] - med['floor']['inner']:.1f} | "
                 f"{med['full']['cpu'] - med['floor']['cpu']:.1f} | | |")
    lines += ["", (f"Ratio full / floor: {med['full']['wall'] / med['floor']['wall']:.2f} (wall), "
                   f"{med['full']['cpu'] / med['floor']['cpu']:.2f} (CPU of the command's process)."
                   + (f" Ratio before / now (full runs): "
                      f"{med['before']['wall'] / med['full']['wall']:.2f} (wall), "
                      f"{med['before']['cpu'] / med['full']['cpu']:.2f} (CPU of the command's "
                      f"process), {(med['before']['cpu'] + med['before']['background']) / (med['full']['cpu'] + med['full']['background']):.2f} "
                      "(all CPU)." if before else "")
                   + f" Goal: full run at most 45 s wall. Full and floor write the same "
                     f"comparison table: {same_floor}."
                   + (f" Before and now write the same results (comparison, metrics, "
                      f"predictions, projections, SHAP attributions): {same_before}."
                      if before else "")), "",
              ("Reproduce: `python benchmarks/bench_main_job.py --repeats 2 --before DIR "
               "--write` (DIR: e.g. `git worktree add DIR <older commit>`).")]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section("main-job", text)


if __name__ == "__main__":
    main()
