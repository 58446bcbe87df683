"""Correction benchmark: the fast quantile-mapping paths against xsdba, side by side in one run.

One block of ``--cells`` (1,024) cells, ``group="time.month"``, 50 quantiles, additive (a
temperature): calibration 2001-2023 (276 months), four scenarios 2001-2100 (4 x 1,200 months)
to adjust. Methods (``--methods``): ``qm`` (xsdba ``EmpiricalQuantileMapping`` against
``fastqm.train_eqm`` + ``adjust_eqm_exact``), ``qdm`` (xsdba ``QuantileDeltaMapping``, one
adjust call over the whole series, against ``fastqm.train_eqm`` + ``adjust_qdm_exact``) and
``dqm`` (xsdba ``DetrendedQuantileMapping``, ``detrend=1``, against ``fastqm.train_dqm`` +
``adjust_dqm_exact``). Data: a
seeded synthetic block (seasonal cycle + bias + warming trend + noise per cell), the same
arrays for both paths. Each path is run once to warm up (numba compilation, xsdba's first-call
costs), then ``--repeats`` times; the table gives medians (wall and CPU of this process) and
the ratio xsdba / fast. The two results are compared in the same run (max |difference|).

The 150,000-cell projection (0.1 deg ERA5-Land over mainland Alaska) multiplies the per-cell
median by 150,000, for one variable and for the twelve corrected variables; the measured
gridded stage is in ``bench_grid.py`` (``correct``).

``--first-call`` adds the first-call cost: fresh processes that import the fast path and run
each method once on a 16-cell block, with numba's on-disk cache as left by the previous run
(``warm``, every run after the first one of an installation) and with an empty cache
(``cold``: the first run after installing or editing ``fastqm.py``, which compiles the
kernels).

    python benchmarks/bench_correction.py [--cells 1024] [--repeats 5] [--methods qm qdm dqm]
        [--first-call] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

FULL_GRID = 150_000
VARIABLES = 12  # schema.FORCING + schema.SOIL_WATER
XSDBA_CLASS = {"qm": "EmpiricalQuantileMapping", "qdm": "QuantileDeltaMapping",
               "dqm": "DetrendedQuantileMapping"}
FAST = {"qm": "train_eqm` + `adjust_eqm_exact", "qdm": "train_eqm` + `adjust_qdm_exact",
        "dqm": "train_dqm` + `adjust_dqm_exact"}


def block(cells: int, seed: int = 0):
    """``(ref [276, C], hist [276, C], sim [4, 1200, C], calibration time, scenario time)``."""
    rng = np.random.default_rng(seed)
    t_cal = pd.date_range("2001-01-01", "2023-12-01", freq="MS")
    t_sim = pd.date_range("2001-01-01", "2100-12-01", freq="MS")
    amp = rng.uniform(10, 20, cells)
    bias = rng.uniform(-4, 4, cells)

    def season(t):
        return amp * np.cos(2 * np.pi * (t.month.to_numpy() - 7) / 12)[:, None]

    ref = season(t_cal) + rng.normal(size=(t_cal.size, cells))
    hist = season(t_cal) + bias + 1.5 * rng.normal(size=(t_cal.size, cells))
    trend = np.linspace(0, 1, t_sim.size)[None, :, None] * np.array([1, 2, 3, 6])[:, None, None]
    sim = season(t_sim)[None] + bias + trend + 1.5 * rng.normal(size=(4, t_sim.size, cells))
    return ref, hist, sim, t_cal, t_sim


def run_xsdba(method: str, ref, hist, sim, t_cal, t_sim) -> np.ndarray:
    """xsdba train + adjust (nearest, constant): ``[4, T, C]``."""
    import xarray as xr
    import xsdba

    cls = getattr(xsdba, XSDBA_CLASS[method])

    def da(a, t, dims=("time", "cell")):
        return xr.DataArray(a, dims=dims, coords={"time": t}, attrs={"units": "degC"})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adj = cls.train(da(ref, t_cal), da(hist, t_cal), nquantiles=50, group="time.month",
                        kind="+")
        out = adj.adjust(da(sim, t_sim, ("scenario", "time", "cell")), interp="nearest",
                         extrapolation="constant")
    return out.transpose("scenario", "time", "cell").values


def run_fast(method: str, ref, hist, sim, t_cal, t_sim) -> np.ndarray:
    """The same with :mod:`permaplug.correction.fastqm`: ``[4, T, C]``."""
    from permaplug.correction import fastqm

    if method == "dqm":
        af, hist_q, scaling = fastqm.train_dqm(ref, hist, fastqm.months_of(t_cal), 50)
        return fastqm.adjust_dqm_exact(sim, t_sim.values, af, hist_q, scaling)[0]
    af, hist_q = fastqm.train_eqm(ref, hist, fastqm.months_of(t_cal), 50)
    if method == "qdm":
        out, _ = fastqm.adjust_qdm_exact(sim, t_sim.values, af, fastqm.nodes(50))
    else:
        out, _ = fastqm.adjust_eqm_exact(sim, t_sim.values, af, hist_q)
    return out


def timed(fn, args, repeats: int) -> tuple[list[float], list[float], np.ndarray]:
    fn(*args)  # warm-up: first-call costs are not the steady state
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, out


def measure(cells: int, repeats: int, method: str) -> dict:
    args = (method, *block(cells))
    xs_w, xs_c, xs_out = timed(run_xsdba, args, max(3, repeats // 2))
    fa_w, fa_c, fa_out = timed(run_fast, args, repeats)
    med = statistics.median
    return {
        "method": method, "cells": cells, "values": args[3].size,
        "repeats_xsdba": len(xs_w), "repeats_fast": len(fa_w),
        "xsdba_wall": med(xs_w), "xsdba_cpu": med(xs_c), "fast_wall": med(fa_w),
        "fast_cpu": med(fa_c), "max_abs_diff": float(np.nanmax(np.abs(xs_out - fa_out))),
        "nan_agree": bool(np.array_equal(np.isnan(xs_out), np.isnan(fa_out))),
    }


FIRST_CALL = """
import sys, time, json
c0 = time.process_time()
sys.path.insert(0, {bench!r})
import xarray
from bench_correction import block, run_fast
from permaplug.correction import fastqm
res = {{"import": time.process_time() - c0}}
args = block(16)
for m in {methods!r}:
    c0 = time.process_time()
    run_fast(m, *args)
    res[m] = time.process_time() - c0
