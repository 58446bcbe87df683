"""Command-line start-up benchmark: how long ``permaplug`` takes to answer, next to
``python -c pass`` (the interpreter's own start-up, the floor) measured in the same run.

Each command runs ``--runs`` times in a fresh process (after one unmeasured warm-up run); the
table gives the median wall time, the ratio to the floor's median, and the exit code (checked:
a user error must exit 1 or 2 with one ``Error:`` line, never a traceback). The commands are
the ones issue 12 asks to answer within 0.5 s: ``--help``, ``plugins``, ``catalog list`` (the
default demo catalog, built beforehand if needed) and user-error paths.

``--before DIR`` also times the same commands with the package found in DIR (a checkout of an
older version, e.g. ``git archive <commit> permaplug | tar -x -C DIR``), in the same run.
Writes the "Command line" section of benchmarks/RESULTS.md (between markers) with ``--write``.

    python benchmarks/bench_cli.py [--runs 7] [--before DIR] [--write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, write_section

RESULTS = Path(__file__).with_name("RESULTS.md")
START, END = "<!-- cli:start -->", "<!-- cli:end -->"
TARGET_S = 0.5

# (label, arguments after ``permaplug``, expected exit code)
COMMANDS: list[tuple[str, list[str], int]] = [
    ("permaplug --help", ["--help"], 0),
    ("permaplug plugins", ["plugins"], 0),
    ("permaplug catalog list", ["catalog", "list"], 0),
    ("permaplug catalog list --catalog missing.yaml", ["catalog", "list", "--catalog",
                                                       "missing.yaml"], 1),
    ("permaplug run --model nosuch", ["run", "--model", "nosuch"], 1),
    ("permaplug run --catalog missing.yaml", ["run", "--catalog", "missing.yaml"], 1),
    ("permaplug run --epochs -1", ["run", "--epochs", "-1"], 1),
    ("permaplug run --source nosuch", ["run", "--source", "nosuch"], 1),
    ("permaplug correct --corrector nosuch", ["correct", "--corrector", "nosuch"], 1),
    ("permaplug correct --calibration 2001", ["correct", "--calibration", "2001"], 1),
    ("permaplug project missing-run", ["project", "missing-run"], 2),
    ("permaplug project . (not a run folder)", ["project", "."], 1),
    ("permaplug explain . (not a run folder)", ["explain", "."], 1),
    ("permaplug fetch nosuch", ["fetch", "nosuch"], 2),
    ("permaplug nosuch", ["nosuch"], 2),
]


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Wall time (s), exit code and stderr of one run of ``argv``."""
    t0 = time.perf_counter()
    res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, res.returncode, res.stderr


def median_time(argv: list[str], runs: int, cwd: Path, env: dict[str, str],
                expect: int | None = None) -> tuple[float, int]:
    """Median wall time of ``runs`` runs after one warm-up; the exit code (checked against
    ``expect``: a user error answers with an ``Error:`` line and no traceback)."""
    timed(argv, cwd, env)
    times, code = [], 0
    for _ in range(runs):
        seconds, code, err = timed(argv, cwd, env)
        times.append(seconds)
        if expect is not None and (code != expect or "Traceback" in err):
            raise SystemExit(f"{' '.join(argv)}: exit {code} (expected {expect})\n{err}")
    return statistics.median(times), code


def measure(runs: int, before: Path | None, before_runs: int) -> tuple[float, list[dict], float]:
    """Floor median, per-command rows, 1-minute load average at the start."""
    load = os.getloadavg()[0]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("PYTHONPATH", None)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        # the default catalog must exist before it is timed (building it takes about a minute)
        subprocess.run([py, "-c", ("from permaplug.demo.build import ensure_demo_catalog; "
                        "ensure_demo_catalog(progress=False)")], env=env, check=True)
        floor, _ = median_time([py, "-c", "pass"], runs, cwd, env)
        rows = []
        for label, args, expect in COMMANDS:
            row = {"command": label, "expect": expect}
            row["after"], row["code"] = median_time([py, "-m", "permaplug", *args], runs, cwd,
                                                    env, expect)
            if before is not None:  # an older version: its exit codes are not checked
                benv = {**env, "PYTHONPATH": str(before)}
                row["before"], row["before_code"] = median_time(
                    [py, "-m", "permaplug", *args], before_runs, cwd, benv)
            rows.append(row)
            print(f"{label:<48} {row['after']:6.3f} s  x{row['after'] / floor:5.1f}"
                  + (f"   before {row['before']:6.3f} s" if before is not None else ""),
                  flush=True)
    return floor, rows, load


def section(floor: float, rows: list[dict], runs: int, load: float, before: Path | None,
            before_name: str, before_runs: int) -> str:
    lines = [START, "## Command line", "",
             (f"Machine: {machine()}. Median wall time of {runs} runs of each command in a fresh "
             f"process (after one warm-up run), next to `python -c pass` measured in the same "
             f"run ({floor:.3f} s, the floor). 1-minute load average at the start: {load:.1f} "
             f"(the machine is shared). Target: every command below answers within "
             f"{TARGET_S} s."), ""]
    if before is not None:
        lines += ["| command | exit | now (s) | / floor | before (s) | / floor |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| `{r['command']}` | {r['code']} | {r['after']:.3f} | "
                  f"{r['after'] / floor:.1f} | {r['before']:.3f} | {r['before'] / floor:.1f} |"
                  for r in rows]
        lines += ["", (f"\"before\": {before_name} (the same commands, the package of that "
                       f"version on `PYTHONPATH`, same interpreter and libraries; median of "
                       f"{before_runs} runs).")]
    else:
        lines += ["| command | exit | median (s) | / floor |", "|---|---:|---:|---:|"]
        lines += [f"| `{r['command']}` | {r['code']} | {r['after']:.3f} | "
                  f"{r['after'] / floor:.1f} |" for r in rows]
    slow = [r["command"] for r in rows if r["after"] > TARGET_S]
    lines += ["", ("Every command answered within the target." if not slow else
                   f"Above the target: {', '.join(slow)}."),
              "", ("Reproduce: `python benchmarks/bench_cli.py --write` "
              "(`--before DIR` to compare with an older checkout)."), END]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--before", type=Path, default=None,
                    help="folder holding an older 'permaplug' package to time as well")
    ap.add_argument("--before-runs", type=int, default=3,
                    help="runs per command of the --before version (it is slow)")
    ap.add_argument("--before-name", default="an older version",
                    help="how the results name the --before version (e.g. a commit)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    floor, rows, load = measure(args.runs, args.before, args.before_runs)
    text = section(floor, rows, args.runs, load, args.before, args.before_name,
                   args.before_runs)
    print(text)
    if args.write:
        write_section("cli", text.strip().removeprefix(START).removesuffix(END).strip())


if __name__ == "__main__":
    main()
