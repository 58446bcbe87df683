"""Choose the Toolik catalog's input features on the VALIDATION months (issue 14).

Every candidate feature set trains each network on Toolik's training years with the
catalog's split (1989-2012 targets, the last ``--val-fraction`` of those months validate, early
stopping on them) and is scored on the validation windows only: RMSE (degC) per layer. The
test years (2013-2021) are never read by the choice. The score of a candidate is the median,
over networks and seeds, of the mean RMSE of the 0-7 and 7-28 cm layers (the layers of the
issue's goal); the lowest wins.

    python benchmarks/bench_toolik_features.py [--seeds 0 1 2] [--networks gru tcn ...]
        [--candidates raw snowpack ...] [--write] [--from-json]

``--write`` puts the table into the "toolik-features" section of benchmarks/RESULTS.md and the
raw numbers into benchmarks/toolik_features.json. data: real observations (Toolik EDC) + ERA5
(Climate Reanalyzer).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import write_section

JSON = Path(__file__).with_name("toolik_features.json")

BASE = ["t2m", "tp", "d2m", "year", "month_sin", "month_cos"]
CANDIDATES: dict[str, list[str]] = {
    "raw": BASE,
    "snowpack": BASE + ["snowpack_dd"],
    "snowpack+dd": BASE + ["snowpack_dd", "tdd", "fdd"],
    "snow+dd": BASE + ["snowfall_t", "snowpack_dd", "tdd", "fdd"],
    "snowpack+dd+mean12": BASE + ["snowpack_dd", "tdd", "fdd", "t2m_mean12"],
    "all forcing": BASE + ["snowfall_t", "snowpack_dd", "tdd", "fdd", "t2m_mean12",
                           "t2m_mean24"],
}
GOAL_LAYERS = ("stl1", "stl2")


def score_candidates(names: list[str], networks: list[str], seeds: list[int], epochs: int,
                     val_fraction: float, early_stopping: int, echo=print) -> dict:
    """Validation RMSE per candidate, network, seed and layer (degC); reads no test month."""
    import torch

    from permaplug.core.catalog import load_catalog
    from permaplug.data.assemble import assemble_table
    from permaplug.training.config import RunConfig
    from permaplug.training.loop import TrainConfig, train_model
    from permaplug.training.metrics import model_metrics
    from permaplug.training.predict import predict_windows, predictions_frame, window_set
    from permaplug.training.runs import build_model, prepare

    torch.set_num_threads(1)
    cat = load_catalog("toolik")
    defaults = cat.metadata["run_defaults"]
    train_years = [int(y) for y in str(defaults["train_years"]).split("-")]
    test_years = [int(y) for y in str(defaults["test_years"]).split("-")]
    table = assemble_table(cat, source=defaults["source"], spatial="sites")
    out: dict = {"data": table.attrs.get("permaplug_data", ""), "candidates": {}}
    for cand in names:
        feats = CANDIDATES[cand]
        out["candidates"][cand] = {"features": feats, "scores": {}}
        for seed in seeds:
            cfg = RunConfig(source=defaults["source"], catalog="toolik", spatial="sites",
                            train_years=train_years, test_years=test_years, use_z=False,
                            features=feats, epochs=epochs, seed=seed,
                            val_fraction=val_fraction, early_stopping=early_stopping)
            cfg.validate()
            prep = prepare(table, cfg)
            for name in networks:
                t0 = time.perf_counter()
                model = build_model(name, prep, cfg)
                tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                 seed=seed, early_stopping=cfg.early_stopping,
                                 lr_schedule=cfg.lr_schedule)
                hist = train_model(model, window_set(prep.arrays, prep.normaliser, prep.train),
                                   tc, window_set(prep.arrays, prep.normaliser, prep.val),
                                   progress=False)
                pred = predict_windows(model, prep.arrays, prep.normaliser, prep.val)
                frame = predictions_frame(prep.arrays, prep.val, pred, name)
                layers = {k: v["rmse"] for k, v in model_metrics(frame)["per_layer"].items()
                          if v["n"]}
                out["candidates"][cand]["scores"].setdefault(name, {})[str(seed)] = layers
                echo(f"{cand:>20} seed {seed} {name:>12}: val RMSE "
                     + " ".join(f"{k} {v:.3f}" for k, v in layers.items())
                     + f" (best epoch {hist.best_epoch}, {time.perf_counter() - t0:.1f} s)")
        out["candidates"][cand]["windows"] = {"train": len(prep.train),
                                              "validation": len(prep.val)}
    return out


def summarise(result: dict) -> dict[str, dict]:
    """Per candidate: median over networks and seeds of each layer's RMSE and of the goal
    score (mean of stl1, stl2); the best network's median-over-seeds goal score."""
    summary = {}
    for cand, rec in result["candidates"].items():
        per_run = [(net, r) for net, seeds in rec["scores"].items() for r in seeds.values()]
        goal = [float(np.mean([r[k] for k in GOAL_LAYERS])) for _, r in per_run]
        layers = sorted({k for _, r in per_run for k in r})
        best = min((float(np.median([np.mean([r[k] for k in GOAL_LAYERS])
                                     for r in seeds.values()])), net)
                   for net, seeds in rec["scores"].items())
        raw = result["candidates"].get("raw", rec)["scores"]
        diff = [float(np.mean([r[k] for k in GOAL_LAYERS])
                      - np.mean([raw[net][seed][k] for k in GOAL_LAYERS]))
                for net, seeds in rec["scores"].items() for seed, r in seeds.items()]
        summary[cand] = {"goal": float(np.median(goal)),
                         "vs_raw": {"mean": float(np.mean(diff)),
                                    "sd": float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0,
                                    "better": int(sum(d < 0 for d in diff)), "of": len(diff)},
                         "layers": {k: float(np.median([r[k] for _, r in per_run]))
                                    for k in layers},
                         "best_network": best[1], "best_network_goal": best[0]}
    return summary


