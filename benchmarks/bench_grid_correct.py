"""The gridded ``correct`` stage, now vs an older checkout (issue 16 item 1 at a grid's scale).

Runs ``bench_grid.py --stage correct`` (``correct_to_store``: ``qm``, ``fast=True``, the four
RCPs 2001-2100 of a demo grid, one block of ``--chunk`` cells at a time, into Zarr) in fresh
processes, alternating between ``--before DIR`` (a folder holding an older ``permaplug`` package,
put first on ``PYTHONPATH``) and this checkout, ``--repeats`` times each after one untimed run of
each (numba compiles each checkout's kernels into its ``__pycache__`` on first use). Reports the
median CPU time (user + system of the stage's process, imports included), wall time and peak
memory, the 1-minute load, and the largest difference between the two checkouts' corrected
values. ``--write`` puts the result into the "grid-correct" section of benchmarks/RESULTS.md.

    python benchmarks/bench_grid_correct.py --catalog DEMO/catalog.yaml --before /tmp/old \
        [--repeats 2] [--write]

The table the stage corrects (``table.nc``, gridded) is built once into ``--work`` with this
checkout (``bench_grid.py --stage data``) when it is missing there.
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
from pathlib import Path

import numpy as np
from _common import load_average, machine, write_section

ROOT = Path(__file__).resolve().parents[1]


def run_stage(root: Path, stage: str, catalog: Path, work: Path, chunk: int) -> dict:
    """One ``bench_grid.py --stage`` of the checkout at ``root`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore",
           "MPLBACKEND": "Agg"}
    cmd = [sys.executable, str(root / "benchmarks" / "bench_grid.py"), "--stage", stage,
           "--catalog", str(catalog), "--work", str(work), "--chunk", str(chunk)]
    load = load_average()
    t0 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row.update(wall=time.perf_counter() - t0, load=load,
               cpu=(c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime))
    return row


def largest_differences(a: Path, b: Path) -> dict[str, float]:
    """Largest absolute difference per variable of two Zarr stores (inf: NaN differ)."""
    import xarray as xr

    x, y = xr.open_zarr(a), xr.open_zarr(b)
    out = {}
    for v in x.data_vars:
        xa, ya = x[v].values, y[v].values
        if not np.array_equal(np.isnan(xa), np.isnan(ya)):
            out[v] = float("inf")
            continue
        d = np.abs(xa - ya)
        out[v] = float(np.nanmax(d)) if np.isfinite(d).any() else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", type=Path, required=True, help="a gridded demo catalog")
    ap.add_argument("--before", type=Path, required=True,
                    help="folder holding the older permaplug package")
    ap.add_argument("--label", default="before", help="name of --before in the table")
    ap.add_argument("--work", type=Path, default=Path("/tmp/permaplug-bench-grid-correct"))
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    sides = {"before": args.before.resolve(), "now": ROOT}
    works = {}
    for name in sides:
        works[name] = args.work / name
        works[name].mkdir(parents=True, exist_ok=True)
    table = args.work / "table.nc"
    if not table.exists():
        run_stage(ROOT, "data", args.catalog, args.work, args.chunk)
    for name in sides:
        link = works[name] / "table.nc"
        if not link.exists():
            link.symlink_to(table)
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for i in range(args.repeats + 1):  # the first round compiles and is not counted
        for name, root in sides.items():
            row = run_stage(root, "correct", args.catalog, works[name], args.chunk)
            print(json.dumps({"side": name, "round": i, **row}), flush=True)
            if i:
                runs[name].append(row)
    med = {n: {k: statistics.median(r[k] for r in rows) for k in ("cpu", "wall", "peak_mb",
                                                                   "load")}
           for n, rows in runs.items()}
    diff = largest_differences(works["before"] / "correct.zarr", works["now"] / "correct.zarr")
    random_vars = [v for v in ("tp", "sf") if v in diff]  # xsdba draws random numbers for these
    fast = max(d for v, d in diff.items() if v not in random_vars)
    values = runs["now"][0].get("values", 0)
    lines = [
        "## Gridded correction stage, before and after (issue 16 item 1)", "",
        f"Machine: {machine()}. data: demo emulator grid ({args.catalog.parent.name}).", "",
        (f"`python benchmarks/bench_grid_correct.py --catalog {args.catalog.parent.name}/"
        f"catalog.yaml --before DIR --repeats {args.repeats}`: `correct_to_store` (`qm`, "
        f"`fast=True`, four RCPs 2001-2100, {values:,} corrected values, blocks of "
        f"{args.chunk} cells), fresh processes alternating between the two checkouts, median "
        f"of {args.repeats} each after one untimed run each. CPU = the stage's process (user + "
        "system, imports included)."), "",
        "| checkout | CPU (s) | wall (s) | peak (MB) | load |", "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("before", args.label), ("now", "now")):
        m = med[name]
        lines.append(f"| {label} | {m['cpu']:.1f} | {m['wall']:.1f} | {m['peak_mb']:.0f} | "
                     f"{m['load']:.1f} |")
    lines += ["", (f"Ratio before / now: {med['before']['cpu'] / med['now']['cpu']:.2f} (CPU), "
              f"{med['before']['wall'] / med['now']['wall']:.2f} (wall). Largest difference "
              f"between the two checkouts' corrected values: {fast:.1e} (the variables "
              "mapped by the fast path), "
              + ", ".join(f"{v} {diff[v]:.1e}" for v in random_vars)
              + " (xsdba with random draws: not reproducible run to run before dd642a9, so "
              "they differ between the checkouts; see docs/bias-correction.md)."),
              "", "All runs (CPU / wall s): " + "; ".join(
                  f"{n} {r['cpu']:.1f} / {r['wall']:.1f}" for n in sides for r in runs[n])]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("grid-correct", text)


if __name__ == "__main__":
    main()
