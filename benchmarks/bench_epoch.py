"""Gridded epoch against its floor: permaplug's training loop vs a bare PyTorch loop.

The same epoch both ways, in one process, alternating, ``--repeats`` times: ``gru`` (hidden 32,
2 layers, no dropout), batch ``--batch`` (1,024), Adam, every training window of every cell of
the demo grid (``--spatial grid``, the default demo data: 983 cells).

* **permaplug**: :func:`permaplug.training.loop.train_model` over a
  :class:`~permaplug.training.windows.WindowSet` (each batch gathered from the monthly arrays).
* **bare** (the floor): the loop anyone would write over windows pre-built as one
  ``[N, 24, F]`` tensor (plus band, static, target tensors): index a batch, forward, MSE,
  backward, Adam. Same initial weights, same batch order, same optimiser.

Both end with the same weights (checked: the largest difference is reported). With
``--compile`` the bare loop is also timed with ``torch.compile(model)`` (first epoch, which
includes compilation, and the next ones) and its weights compared. ``--write`` puts the result
into the "Gridded epoch" section of benchmarks/RESULTS.md.

    python benchmarks/bench_epoch.py [--repeats 3] [--batch 1024] [--windows N] [--compile]
                                     [--write]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import load_average, machine, write_section
from _floor import bare_epoch as _bare_epoch

from permaplug.core import schema
from permaplug.training.config import RunConfig
from permaplug.training.loop import TrainConfig, configure_threads, epoch_seed, train_model
from permaplug.training.predict import window_set
from permaplug.training.runs import build_model, load_table, prepare

HPARAMS = {"hidden_size": 32, "num_layers": 2, "dropout": 0.0}


def bare_epoch(*args, **kw) -> float:
    """The floor in CPU seconds (process time)."""
    return _bare_epoch(*args, clock=time.process_time, **kw)


def max_weight_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--windows", type=int, default=0,
                    help="use this many training windows (a seeded random subset; 0 = all)")
    ap.add_argument("--compile", action="store_true", help="also try torch.compile")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    configure_threads(None)
    from permaplug.demo.build import ensure_demo_catalog

    table = load_table("era5land", str(ensure_demo_catalog(progress=False)), "grid")
    cfg = RunConfig(models=["gru"], epochs=1, batch_size=args.batch, spatial="grid",
                    hparams={"gru": dict(HPARAMS)})
    prep = prepare(table, cfg)
    if 0 < args.windows < len(prep.train):
        pick = torch.randperm(len(prep.train), generator=torch.Generator().manual_seed(1))
        prep.train = prep.train[pick[: args.windows].sort().values.numpy()]
    data = window_set(prep.arrays, prep.normaliser, prep.train)
    t0 = time.process_time()
    x, band, static, y = data.batch(slice(0, len(data)))
    x = x.contiguous()
    build_s = time.process_time() - t0
    n = len(data)
    cells = int(prep.arrays.dynamic.shape[0])
    print(f"{cells} cells, {n} training windows, x {tuple(x.shape)} "
          f"({x.numel() * 4 / 1e6:.0f} MB, built in {build_s:.1f} s)", flush=True)
    tcfg = TrainConfig(epochs=1, batch_size=args.batch, seed=0, lr_schedule="constant")
    ours, bare, diffs = [], [], []
    # warm-up (one-time costs of the first forward/backward in a process), not timed
    few = min(n, 4 * args.batch)
    train_model(build_model("gru", prep, cfg), window_set(prep.arrays, prep.normaliser,
                                                          prep.train[:few]), tcfg, progress=False)
    bare_epoch(build_model("gru", prep, cfg), x, band, static, y, torch.arange(few), args.batch)
    load0 = load_average()
    for _ in range(args.repeats):
        m1 = build_model("gru", prep, cfg)
        t0 = time.process_time()
        train_model(m1, data, tcfg, progress=False)
        ours.append(time.process_time() - t0)
        m2 = build_model("gru", prep, cfg)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(0, 0)))
        bare.append(bare_epoch(m2, x, band, static, y, order, args.batch))
        diffs.append(max_weight_diff(m1, m2))
        print(f"permaplug {ours[-1]:.2f} s, bare {bare[-1]:.2f} s, "
              f"ratio {ours[-1] / bare[-1]:.3f}, weights differ by {diffs[-1]:.1e}", flush=True)
    o, b = statistics.median(ours), statistics.median(bare)
    ratio = statistics.median(x / y for x, y in zip(ours, bare))  # pairs run back to back
    res = {"ours": o, "bare": b, "ratio": ratio, "diff": max(diffs), "load": load0}
    compiled = None
    if args.compile:
        m3 = build_model("gru", prep, cfg)
        c3 = torch.compile(m3)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(0, 0)))
        first = bare_epoch(c3, x, band, static, y, order, args.batch)
        m4 = build_model("gru", prep, cfg)
        bare_epoch(m4, x, band, static, y, order, args.batch)
        diff = max_weight_diff(m3, m4)
        later = [bare_epoch(c3, x, band, static, y, order, args.batch)
                 for _ in range(max(1, args.repeats - 1))]
        eager = [bare_epoch(m4, x, band, static, y, order, args.batch)
                 for _ in range(max(1, args.repeats - 1))]
        compiled = {"first": first, "later": statistics.median(later),
                    "eager": statistics.median(eager), "diff": diff}
        print(f"torch.compile: first epoch {first:.2f} s (with compilation), later "
              f"{compiled['later']:.2f} s vs eager {compiled['eager']:.2f} s; weights after one "
              f"epoch differ from eager by {diff:.1e}", flush=True)
    text = render(res, compiled, cells, n, args.batch, schema.data_label(table), args.repeats)
    print(text)
    if args.write:
        write_section("epoch", text)


def render(res: dict, compiled: dict | None, cells: int, n: int, batch: int, label: str,
           repeats: int) -> str:
    lines = ["## Gridded epoch vs a bare PyTorch loop (issue 16 item 3)", "",
             f"Machine: {machine()}. torch threads: {torch.get_num_threads()}. data: {label}.", "",
             (f"One epoch of `gru` (hidden 32, 2 layers), batch {batch}, over {n:,} training "
              f"windows of the {cells} cells of the default demo grid (`--spatial grid`); median "
              f"of {repeats} alternating epochs in one process (1-minute load average "
              f"{res['load']:.1f} at the start). The bare loop indexes windows pre-built as one "
              "`[N, 24, F]` tensor; permaplug gathers each batch from the monthly arrays."), "",
             ("Times are CPU seconds of this single-threaded process (less sensitive than wall "
              "time to the other jobs on the machine)."), "",
             "| loop | epoch (CPU s) |", "|---|---:|",
             f"| permaplug `train_model` | {res['ours']:.2f} |",
             f"| bare PyTorch loop (floor) | {res['bare']:.2f} |",
             f"| **ratio** (median of the back-to-back pairs) | **{res['ratio']:.2f}** |", "",
             (f"Both loops end with the same weights (largest difference {res['diff']:.1e})."),
             ]
    if compiled:
        lines += ["", (f"`torch.compile` (CPU, default mode) on the bare loop: first epoch "
                       f"{compiled['first']:.1f} s including compilation, later epochs "
                       f"{compiled['later']:.2f} s against {compiled['eager']:.2f} s eager "
                       f"(ratio {compiled['later'] / compiled['eager']:.2f}); weights after one "
                       f"epoch differ from eager by {compiled['diff']:.1e}.")]
    lines += ["", "Reproduce: `python benchmarks/bench_epoch.py --compile --write`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
