"""Projection goals of issue 13: both recipes, all five networks, seeds 0-2 (demo emulator).

For each recipe and seed, one ``permaplug run --recipe R --model all --seed S --end 2100
--no-explain`` (each recipe with its own projection corrector: paper qm, physical qdm), then the
run's own outputs are read back:

* test RMSE (``metrics.json``, 2019-2023, pooled);
* highest - lowest scenario difference of layer 1 in 2071-2100 (``scenario_difference.csv``)
  against the truth's, as a ratio;
* model error alone: RMSE against the truth for the highest scenario in 2071-2100 when the
  networks get the truth run's own forcing (``skill.csv``, kind ``model_error``, all layers),
  as a ratio to the test RMSE;
* end to end: RMSE of the 2071-2100 monthly climatology of the highest scenario (bias-corrected
  ESM forcing) against the truth's (``skill.csv``, kind ``end_to_end_climatology``);
* response of the layer-1 temperature to +5 K in 2071-2100 (``sensitivity.csv``) as a ratio to
  the emulator's own response (pooled over bands).

Goals (``physical``): difference within 15 % of the truth's, model-error RMSE at most 1.5 x the
test RMSE, end-to-end climatology RMSE at most 1.5 degC, +5 K response within 20 % of the
emulator's, test RMSE at most 1.15 x the paper recipe's (same network). Medians over the seeds;
every figure is reported, met or not.

    python benchmarks/bench_projection_goals.py [--seeds 0 1 2] [--recipes paper physical]
        [--root /tmp/goals] [--epochs 50] [--write]

Run folders under ``--root`` that are complete are reused (the script can be resumed).
``--write`` puts the tables into the "Projection goals" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, machine, write_section

NETWORKS = ("tcn", "transformer", "conv1dlstm", "gru", "bilstm")
PERIOD = "2071-2100"


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#") if path.exists() else pd.DataFrame()


def run_folder(root: Path, recipe: str, seed: int, epochs: int, catalog: str | None) -> Path:
    """The complete run folder of ``recipe`` and ``seed`` (trained and projected if needed)."""
    out = root / f"{recipe}-s{seed}"
    if (out / "COMPLETE").exists():
        return out
    if out.exists():
        import shutil

        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "permaplug", "run", "--recipe", recipe, "--model", "all",
           "--seed", str(seed), "--epochs", str(epochs), "--end", "2100", "--no-explain",
           "--quiet", "--out", str(out)]
    if catalog:
        cmd += ["--catalog", catalog]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    (out / "bench_seconds.txt").write_text(f"{seconds:.0f}\n")
    print(f"{recipe} seed {seed}: {seconds:.0f} s", flush=True)
    return out


def run_seconds(run: Path) -> float:
    """Wall seconds of the run's ``permaplug run`` (NaN when not recorded)."""
    path = run / "bench_seconds.txt"
    return float(path.read_text()) if path.exists() else float("nan")


def _proj_dir(run: Path) -> Path:
    dirs = sorted(p.parent for p in (run / "projections").glob("*-2100/projections.nc"))
    if not dirs:
        raise SystemExit(f"{run}: no projection to 2100")
    return dirs[0]