print(json.dumps(res))
"""


def first_call(methods: list[str]) -> dict[str, dict[str, float]]:
    """CPU seconds of import and of each method's first call in fresh processes: ``warm``
    (numba's usual cache, filled by a first process) and ``cold`` (an empty cache)."""
    code = FIRST_CALL.format(bench=str(Path(__file__).parent), methods=list(methods))

    def run(env: dict) -> dict[str, float]:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    run(dict(os.environ))  # fills the usual cache
    with tempfile.TemporaryDirectory() as empty:
        return {"warm": run(dict(os.environ)),
                "cold": run({**os.environ, "NUMBA_CACHE_DIR": empty})}


def markdown(rows: list[dict], load: float, first: dict | None = None) -> str:
    from _common import machine

    r0 = rows[0]

    def grid_hours(r: dict, cpu: float, variables: int = 1) -> str:
        return f"{cpu / r['cells'] * FULL_GRID * variables / 3600:.3f}"

    lines = [
        "## Quantile mapping: fast paths vs xsdba (issue 16 item 1)", "",
        (f"Machine: {machine()}. 1-minute load average at the start: {load:.1f}. data: seeded "
         "synthetic block (seasonal cycle, bias, warming trend, noise per cell); no real-world "
         "meaning."), "",
        (f"`python benchmarks/bench_correction.py --cells {r0['cells']} --methods "
         f"{' '.join(r['method'] for r in rows)} --write`: one block of {r0['cells']:,} cells, "
         "`group=\"time.month\"`, 50 quantiles, additive; train on 276 calibration months, "
         f"adjust 4 scenarios x 1,200 months ({r0['values']:,} values; one adjust call over "
         "the whole series: QDM ranks each value within its calendar month of it, DQM fits "
         "each month's linear trend over it). Both paths in the "
         "same process on the same arrays, each warmed up once, then medians of "
         f"{r0['repeats_xsdba']} (xsdba) and {r0['repeats_fast']} (fast) repeats; CPU = this "
         "process's CPU time."), "",
        "| method | path | wall (s) | CPU (s) | values / s (CPU) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines += [
            (f"| {r['method']} | xsdba `{XSDBA_CLASS[r['method']]}` train + adjust | "
             f"{r['xsdba_wall']:.3f} | {r['xsdba_cpu']:.3f} | "
             f"{r['values'] / r['xsdba_cpu'] / 1e6:.2f} M |"),
            (f"| {r['method']} | `fastqm.{FAST[r['method']]}` | {r['fast_wall']:.3f} | "
             f"{r['fast_cpu']:.3f} | {r['values'] / r['fast_cpu'] / 1e6:.2f} M |"),
            (f"| {r['method']} | **ratio xsdba / fast** | "
             f"**{r['xsdba_wall'] / r['fast_wall']:.1f} x** | "
             f"**{r['xsdba_cpu'] / r['fast_cpu']:.1f} x** | |"),
        ]
    lines += ["", "Largest difference between the two results (tests require <= 1e-6): "
              + "; ".join(f"{r['method']} {r['max_abs_diff']:.2g} degC (NaN in the same "
                          f"places: {'yes' if r['nan_agree'] else 'NO'})" for r in rows)
              + ".", ""]
    lines.append(
        f"Projected to the full 0.1 deg grid ({FULL_GRID:,} land cells), CPU-hours for one "
        f"variable / for the {VARIABLES} corrected variables: "
        + "; ".join(f"{r['method']}: xsdba {grid_hours(r, r['xsdba_cpu'])} / "
                    f"{grid_hours(r, r['xsdba_cpu'], VARIABLES)} h, fast "
                    f"{grid_hours(r, r['fast_cpu'])} / "
                    f"{grid_hours(r, r['fast_cpu'], VARIABLES)} h" for r in rows)
        + " (quantile mapping alone; reading, writing, precipitation's xsdba path and the "
        "scenario mapping come on top, see the gridded `correct` stage).")
    if first:
        lines += ["", "First call in a fresh process (`--first-call`; CPU s, 16-cell block, methods "
                  "in this order, each after the previous one): "
                  + "; ".join(f"{k} cache: import {v['import']:.2f}, "
                              + ", ".join(f"{m} {v[m]:.2f}" for m in rows_methods(rows))
                              for k, v in first.items()) + "."]
    return "\n".join(lines) + "\n"


def rows_methods(rows: list[dict]) -> list[str]:
    return [r["method"] for r in rows]


def main() -> None:
    from _common import load_average, write_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--methods", nargs="+", choices=sorted(XSDBA_CLASS), default=["qm", "qdm", "dqm"])
    ap.add_argument("--first-call", action="store_true",
                    help="also measure the first call in fresh processes (warm and cold cache)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    a = ap.parse_args()
    load = load_average()
    rows = [measure(a.cells, a.repeats, m) for m in a.methods]
    text = markdown(rows, load, first_call(a.methods) if a.first_call else None)
    print(text)
    if a.write:
        write_section("correction", text)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    main()
