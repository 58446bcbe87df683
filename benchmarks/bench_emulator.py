"""Emulator benchmark: the compiled heat kernel against the NumPy reference, and a full build.

1. **Side by side** (same process, alternating, ``--repeats`` times): the emulator's monthly loop
   (:func:`permaplug.demo.emulator.run`) for ``--months`` months of real forcing from 2001 on
   the blocks the build runs: all cells of the ``--cells`` demo grid (the spin-up, not
   recorded, and 2001-2023, recorded) and the same cells stacked twice (a truth-run worker's
   block of two scenarios, recorded), with ``engine="numpy"`` (the solver that built the demo
   data until issue 16: all cells of a block together, NumPy) and ``engine="compiled"``
   (numba). Reports CPU microseconds per cell-step (median), the ratio, and the largest
   difference of the final soil temperatures (K).
2. **Full build** (``--full``): ``build_demo(n_cells=--cells)`` with the compiled engine in a
   temporary folder: wall time and the CPU critical path (main process + half of the two
   truth-run workers), against the reference's build projected from (1): the emulator's
   critical-path cell-steps at the reference's measured cost plus the build's non-emulator
   time.

``--write`` puts the result into the "Emulator" section of benchmarks/RESULTS.md.

    python benchmarks/bench_emulator.py [--cells 16000] [--months 3] [--repeats 3] [--full]
                                        [--write]
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
    month_days,
    snow_density,
    snowfall,
)
from permaplug.demo.soil import soil_from_statics, static_fields

# the build's emulator work, in months: spin-up (2 steps a month, not recorded), 2001-2023, the
# four scenario runs 2024-2100 (stacked two by two in two worker processes)
SPINUP_MONTHS = 12 * (20 + 51)  # 1940-1959 cycled once, then 1940-1990
TRUTH_MONTHS = 12 * (TRUTH_YEARS[1] - TRUTH_YEARS[0] + 1)


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


def critical_cell_steps(ncell: int) -> dict[str, float]:
    """Cell-steps on the build's critical path per block kind (main process, then one of the two
    truth-run workers): spin-up (not recorded), 2001-2023 (recorded), truth (recorded)."""
    return {
        "spin": ncell * (SPINUP_MONTHS * SPINUP_STEPS_PER_MONTH + 120 * E.STEPS_PER_MONTH),
        "obs": ncell * 276 * E.STEPS_PER_MONTH,
        "truth": 2 * ncell * TRUTH_MONTHS * E.STEPS_PER_MONTH,
    }


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
    lines += ["", (f"Largest difference of the final soil temperatures: {sbs['max_dT']:.1e} K "
                   "(the default demo built with either engine is identical: every NetCDF "
                   "variable equal). 1-minute load average "
                   f"{sbs['load'][0]:.1f} before, {sbs['load'][1]:.1f} after.")]
    if full:
        n = full["cells"]
        steps = critical_cell_steps(n)
        cost = {r["block"] + ("-rec" if r["record"] else ""): r for r in sbs["rows"]}
        key = {"spin": "grid", "obs": "grid-rec", "truth": "truth-rec"}

        def emulator_seconds(engine: str) -> float:
            return 1e-6 * sum(steps[k] * cost[key[k]][engine] for k in steps)

        crit = full["cpu"]["critical_path"]
        other = max(crit - emulator_seconds("compiled"), 0.0)
        old = emulator_seconds("numpy") + other
        lines += ["", f"### Full build, {n} cells", "",
                  "| build | wall (s) | CPU critical path (s) |", "|---|---:|---:|",
                  f"| compiled (measured) | {full['wall']:.0f} | {crit:.0f} |",
                  (f"| NumPy reference (projected: {sum(steps.values()):.3g} critical-path "
                   f"cell-steps at its cost measured above + the {other:.0f} s of non-emulator "
                   f"work) | | {old:.0f} |"),
                  "| NumPy reference (issue 16, measured before: 1,577 s wall) | 1577 | 963 |",
                  "",
                  (f"CPU critical path ratio (projected reference / measured compiled): "
                   f"{old / crit:.1f}; issue's 1,577 s wall / this wall: "
                   f"{1577 / full['wall']:.1f}. 1-minute load average {full['load'][0]:.1f} "
                   f"before, {full['load'][1]:.1f} after (wall times on this shared machine "
                   "follow the load).")]
    lines += ["", "Reproduce: `python benchmarks/bench_emulator.py --full --write`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=16000)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also build the whole grid (compiled)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    sbs = side_by_side(args.cells, args.months, args.repeats)
    full = full_build(args.cells) if args.full else None
    text = render(sbs, full)
    print(text)
    if args.write:
        write_section("emulator", text)


if __name__ == "__main__":
    main()
