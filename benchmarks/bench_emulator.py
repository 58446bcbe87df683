"""Emulator benchmark: the compiled heat kernel against the NumPy reference, and a full build.

1. **Side by side** (same process, alternating, ``--repeats`` times): the emulator's monthly loop
   (:func:`permaplug.demo.emulator.run`) for ``--months`` months of real forcing from 2001 on
   the blocks the build runs: all cells of the ``--cells`` demo grid (the spin-up, not
   recorded, and 2001-2023, recorded) and the same cells stacked twice (a truth-run worker's
   block of two scenarios, recorded), with ``engine="numpy"`` (the solver that built the demo
   data until issue 16: all cells of a block together, NumPy) and ``engine="compiled"``
   (numba). Reports CPU microseconds per cell-step (median), the ratio, and the largest
   difference of the final soil temperatures (K).
2. **Full build** (``--full``): ``build_demo(n_cells=--cells)`` in a fresh process into a
   temporary folder: wall time, the CPU of the main process and of its children (the truth
   runs and truth-file writers), the CPU critical path (main + children / 2: what an idle
   2-core machine would wait), the peak memory and the 1-minute load. With ``--before DIR``
   (a folder holding an older ``permaplug`` package, put first on ``PYTHONPATH``) the same
   build is made with that package first, each after an untimed small build that compiles
   and caches the kernels, and the two builds' files are compared (every variable of every
   NetCDF file equal). ``--builds N`` alternates N builds per checkout and reports medians.
   Without ``--before``, the reference's build is projected from (1).

``--write`` puts the result into the "Emulator" section of benchmarks/RESULTS.md.

    python benchmarks/bench_emulator.py [--cells 16000] [--months 3] [--repeats 3] [--full]
                                        [--before DIR] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import load_average, machine, write_section
from bench_demo_build import same_values

from permaplug.demo import emulator as E
from permaplug.demo.forcing import reanalysis_forcing
from permaplug.demo.grid import demo_grid
from permaplug.demo.simulate import (
    SPINUP_STEPS_PER_MONTH,
    TRUTH_YEARS,
    month_days,
    snow_density,
    snowfall,
)
from permaplug.demo.soil import soil_from_statics, static_fields

# the build's emulator work, in months: spin-up (2 steps a month, not recorded), 2001-2023, the
# four scenario runs 2024-2100 (stacked two by two in two worker processes)
SPINUP_MONTHS = 12 * (20 + 51)  # 1940-1959 cycled once, then 1940-1990
TRUTH_MONTHS = 12 * (TRUTH_YEARS[1] - TRUTH_YEARS[0] + 1)
ROOT = Path(__file__).resolve().parents[1]


BLOCKS = (("grid", False, "spin-up block (all cells, not recorded)"),
          ("grid", True, "2001-2023 block (all cells, recorded)"),
          ("truth", True, "truth-run worker block (cells x 2 scenarios, recorded)"))


def block_inputs(cells: int, months: int, stack: int):
    """State, column, surface and forcing of every cell of the ``cells`` grid, ``stack`` times."""
    grid = demo_grid(0.5, cells)
    lat, lon = grid.cell_lat, grid.cell_lon
    soil = soil_from_statics(static_fields(lat, lon, 0))
    forcing, _ = reanalysis_forcing(lat, lon, 0)
    surface = E.Surface(density=snow_density(lat), n_thaw=soil.n_thaw)
    state = E.initial_state(soil.column, forcing.sel("1940-01", "1969-12").t2m.mean(axis=0))
    f = forcing.sel("2001-01", "2023-12")
    t2m, sf, days = f.t2m[:months], snowfall(f)[:months], month_days(f)[:months]
    if stack > 1:
        state, col, surface = state.tile(stack), soil.column.tile(stack), surface.tile(stack)
        t2m, sf = np.tile(t2m, (1, stack)), np.tile(sf, (1, stack))
    else:
        col = soil.column
    return grid.ncell, state, col, surface, t2m, sf, days


def side_by_side(cells: int, months: int, repeats: int) -> dict:
    rows = []
    load0 = load_average()
    worst = 0.0
    for block, record, what in BLOCKS:
        ncell, state, col, surface, t2m, sf, days = block_inputs(
            cells, months, 2 if block == "truth" else 1)
        for engine in E.ENGINES:  # compile / warm up, excluded from the timings
            E.run(state, col, surface, t2m[:1], sf[:1], days[:1], engine=engine)
        cpu: dict[str, list[float]] = {e: [] for e in E.ENGINES}
        finals = {}
        for _ in range(repeats):
            for engine in E.ENGINES:
                c0 = time.process_time()
                finals[engine], _ = E.run(state, col, surface, t2m, sf, days, record=record,
                                          engine=engine)
                cpu[engine].append(time.process_time() - c0)
        steps = t2m.shape[1] * months * E.STEPS_PER_MONTH
        us = {e: 1e6 * statistics.median(v) / steps for e, v in cpu.items()}
        worst = max(worst, float(np.max(np.abs(finals["compiled"].T - finals["numpy"].T))))
        rows.append({"what": what, "block": block, "record": record, "cells": t2m.shape[1],
                     **us})
        print(f"{what}: {t2m.shape[1]} cells, numpy {us['numpy']:.2f} us/cell-step, compiled "
              f"{us['compiled']:.2f} us/cell-step, ratio {us['numpy'] / us['compiled']:.1f}",
              flush=True)
    print(f"largest |T_compiled - T_numpy| after {months} months: {worst:.2e} K", flush=True)
    return {"grid_cells": ncell, "months": months, "repeats": repeats, "rows": rows,
            "max_dT": worst, "load": (load0, load_average())}


def critical_cell_steps(ncell: int, parts: int = 2) -> dict[str, float]:
    """Cell-steps on the build's critical path per block kind: spin-up (not recorded) and
    2001-2023 (recorded), split over ``parts`` children, then one of the two truth-run
    children (two scenarios, recorded)."""
    return {
        "spin": ncell / parts * (SPINUP_MONTHS * SPINUP_STEPS_PER_MONTH
                                 + 120 * E.STEPS_PER_MONTH),
        "obs": ncell / parts * 276 * E.STEPS_PER_MONTH,
        "truth": 2 * ncell * TRUTH_MONTHS * E.STEPS_PER_MONTH,
    }


def differences(a: Path, b: Path) -> dict:
    """How two demo folders' NetCDF files differ: values compared, values that differ, and per
    variable the count and the largest absolute difference (file units)."""
    import xarray as xr

    total, differ, per_var = 0, 0, {}
    for f in sorted(p.relative_to(a) for p in a.rglob("*.nc")):
        with xr.open_dataset(a / f, decode_times=False) as x, \
                xr.open_dataset(b / f, decode_times=False) as y:
            for v in x.data_vars:
                xa, ya = x[v].values, y[v].values
                total += xa.size
                if xa.dtype.kind != "f":
                    n = int(np.sum(xa != ya))
                    big = float(n > 0)
                else:
                    same = (xa == ya) | (np.isnan(xa) & np.isnan(ya))
                    n = int(np.sum(~same))
                    big = float(np.nanmax(np.abs(xa.astype(float) - ya))) if n else 0.0
                if n:
                    differ += n
                    name = f"{f.parent.name}/{v}" if f.parent.name != "cmip5" else f"cmip5/{v}"
                    old_n, old_big = per_var.get(name, (0, 0.0))
                    per_var[name] = (old_n + n, max(old_big, big))
    return {"values": total, "differ": differ, "per_variable": per_var}


CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
import yaml
from permaplug.demo.build import build_demo
out, cells = Path(sys.argv[1]), int(sys.argv[2])
load0, t0 = os.getloadavg()[0], time.perf_counter()
cat = build_demo(out, seed=0, n_cells=cells, progress=False)
wall = time.perf_counter() - t0
meta = yaml.safe_load(cat.read_text())["metadata"]
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cells": meta["land_cells"], "wall": wall, "cpu": meta["build_cpu_seconds"],
                  "peak_gb": {"main": own.ru_maxrss / 2**20, "child": kids.ru_maxrss / 2**20},
                  "load": (load0, os.getloadavg()[0]), "package": sys.modules["permaplug"].__file__}))
"""


