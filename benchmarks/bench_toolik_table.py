"""The Toolik table (issue 14): ``permaplug run --catalog toolik --model all`` for several seeds.

Each seed is one run of the command as a user types it (the catalog's run defaults: inputs,
training 1989-2012 with validation and early stopping, test 2013-2021). Per layer: RMSE on the
test years of every network and baseline, the median over the seeds, and its ratio to
climatology's and to ``linear``'s. The issue's goal: the best network's RMSE at 0-7 and 7-28 cm
at least 20 % below climatology's and below linear's.

    python benchmarks/bench_toolik_table.py [--seeds 0 1 2] [--keep DIR] [--write]

``--keep DIR`` keeps the run folders (and reads the finished ones again instead of rerunning).
The ``linear`` baseline uses the run's dynamic inputs; it is also fitted on the point forcing's
own variables only, and the goal is judged against the better of the two.

``--write`` puts the table into the "toolik-table" section of benchmarks/RESULTS.md and the raw
numbers into benchmarks/toolik_table.json. data: real observations (Toolik EDC) + ERA5 (Climate
Reanalyzer).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from _common import write_section

JSON = Path(__file__).with_name("toolik_table.json")
LAYERS = ("stl1", "stl2", "stl3")
LAYER_NAMES = {"stl1": "0-7 cm", "stl2": "7-28 cm", "stl3": "28-100 cm"}
GOAL_LAYERS = ("stl1", "stl2")
GOAL_RATIO = 0.8


RAW = "linear, point forcing only"
"""The linear baseline refitted on the point forcing's own variables + calendar (no derived
features): the goal is judged against the better of the two linear baselines."""


def run_seed(seed: int, out: Path, *extra: str) -> dict:
    """One ``permaplug run --catalog toolik --model all`` (no report); its metrics.json. A
    finished run already in ``out`` (``COMPLETE``) is read, not rerun."""
    if not (out / "COMPLETE").exists():
        cmd = [sys.executable, "-m", "permaplug", "run", "--catalog", "toolik", "--model",
               "all", "--seed", str(seed), "--out", str(out), "--quiet", "--no-report", *extra]
        subprocess.run(cmd, check=True, env={**os.environ, "MPLBACKEND": "Agg"})
    return json.loads((out / "metrics.json").read_text())


def point_forcing_linear(out: Path, features: list[str]) -> dict:
    """The linear baseline on the catalog's source variables and calendar only (per layer)."""
    from permaplug.core.catalog import load_catalog

    cat = load_catalog("toolik")
    own = {v.name for v in cat.provides(cat.metadata["run_defaults"]["source"])}
    raw = [f for f in features if f in own or f in ("year", "month_sin", "month_cos")]
    metrics = run_seed(0, out, "--model", "linear", "--features", ",".join(raw))
    return {"features": raw, "per_layer": metrics["models"]["linear"]["per_layer"]}


def summarise(per_seed: dict[int, dict], raw_linear: dict) -> dict:
    """Median over seeds of each model's per-layer RMSE; ratios to climatology and linear; the
    goal's verdict per layer (against the better of the two linear baselines)."""
    first = next(iter(per_seed.values()))
    models = list(first["models"])
    med = {m: {k: float(np.median([s["models"][m]["per_layer"][k]["rmse"]
                                   for s in per_seed.values()])) for k in LAYERS}
           for m in models}
    kind = {m: first["models"][m]["kind"] for m in models}
    med[RAW] = {k: float(raw_linear["per_layer"][k]["rmse"]) for k in LAYERS}
    kind[RAW] = "baseline"
    nets = [m for m in models if kind[m] == "network"]
    goal = {}
    for k in GOAL_LAYERS:
        best = min(nets, key=lambda m: med[m][k])
        clim, lin = med["climatology"][k], min(med["linear"][k], med[RAW][k])
        goal[k] = {"best": best, "rmse": med[best][k], "vs_climatology": med[best][k] / clim,
                   "vs_linear": med[best][k] / lin,
                   "met": med[best][k] <= GOAL_RATIO * clim and med[best][k] < lin}
    seeds = {}
    for seed, s in per_seed.items():  # the goal seed by seed too (best network of that seed)
        rm = {m: s["models"][m]["per_layer"] for m in models}
        seeds[seed] = {k: min(rm[m][k]["rmse"] for m in nets) / rm["climatology"][k]["rmse"]
                       for k in GOAL_LAYERS}
    return {"median": med, "kind": kind, "goal": goal, "per_seed_best_vs_climatology": seeds,
            "features": first.get("features"), "raw_features": raw_linear["features"],
            "data": first["data"]}