def goal_rows(run: Path, recipe: str, seed: int) -> list[dict]:
    """One row per network of ``run`` with the measures of the module docstring."""
    metrics = json.loads((run / "metrics.json").read_text())["models"]
    proj = _proj_dir(run)
    summary = json.loads((proj / "summary.json").read_text())
    low, high = summary["scenario_pair"]
    diff = _csv(proj / "scenario_difference.csv")
    skill = _csv(proj / "skill.csv")
    sens = _csv(proj / "sensitivity.csv")
    rows = []

    def pick(frame: pd.DataFrame, **where) -> float:
        if frame.empty:
            return float("nan")
        sel = np.ones(len(frame), bool)
        for k, v in where.items():
            if k not in frame:
                return float("nan")
            sel &= frame[k].astype(str).to_numpy() == str(v)
        vals = frame.loc[sel]
        col = next(c for c in ("value_degC", "rmse_degC", "response_degC") if c in frame)
        return float(vals[col].mean()) if len(vals) else float("nan")

    truth_diff = pick(diff, source="truth", period=PERIOD, layer="stl1")
    emu = pick(sens, source="emulator", period=PERIOD, delta_K=5.0, layer="stl1", unit="all")
    if np.isnan(emu):
        emu = pick(sens, source="emulator", period=PERIOD, delta_K=5, layer="stl1", unit="all")
    for net in NETWORKS:
        if net not in metrics:
            continue
        test = metrics[net]["overall"]["rmse"]
        d = pick(diff, source=net, period=PERIOD, layer="stl1")
        me = pick(skill, model=net, scenario=high, period=PERIOD, layer="all", kind="model_error")
        e2e = pick(skill, model=net, scenario=high, period=PERIOD, layer="all",
                   kind="end_to_end_climatology")
        r5 = pick(sens, source=net, period=PERIOD, delta_K=5.0, layer="stl1", unit="all")
        if np.isnan(r5):
            r5 = pick(sens, source=net, period=PERIOD, delta_K=5, layer="stl1", unit="all")
        rows.append({"recipe": recipe, "seed": seed, "model": net, "test_rmse": test,
                     "msess": metrics[net]["overall"].get("msess", np.nan),
                     "diff": d, "truth_diff": truth_diff, "diff_ratio": d / truth_diff,
                     "model_error_rmse": me, "me_ratio": me / test, "e2e_clim_rmse": e2e,
                     "resp5": r5, "emu_resp5": emu, "resp_ratio": r5 / emu,
                     "pair": f"{high}-{low}", "data": summary.get("data", ""),
                     "run_seconds": run_seconds(run)})
    return rows


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Median over seeds per recipe and network, with the goal checks."""
    med = frame.groupby(["recipe", "model"]).median(numeric_only=True).reset_index()
    paper = med[med["recipe"] == "paper"].set_index("model")["test_rmse"]
    med["test_vs_paper"] = [r.test_rmse / paper.get(r.model, np.nan) for r in med.itertuples()]
    med["goal_diff"] = (med["diff_ratio"] - 1).abs() <= 0.15
    med["goal_me"] = med["me_ratio"] <= 1.5
    med["goal_e2e"] = med["e2e_clim_rmse"] <= 1.5
    med["goal_resp"] = (med["resp_ratio"] - 1).abs() <= 0.20
    med["goal_test"] = med["test_vs_paper"] <= 1.15
    return med


def markdown(med: pd.DataFrame, frame: pd.DataFrame) -> str:
    def yes(v: bool) -> str:
        return "met" if bool(v) else "**missed**"

    seeds = ", ".join(str(int(x)) for x in sorted(frame["seed"].unique()))
    pair = frame["pair"].iloc[0] if len(frame) else "?"
    secs = frame.groupby(["recipe", "seed"])["run_seconds"].first() / 60
    times = ", ".join(f"{r} {secs[r].min():.0f}-{secs[r].max():.0f}"
                      for r in secs.index.get_level_values(0).unique())
    lines = [
        "## Projection goals (issue 13)", "",
        (f"`python benchmarks/bench_projection_goals.py --write`; **data: {frame['data'].iloc[0]}** "
        f"(emulator results, not real-world skill). Seeds {seeds}, 50 epochs, "
        f"`--model all --end 2100`; each recipe with its own corrector (paper qm, physical qdm). "
        f"Medians over the seeds; difference = {pair} of layer 1 (0-7 cm) in 2071-2100; "
        f"model error = RMSE against the truth for the highest scenario in 2071-2100 with the "
        f"truth's own forcing, over the test RMSE; end to end = RMSE of the 2071-2100 monthly "
        f"climatology (bias-corrected ESM forcing) against the truth's; response = layer-1 "
        f"warming for +5 K in 2071-2100 over the emulator's. One run (training five networks "
        f"and the baselines, correction, projections, skill, sensitivity with the emulator "
        f"rerun, report) took {times} min wall, two runs side by side with other jobs, on "
        f"{machine()}; load average when the tables were written {load_average():.1f}."), "",
        ("| recipe | network | test RMSE | MSESS | test vs paper | difference (truth) | "
        "ratio | model-error RMSE | x test | end-to-end clim. RMSE | +5 K response "
        "(emulator) | ratio |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in med.itertuples():
        lines.append(
            f"| {r.recipe} | {r.model} | {r.test_rmse:.3f} | {r.msess:.3f} | "
            f"{r.test_vs_paper:.2f} | {r.diff:+.2f} ({r.truth_diff:+.2f}) | {r.diff_ratio:.2f} | "
            f"{r.model_error_rmse:.2f} | {r.me_ratio:.2f} | {r.e2e_clim_rmse:.2f} | "
            f"{r.resp5:+.2f} ({r.emu_resp5:+.2f}) | {r.resp_ratio:.2f} |")
    lines += ["", ("Goals (physical recipe): difference within 15 % of the truth's; model-error "
              "RMSE <= 1.5 x test RMSE; end-to-end climatology RMSE <= 1.5 degC; +5 K response "
              "within 20 % of the emulator's; test RMSE <= 1.15 x paper's."), "",
              "| recipe | network | difference | model error | end to end | +5 K | test RMSE |",
              "|---|---|---|---|---|---|---|"]
    for r in med.itertuples():
        test = "(reference)" if r.recipe == "paper" else yes(r.goal_test)
        lines.append(f"| {r.recipe} | {r.model} | {yes(r.goal_diff)} | {yes(r.goal_me)} | "
                     f"{yes(r.goal_e2e)} | {yes(r.goal_resp)} | {test} |")
    lines += ["", "Per seed (difference / model-error RMSE / end-to-end RMSE / +5 K response):",
              ""]
    for (recipe, model), g in frame.groupby(["recipe", "model"]):
        parts = "; ".join(f"s{int(r.seed)}: {r.diff:+.2f} / {r.model_error_rmse:.2f} / "
                          f"{r.e2e_clim_rmse:.2f} / {r.resp5:+.2f}" for r in g.itertuples())
        lines.append(f"- {recipe} {model}: {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", default=["paper", "physical"])
    parser.add_argument("--root", default="/tmp/permaplug-goals")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--catalog", default=None, help="default: the bundled demo data")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for recipe in args.recipes:
        for seed in args.seeds:
            run = run_folder(root, recipe, seed, args.epochs, args.catalog)
            rows += goal_rows(run, recipe, seed)
    frame = pd.DataFrame(rows)
    frame.to_csv(root / "goals.csv", index=False)
    med = summarise(frame)
    text = markdown(med, frame)
    print(text)
    if args.write:
        write_section("projection-goals", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