def build_in_process(package: Path, out: Path, cells: int) -> dict:
    """``build_demo(out, n_cells=cells)`` in a fresh process importing ``package``'s permaplug."""
    env = dict(os.environ, PYTHONPATH=str(package))
    # run in the output's folder: ``python -c`` puts the working directory first on sys.path,
    # which would shadow PYTHONPATH when started from a checkout
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(cells)], env=env,
                          capture_output=True, text=True, check=False, cwd=out.parent)
    if proc.returncode:
        raise SystemExit(f"build with {package} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def full_build(cells: int, before: Path | None, builds: int = 1) -> dict:
    """``builds`` builds of each checkout, alternating (before, now, before, now, ...) after an
    untimed small build each; every figure is the median over a checkout's builds (each build's
    wall time is kept in ``walls``). The first pair's files are compared."""
    runs: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        tmp = Path(tmp)
        order = ([("before", before)] if before else []) + [("now", ROOT)]
        for name, package in order:  # compile and cache the kernels of each checkout
            build_in_process(package, tmp / f"warm-{name}", 300)
            shutil.rmtree(tmp / f"warm-{name}")
        each: dict[str, list[dict]] = {name: [] for name, _ in order}
        for i in range(builds):
            for name, package in order:
                out = tmp / (name if i == 0 else f"{name}-{i}")
                r = build_in_process(package, out, cells)
                each[name].append(r)
                if i:
                    shutil.rmtree(out)  # 3 GB each: only the first pair is compared
                print(f"full build {i + 1}/{builds} ({name}, {r['package']}): {r['cells']} cells "
                      f"in {r['wall']:.1f} s wall, CPU main {r['cpu']['main']} s + children "
                      f"{r['cpu']['workers']} s, critical path {r['cpu']['critical_path']} s, "
                      f"peak memory main {r['peak_gb']['main']:.1f} GB, largest child "
                      f"{r['peak_gb']['child']:.1f} GB, load {r['load'][0]:.1f} -> "
                      f"{r['load'][1]:.1f}", flush=True)
        for name, rs in each.items():
            runs[name] = _median_run(rs)
        if before:
            runs["same_values"] = same_values(tmp / "before", tmp / "now")
            runs["differences"] = differences(tmp / "before", tmp / "now")
            d = runs["differences"]
            print(f"every variable of every NetCDF file equal: {runs['same_values']} "
                  f"({d['differ']} of {d['values']} values differ)", flush=True)
    return runs


def _median_run(rs: list[dict]) -> dict:
    """One build's record with each number the median over ``rs`` (same checkout), plus
    ``walls`` (every build's wall time, s)."""
    med = statistics.median
    return {"cells": rs[0]["cells"], "package": rs[0]["package"], "builds": len(rs),
            "walls": [r["wall"] for r in rs], "wall": med(r["wall"] for r in rs),
            "cpu": {k: med(r["cpu"][k] for r in rs) for k in rs[0]["cpu"]},
            "peak_gb": {k: med(r["peak_gb"][k] for r in rs) for k in rs[0]["peak_gb"]},
            "load": (min(r["load"][0] for r in rs), max(r["load"][1] for r in rs))}


def render(sbs: dict, full: dict | None) -> str:
    lines = ["## Emulator (issue 16 item 2)", "",
             f"Machine: {machine()}. data: demo emulator.", "",
             (f"### Compiled kernel vs NumPy reference, side by side ({sbs['months']} months from "
              f"2001-01 at 4 steps a month on the blocks the {sbs['grid_cells']}-cell build "
              f"runs; median of {sbs['repeats']} alternating runs in one process)"), "",
             ("| block | cells | NumPy reference (CPU us per cell-step) | compiled (CPU us per "
             "cell-step) | ratio |"), "|---|---:|---:|---:|---:|"]
    for r in sbs["rows"]:
        lines.append(f"| {r['what']} | {r['cells']} | {r['numpy']:.2f} | {r['compiled']:.2f} | "
                     f"{r['numpy'] / r['compiled']:.1f} |")
    lines += ["", (f"Largest difference of the final soil temperatures: {sbs['max_dT']:.1e} K. "
                   "1-minute load average "
                   f"{sbs['load'][0]:.1f} before, {sbs['load'][1]:.1f} after.")]
    if full:
        now = full["now"]
        n = now["cells"]
        steps = critical_cell_steps(n)
        cost = {r["block"] + ("-rec" if r["record"] else ""): r for r in sbs["rows"]}
        key = {"spin": "grid", "obs": "grid-rec", "truth": "truth-rec"}

        def emulator_seconds(engine: str) -> float:
            return 1e-6 * sum(steps[k] * cost[key[k]][engine] for k in steps)

        def row(label: str, r: dict) -> str:
            c = r["cpu"]
            return (f"| {label} | {r['wall']:.0f} | {c['main']:.0f} | {c['workers']:.0f} | "
                    f"{c['critical_path']:.0f} | {r['peak_gb']['main']:.1f} / "
                    f"{r['peak_gb']['child']:.1f} | {r['load'][0]:.1f} -> {r['load'][1]:.1f} |")

        crit = now["cpu"]["critical_path"]
        k = now.get("builds", 1)
        lines += ["", (f"### Full build, {n} cells (one fresh process per build; median of {k} "
                       "builds per checkout, alternating)"), "",
                  ("| build | wall (s) | CPU main (s) | CPU children (s) | CPU critical path (s) "
                   "| peak memory main / largest child (GB) | load |"),
                  "|---|---:|---:|---:|---:|---:|---|"]
        if "before" in full:
            lines.append(row("before (--before checkout)", full["before"]))
        lines += [row("now", now),
                  ("| NumPy reference (issue 16, measured before: 1,577 s wall at a load near "
                   "1.5) | 1577 | | | 963 | | |"), "",
                  (f"Critical-path cell-steps of the emulator: {sum(steps.values()) / 1e6:.1f} M "
                   "(spin-up and 2001-2023 split over two children, then one truth-run child); "
                   f"at the NumPy reference's cost above: {emulator_seconds('numpy'):.0f} s. "
                   f"Issue's 1,577 s wall / this critical path: {1577 / crit:.1f}; / this wall: "
                   f"{1577 / now['wall']:.1f} (wall times on this shared machine follow the "
                   "load). The side-by-side costs above alternate with the NumPy reference in one "
                   "process, which leaves the compiled runs' caches cold: they are upper bounds "
                   "of the kernel's cost inside a build.")]
        walls = {name: full[name].get("walls") for name in ("before", "now") if name in full}
        if k > 1:
            lines += ["", "Each build's wall time (s): " + "; ".join(
                f"{name} " + ", ".join(f"{w:.1f}" for w in ws) for name, ws in walls.items())
                + "."]
        if "before" in full:
            b = full["before"]["cpu"]["critical_path"]
            lines += ["", (f"Before / now: {b / crit:.2f} (CPU critical path), "
                           f"{full['before']['wall'] / now['wall']:.2f} (wall). Every variable "
                           "of every NetCDF file of the two builds equal: "
                           f"{full['same_values']}.")]
            d = full.get("differences")
            if d and d["differ"]:
                worst = sorted(d["per_variable"].items(), key=lambda kv: -kv[1][0])
                lines += ["", (f"{d['differ']:,} of {d['values']:,} values differ "
                               f"({100 * d['differ'] / d['values']:.4f} %); per variable (count, "
                               "largest difference in file units): "
                               + "; ".join(f"{k} {n:,}, {big:.3g}" for k, (n, big) in worst)
                               + ".")]
    lines += ["", ("Reproduce: `python benchmarks/bench_emulator.py --cells 16000 --months 2 "
                   "--repeats 3 --full --builds 3 --before DIR --write`.")]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=16000)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also build the whole grid (compiled)")
    ap.add_argument("--before", type=Path, help="with --full: also build with the permaplug "
                    "package in this folder (put on PYTHONPATH) and compare")
    ap.add_argument("--builds", type=int, default=1, help="with --full: builds per checkout "
                    "(alternating; medians reported)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    sbs = side_by_side(args.cells, args.months, args.repeats)
    full = full_build(args.cells, args.before, args.builds) if args.full else None
    text = render(sbs, full)
    print(text)
    if args.write:
        write_section("emulator", text)


if __name__ == "__main__":
    main()