def markdown(summary: dict, seeds: list[int]) -> str:
    med, kind = summary["median"], summary["kind"]
    order = sorted(med, key=lambda m: (kind[m] != "network", med[m]["stl1"]))
    head = ("| model | " + " | ".join(f"{LAYER_NAMES[k]} RMSE | / clim. | / linear"
                                     for k in LAYERS) + " |")
    lines = [(f"data: {summary['data']}. Median over seeds {', '.join(map(str, seeds))} of the "
             "test RMSE (degC, 2013-2021) per layer, and its ratio to climatology's and to "
             "linear's (baselines do not depend on the seed). Inputs (the catalog's run "
             f"defaults): {', '.join(summary['features'] or [])}; '{RAW}' is the linear "
             f"baseline on {', '.join(summary['raw_features'])} (the ratio columns '/ linear' "
             "use the catalog run's linear)."), "", head,
             "|---|" + "---:|---:|---:|" * len(LAYERS)]
    for m in order:
        name = m if kind[m] == "network" else f"{m} (baseline)"
        cells = []
        for k in LAYERS:
            v = med[m][k]
            cells += [f"{v:.3f}", f"{v / med['climatology'][k]:.2f}",
                      f"{v / med['linear'][k]:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    verdict = []
    for k, g in summary["goal"].items():
        verdict.append(f"{LAYER_NAMES[k]}: best network {g['best']} {g['rmse']:.3f} = "
                       f"{g['vs_climatology']:.2f} x climatology, {g['vs_linear']:.2f} x the "
                       "better linear "
                       f"-> {'met' if g['met'] else 'not met'}")
    met = all(g["met"] for g in summary["goal"].values())
    lines += ["", (f"Goal (best network <= {GOAL_RATIO:.1f} x climatology and below the better "
              "linear baseline at "
              f"0-7 and 7-28 cm, medians over the seeds): **{'met' if met else 'not met'}** "
              f"({'; '.join(verdict)}). Seed by seed, the best network's RMSE / climatology's "
              "at 0-7 / 7-28 cm: " + "; ".join(
                  f"seed {seed} {r['stl1']:.2f} / {r['stl2']:.2f}"
                  for seed, r in summary["per_seed_best_vs_climatology"].items()) + ".")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="permaplug-toolik-") as tmp:
        root = args.keep or Path(tmp)
        per_seed = {}
        for seed in args.seeds:
            metrics = run_seed(seed, root / f"seed{seed}")
            config = yaml.safe_load((root / f"seed{seed}" / "config.yaml").read_text())
            metrics["features"] = config["resolved"]["dynamic_features"]
            per_seed[seed] = metrics
        raw_linear = point_forcing_linear(root / "linear-point-forcing",
                                          per_seed[args.seeds[0]]["features"])
    summary = summarise(per_seed, raw_linear)
    text = markdown(summary, args.seeds)
    print(text)
    if args.write:
        raw = {"seeds": args.seeds, "summary": summary,
               "per_seed": {s: {m: v["per_layer"] for m, v in r["models"].items()}
                            for s, r in per_seed.items()}}
        JSON.write_text(json.dumps(raw, indent=1) + "\n")
        write_section("toolik-table", text)
        print(f"wrote benchmarks/RESULTS.md (toolik-table) and {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
