"""The main job's wall time: ``permaplug run --source era5land --model tcn`` on cached demo data.

Runs, in child processes, alternating, ``--repeats`` times:

* **full**: ``permaplug run --source era5land --model tcn --quiet`` (train, evaluate, project
  with ``qm``, SHAP, HTML report);
* **floor**: the same training alone (``--no-project --no-explain --no-report``).

Reports the median wall and CPU time of each, their difference (what the steps after training
cost) and the ratio full / floor, with the 1-minute load average (wall time on a shared machine
follows the load; CPU time much less). The demo data are built first if missing (not timed).
``--write`` puts the result into the "Main job" section of benchmarks/RESULTS.md.

    python benchmarks/bench_main_job.py [--repeats 3] [--epochs 50] [--write]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average, machine, write_section

STEPS_OFF = ["--no-project", "--no-explain", "--no-report"]


def run_once(extra: list[str], epochs: int) -> dict:
    exe = str(Path(sys.executable).with_name("permaplug"))
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        cmd = [exe, "run", "--source", "era5land", "--model", "tcn", "--epochs", str(epochs),
               "--out", str(Path(tmp) / "run"), "--quiet", *extra]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = load_average()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        table = (Path(tmp) / "run" / "comparison.md").read_text()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "load": load, "table": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    subprocess.run([str(Path(sys.executable).with_name("permaplug")), "demo", "build",
                    "--quiet"], check=False, capture_output=True)  # cached demo data first
    runs: dict[str, list[dict]] = {"full": [], "floor": []}
    for _ in range(args.repeats):
        for name, extra in (("full", []), ("floor", STEPS_OFF)):
            runs[name].append(run_once(extra, args.epochs))
            r = runs[name][-1]
            print(f"{name}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, load {r['load']:.1f}",
                  flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu", "load")}
           for k, v in runs.items()}
    same = runs["full"][0]["table"] == runs["floor"][0]["table"]
    lines = ["## Main job (issue 16 item 4)", "", f"Machine: {machine()}. data: demo emulator.",
             "", (f"`permaplug run --source era5land --model tcn --epochs {args.epochs}` with the "
                  f"demo data cached, median of {args.repeats} runs alternating with the same "
                  "training alone (`--no-project --no-explain --no-report`, the floor), each in "
                  "a fresh process."), "",
             "| command | wall (s) | CPU (s) | load |", "|---|---:|---:|---:|",
             (f"| full run (train, project, SHAP, report) | {med['full']['wall']:.1f} | "
             f"{med['full']['cpu']:.1f} | {med['full']['load']:.1f} |"),
             (f"| training only (floor) | {med['floor']['wall']:.1f} | "
             f"{med['floor']['cpu']:.1f} | {med['floor']['load']:.1f} |"),
             (f"| steps after training | {med['full']['wall'] - med['floor']['wall']:.1f} | "
             f"{med['full']['cpu'] - med['floor']['cpu']:.1f} | |"), "",
             (f"Ratio full / floor: {med['full']['wall'] / med['floor']['wall']:.2f} (wall), "
              f"{med['full']['cpu'] / med['floor']['cpu']:.2f} (CPU). Goal: full run at most "
              f"45 s wall. Both runs write the same comparison table: {same}."), "",
             "Reproduce: `python benchmarks/bench_main_job.py --write`."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section("main-job", text)


if __name__ == "__main__":
    main()
