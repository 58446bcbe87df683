"""Training benchmarks: permaplug's loop vs a bare PyTorch loop, and a full ``permaplug run``.

1. For each network, one epoch through ``permaplug.training.loop.train_model`` (windows
   gathered on demand from index views) against a bare loop over the same windows
   materialised as one tensor, the same initial weights, batch order and optimiser, in the
   same process. Reports the median of ``--repeats`` epochs and the ratio.
2. Wall time and peak resident memory of
   ``permaplug run --model all --epochs 50 --no-project --no-explain --no-report`` on the
   default (demo) data, in a child process.

Writes the "Training" section of benchmarks/RESULTS.md (between markers) with ``--write``.

    python benchmarks/bench_training.py [--epochs 50] [--repeats 5] [--skip-run] [--write]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, write_section
from _floor import bare_epoch

from permaplug.core import schema
from permaplug.training.config import NETWORKS, RunConfig
from permaplug.training.loop import TrainConfig, configure_threads, train_model
from permaplug.training.predict import window_set
from permaplug.training.runs import build_model, load_table, prepare

RESULTS = Path(__file__).with_name("RESULTS.md")
START, END = "<!-- training:start -->", "<!-- training:end -->"


def loop_vs_bare(repeats: int, batch_size: int = 32) -> tuple[list[dict], int, str]:
    table = load_table("era5land", None)
    cfg = RunConfig(epochs=1, batch_size=batch_size)
    prep = prepare(table, cfg)
    data = window_set(prep.arrays, prep.normaliser, prep.train)
    x, band, static, y = data.batch(slice(0, len(data)))
    x = x.contiguous()  # the bare loop materialises every window
    rows = []
    for name in NETWORKS:
        ours, bare = [], []
        for r in range(repeats):
            model = build_model(name, prep, cfg)
            t0 = time.perf_counter()
            train_model(model, data, TrainConfig(epochs=1, batch_size=batch_size, seed=r),
                        progress=False)
            ours.append(time.perf_counter() - t0)
            model = build_model(name, prep, cfg)
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(r))
            bare.append(bare_epoch(model, x, band, static, y, order, batch_size))
        o, b = statistics.median(ours), statistics.median(bare)
        rows.append({"model": name, "ours": o, "bare": b, "ratio": o / b})
        print(f"{name:>12}: permaplug {o:.3f} s, bare {b:.3f} s, ratio {o / b:.2f}", flush=True)
    return rows, len(data), schema.data_label(table)


def full_run(epochs: int) -> dict:
    exe = Path(sys.executable).with_name("permaplug")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [str(exe), "run", "--model", "all", "--epochs", str(epochs), "--out", str(out),
               "--no-project", "--no-explain", "--no-report", "--quiet"]
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        if proc.returncode:
            raise SystemExit(f"permaplug run failed:\n{proc.stdout}\n{proc.stderr}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = usage.ru_maxrss / 1024  # MB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        table = (out / "comparison.md").read_text()
    print(proc.stdout)
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "table": table, "cmd": " ".join(cmd[1:]),
            "load": (load_before, load_after)}


def render(rows, n_windows, label, run, epochs) -> str:
    lines = [START, "## Training", "",
             f"Machine: {machine()}. torch threads: {torch.get_num_threads()}.", "",
             f"### One epoch, permaplug loop vs bare PyTorch loop (data: {label})", "",
             (f"{n_windows} training windows, batch 32, median of repeated epochs, same process. "
              "permaplug gathers each batch from an `unfold` view of the monthly arrays; the "
              "bare loop indexes one pre-materialised `[N, 24, F]` tensor."), "",
             "| network | permaplug (s) | bare (s) | ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['ours']:.3f} | {r['bare']:.3f} | {r['ratio']:.2f} |"
              for r in rows]
    if run:
        lines += ["", f"### `permaplug {run['cmd'].split(' --out')[0]}` (data: {label})", "",
                  (f"Wall time {run['wall']:.0f} s, CPU time {run['cpu']:.0f} s, peak resident "
                   f"memory {run['peak_mb']:.0f} MB ({epochs} epochs, five networks and three "
                   "baselines; demo data already cached). 1-minute load average "
                   f"{run['load'][0]:.1f} before and {run['load'][1]:.1f} after"
                   + (": other jobs shared the two cores, so wall time > CPU time."
                      if run["wall"] > 1.2 * run["cpu"] else ".")), "",
                  "Comparison table of that run:", ""]
        lines += ["> " + ln if ln else ">" for ln in run["table"].strip().splitlines()]
    lines += ["", "Reproduce: `python benchmarks/bench_training.py --write`.", END]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-run", action="store_true", help="only the loop comparison")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    configure_threads(None)
    rows, n, label = loop_vs_bare(args.repeats)
    run = None if args.skip_run else full_run(args.epochs)
    text = render(rows, n, label, run, args.epochs)
    print(text)
    if args.write:
        write_section("training", text.strip().removeprefix(START).removesuffix(END).strip())


if __name__ == "__main__":
    main()
