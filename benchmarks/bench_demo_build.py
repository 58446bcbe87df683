"""The demo build's cost outside the emulator: the default build, now vs an older checkout.

Builds the default demo (``build_demo``, 0.5 deg grid) in fresh processes, alternating between
this checkout and ``--before DIR`` (a folder holding an older ``permaplug`` package, put first on
``PYTHONPATH``), ``--repeats`` times each after one untimed build of each (numba compiles the
emulator's kernels into each checkout's ``__pycache__`` on first use), into ``--cache``. Reports the median wall time, the main process's CPU, the truth-run workers' CPU and
the CPU critical path (main + workers / 2), whether xsdba was imported, the 1-minute load, and
whether both builds wrote the same values (every variable of every NetCDF file equal).
``--write`` puts the result into the "Demo build" section of benchmarks/RESULTS.md.

    python benchmarks/bench_demo_build.py --before /tmp/permaplug-old [--repeats 2] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from _common import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
import permaplug.demo.build as b
t, c = time.perf_counter(), time.process_time()
load = os.getloadavg()[0]
b.build_demo(Path(sys.argv[1]), progress=False)
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - t, "main": time.process_time() - c,
                  "workers": ch.ru_utime + ch.ru_stime, "xsdba": "xsdba" in sys.modules,
                  "load": load, "package": b.__file__}))
"""


def build_once(package_root: Path, out: Path, cache: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(package_root), PERMAPLUG_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env, capture_output=True,
                          text=True, cwd=str(cache), check=False)
    if proc.returncode:
        raise SystemExit(f"build with {package_root} failed:\n{proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["critical"] = r["main"] + r["workers"] / 2
    return r


def same_values(a: Path, b: Path) -> bool:
    """Every variable of every NetCDF file of two demo folders equal (NaN where NaN)."""
    files = sorted(p.relative_to(a) for p in a.rglob("*.nc"))
    if files != sorted(p.relative_to(b) for p in b.rglob("*.nc")):
        return False
    for f in files:
        with xr.open_dataset(a / f, decode_times=False) as x, \
                xr.open_dataset(b / f, decode_times=False) as y:
            if set(x.variables) != set(y.variables):
                return False
            for v in x.variables:
                if not np.array_equal(x[v].values, y[v].values,
                                      equal_nan=x[v].dtype.kind == "f"):
                    return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True,
                    help="folder holding an older permaplug package (put on PYTHONPATH)")
    ap.add_argument("--label", default="main before this work", help="name of --before")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/permaplug-bench-demo-build"))
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for name, root in (("before", args.before), ("now", ROOT)):  # compiles and caches kernels
        build_once(root, args.cache / f"warmup-{name}", args.cache)
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for i in range(args.repeats):
        for name, root in (("before", args.before), ("now", ROOT)):
            r = build_once(root, args.cache / f"{name}{i}", args.cache)
            runs[name].append(r)
            print(f"{name}: wall {r['wall']:.1f} s, main CPU {r['main']:.1f} s, workers "
                  f"{r['workers']:.1f} s, xsdba imported {r['xsdba']}, load {r['load']:.1f}",
                  flush=True)
    same = same_values(args.cache / "before0", args.cache / "now0")
    med = {k: {m: statistics.median(r[m] for r in v)
               for m in ("wall", "main", "workers", "critical", "load")} for k, v in runs.items()}
    rows = [f"| {label} | {med[k]['wall']:.1f} | {med[k]['main']:.1f} | "
            f"{med[k]['workers']:.1f} | {med[k]['critical']:.1f} | {runs[k][0]['xsdba']} | "
            f"{med[k]['load']:.1f} |" for k, label in (("before", f"before ({args.label})"),
                                                     ("now", "now"))]
    text = "\n".join([
        "## Demo build (issue 16 item 2: outside the solver)", "",
        f"Machine: {machine()}. data: demo emulator.", "",
        (f"`python benchmarks/bench_demo_build.py --before DIR --repeats {args.repeats}`: the "
         "default demo build (0.5 deg grid) in fresh processes, alternating between the two "
         f"checkouts, median of {args.repeats} each after one untimed warm-up build each. CPU critical path = main process + half of "
         "the two truth-run workers (what an idle 2-core machine would wait)."), "",
        ("| build | wall (s) | main CPU (s) | workers CPU (s) | critical path (s) | imports "
         "xsdba | load |"), "|---|---:|---:|---:|---:|---|---:|", *rows, "",
        (f"Ratio before / now: {med['before']['critical'] / med['now']['critical']:.2f} "
         f"(critical path), {med['before']['main'] / med['now']['main']:.2f} (main CPU). Every "
         f"variable of every NetCDF file equal between the two builds: {same}."),
    ])
    print(text)
    if args.write:
        write_section("demo-build", text)


if __name__ == "__main__":
    main()
