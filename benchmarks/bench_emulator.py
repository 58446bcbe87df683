"""Emulator benchmark: the compiled heat kernel against the NumPy reference, and a full build.

1. **Side by side** (same process, alternating, ``--repeats`` times): the emulator's monthly loop
   (:func:`permaplug.demo.emulator.run`) on ``--subset`` cells of the ``--cells`` demo grid for
   ``--months`` months of real forcing, with ``engine="numpy"`` (the solver that built the demo
   data until issue 16: all cells of a block together, NumPy) and ``engine="compiled"``
   (numba). Both record the monthly means (as the 2001-2100 runs do) and both run without
   recording (as the spin-up does). Reports CPU microseconds per cell-step (median) and the
   ratio, and the largest difference of the final soil temperatures (K).
2. **Full build** (``--full``): ``build_demo(n_cells=--cells)`` with the compiled engine in a
   temporary folder, wall time and the CPU critical path (main process + half of the two
   truth-run workers), against the reference's build time projected from (1): the emulator's
   critical-path cell-steps at the reference's measured cost plus the build's non-emulator time.

``--write`` puts the result into the "Emulator" section of benchmarks/RESULTS.md.

    python benchmarks/bench_emulator.py [--cells 16000] [--subset 2000] [--months 12]
                                        [--repeats 3] [--full] [--write]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _common import load_average, machine, write_section

from permaplug.demo import emulator as E
from permaplug.demo.build import build_demo
from permaplug.demo.forcing import reanalysis_forcing
from permaplug.demo.grid import demo_grid
from permaplug.demo.simulate import (
    SPINUP_STEPS_PER_MONTH,
    TRUTH_YEARS,
    _days,
    _snowfall,
    snow_density,
)
from permaplug.demo.soil import soil_from_statics, static_fields

# the build's emulator work, in months: spin-up (2 steps a month, not recorded), 2001-2023, the
# four scenario runs 2024-2100 (stacked two by two in two worker processes)
SPINUP_MONTHS = 12 * (20 + 51)  # 1940-1959 cycled once, then 1940-1990
TRUTH_MONTHS = 12 * (TRUTH_YEARS[1] - TRUTH_YEARS[0] + 1)


def subset_inputs(cells: int, subset: int, months: int):
    """State, column, surface and forcing of ``subset`` cells spread over the ``cells`` grid."""
    grid = demo_grid(0.5, cells)
    pick = np.linspace(0, grid.ncell - 1, min(subset, grid.ncell)).round().astype(int)
    lat, lon = grid.cell_lat[pick], grid.cell_lon[pick]
    soil = soil_from_statics(static_fields(lat, lon, 0))
    forcing, _ = reanalysis_forcing(lat, lon, 0)
    surface = E.Surface(density=snow_density(lat), n_thaw=soil.n_thaw)
    state = E.initial_state(soil.column, forcing.sel("1940-01", "1969-12").t2m.mean(axis=0))
    f = forcing.sel("2001-01", "2023-12")
    t2m, sf, days = f.t2m[:months], _snowfall(f)[:months], _days(f)[:months]
    return grid.ncell, len(pick), state, soil.column, surface, t2m, sf, days


def side_by_side(cells: int, subset: int, months: int, repeats: int) -> dict:
    ncell, n, state, col, surface, t2m, sf, days = subset_inputs(cells, subset, months)
    for engine in E.ENGINES:  # compile / warm up, excluded from the timings
        E.run(state, col, surface, t2m[:1], sf[:1], days[:1], engine=engine)
    cpu: dict[tuple[str, bool], list[float]] = {}
    finals = {}
    load0 = load_average()
    for _ in range(repeats):
        for record in (True, False):
            for engine in E.ENGINES:
                c0 = time.process_time()
                final, _ = E.run(state, col, surface, t2m, sf, days, record=record,
                                 engine=engine)
                cpu.setdefault((engine, record), []).append(time.process_time() - c0)
                finals[engine] = final
    steps = n * months * E.STEPS_PER_MONTH
    us = {k: 1e6 * statistics.median(v) / steps for k, v in cpu.items()}
    diff = float(np.max(np.abs(finals["compiled"].T - finals["numpy"].T)))
    res = {"grid_cells": ncell, "subset": n, "months": months, "repeats": repeats,
           "us": us, "max_dT": diff, "load": (load0, load_average())}
    for record in (True, False):
        r = us[("numpy", record)] / us[("compiled", record)]
        print(f"record={record}: numpy {us[('numpy', record)]:.2f} us/cell-step, compiled "
              f"{us[('compiled', record)]:.2f} us/cell-step, ratio {r:.1f}", flush=True)
    print(f"largest |T_compiled - T_numpy| after {months} months: {diff:.2e} K", flush=True)
    return res


def critical_cell_steps(ncell: int) -> tuple[float, float]:
    """Cell-steps on the build's critical path: (not recorded, recorded)."""
    spin = ncell * SPINUP_MONTHS * SPINUP_STEPS_PER_MONTH + ncell * 120 * E.STEPS_PER_MONTH
    rec = ncell * 276 * E.STEPS_PER_MONTH + 2 * ncell * TRUTH_MONTHS * E.STEPS_PER_MONTH
    return spin, rec