def markdown(result: dict, summary: dict) -> str:
    """The comparison as text + a Markdown table, best score first; the lowest score and the
    candidate the ``toolik`` catalog selects are marked."""
    from permaplug.core.catalog import load_catalog

    selected = load_catalog("toolik").metadata["run_defaults"].get("features")
    lowest = min(summary, key=lambda c: summary[c]["goal"])
    rec0 = next(iter(result["candidates"].values()))
    lines = [
        (f"data: {result['data']}. Validation months only (the last "
         f"{result['val_fraction']:.0%} of the 1989-2012 training months with a target; "
         f"{rec0['windows']['validation']} windows, {rec0['windows']['train']} training); "
         f"networks {', '.join(result['networks'])}; seeds "
         f"{', '.join(map(str, result['seeds']))}; {result['epochs']} epochs, early stopping "
         f"{result['early_stopping']}. Score = median over networks and seeds of the mean "
         "validation RMSE at 0-7 and 7-28 cm (degC); the test years 2013-2021 are not read. "
         "'vs raw': that mean minus raw's over the network x seed pairs (mean +- s.d.; pairs "
         "better than raw)."),
        "",
        ("| candidate | added to t2m, tp, d2m, year, month_sin, month_cos | score | vs raw | "
         "val RMSE stl1 | val RMSE stl2 | val RMSE stl3 | best network (its median score) |"),
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for cand, s in sorted(summary.items(), key=lambda kv: kv[1]["goal"]):
        feats = result["candidates"][cand]["features"]
        added = [f for f in feats if f not in BASE]
        marks = [m for m, on in (("lowest score", cand == lowest),
                                 ("the toolik catalog's", feats == selected)) if on]
        name = f"**{cand}** ({', '.join(marks)})" if marks else cand
        v = s["vs_raw"]
        lines.append(f"| {name} | {', '.join(added) or '--'} | {s['goal']:.3f} | "
                     f"{v['mean']:+.3f} +- {v['sd']:.3f} ({v['better']}/{v['of']}) | "
                     + " | ".join(f"{s['layers'].get(k, float('nan')):.3f}"
                                  for k in ("stl1", "stl2", "stl3"))
                     + f" | {s['best_network']} ({s['best_network_goal']:.3f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+",
                        default=["tcn", "transformer", "conv1dlstm", "gru", "bilstm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES),
                        choices=list(CANDIDATES))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--early-stopping", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--from-json", action="store_true",
                        help=f"re-render {JSON.name} instead of training")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(JSON.read_text())
    else:
        result = score_candidates(args.candidates, args.networks, args.seeds, args.epochs,
                                  args.val_fraction, args.early_stopping)
        result.update(networks=args.networks, seeds=args.seeds, epochs=args.epochs,
                      val_fraction=args.val_fraction, early_stopping=args.early_stopping)
    summary = summarise(result)
    result["summary"] = summary
    text = markdown(result, summary)
    print(text)
    if args.write:
        JSON.write_text(json.dumps(result, indent=1) + "\n")
        write_section("toolik-features", text)
        print(f"wrote benchmarks/RESULTS.md (toolik-features) and {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