def full_build(cells: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        t0 = time.perf_counter()
        load0 = load_average()
        cat = build_demo(Path(tmp) / "demo", seed=0, n_cells=cells, progress=True)
        wall = time.perf_counter() - t0
        meta = yaml.safe_load(cat.read_text())["metadata"]
    cpu = meta["build_cpu_seconds"]
    print(f"full build: {meta['land_cells']} cells in {wall:.1f} s wall, CPU critical path "
          f"{cpu['critical_path']} s", flush=True)
    return {"cells": meta["land_cells"], "wall": wall, "cpu": cpu,
            "load": (load0, load_average())}


def render(sbs: dict, full: dict | None) -> str:
    us = sbs["us"]
    lines = ["## Emulator (issue 16 item 2)", "",
             f"Machine: {machine()}. data: demo emulator.", "",
             (f"### Compiled kernel vs NumPy reference, side by side ({sbs['subset']} cells of "
              f"the {sbs['grid_cells']}-cell grid, {sbs['months']} months from 2001-01, 4 steps "
              f"a month, median of {sbs['repeats']} alternating runs in one process)"), "",
             ("| work | NumPy reference (CPU us per cell-step) | compiled (CPU us per cell-step) "
             "| ratio |"), "|---|---:|---:|---:|"]
    for record, what in ((True, "recorded (2001-2100 runs)"), (False, "not recorded (spin-up)")):
        a, b = us[("numpy", record)], us[("compiled", record)]
        lines.append(f"| {what} | {a:.2f} | {b:.2f} | {a / b:.1f} |")
    lines += ["", (f"Largest difference of the final soil temperatures: {sbs['max_dT']:.1e} K "
                   "(the default demo built with either engine is identical: every NetCDF "
                   "variable equal). 1-minute load average "
                   f"{sbs['load'][0]:.1f} before, {sbs['load'][1]:.1f} after.")]
    if full:
        n = full["cells"]
        spin, rec = critical_cell_steps(n)
        emu_new = 1e-6 * (spin * us[("compiled", False)] + rec * us[("compiled", True)])
        emu_old = 1e-6 * (spin * us[("numpy", False)] + rec * us[("numpy", True)])
        crit = full["cpu"]["critical_path"]
        other = max(crit - emu_new, 0.0)
        old = emu_old + other
        lines += ["", f"### Full build, {n} cells", "",
                  "| build | wall (s) | CPU critical path (s) |", "|---|---:|---:|",
                  f"| compiled (measured) | {full['wall']:.0f} | {crit:.0f} |",
                  (f"| NumPy reference (projected: {spin + rec:.3g} critical-path cell-steps at "
                   f"its measured cost + the {other:.0f} s of non-emulator work) | | "
                   f"{old:.0f} |"),
                  "| NumPy reference (issue 16, measured before: 1,577 s wall) | 1577 | 963 |",
                  "",
                  (f"CPU critical path ratio (projected reference / measured compiled): "
                   f"{old / crit:.1f}; against the issue's 1,577 s wall: "
                   f"{1577 / full['wall']:.1f}. 1-minute load average {full['load'][0]:.1f} "
                   f"before, {full['load'][1]:.1f} after (wall times on this shared machine "
                   "depend on the load).")]
    lines += ["", "Reproduce: `python benchmarks/bench_emulator.py --full --write`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=16000)
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also build the whole grid (compiled)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    sbs = side_by_side(args.cells, args.subset, args.months, args.repeats)
    full = full_build(args.cells) if args.full else None
    text = render(sbs, full)
    print(text)
    if args.write:
        write_section("emulator", text)


if __name__ == "__main__":
    main()
