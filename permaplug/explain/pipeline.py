"""``explain_run``: SHAP scores of every trained network of a run (paper Figure 10).

Protocol (paper's, by default): ``n_background`` = 100 background windows and
``n_explained`` = 10 explained windows drawn (seeded) from the test years' windows, the
explained ones spread over every band (round-robin); every output layer is explained. Per
feature one score: the mean over explained windows of |SHAP| summed over the window's time
steps (static features: mean |SHAP|), in degC (attributions are computed in normalised units
and scaled by the layer's training standard deviation), per layer and averaged over layers.

The same protocol runs on the **scenario windows** when the run has a projection with stored
inputs (:mod:`.scenario`): background and explained windows drawn from the windows of the
highest scenario whose target month lies in the last projected decade (e.g. 2091-2100 with
``--end 2100``), so both rankings answer the same question for two periods.

Writes into ``RUN_DIR/explanations/<explainer>/``::

    scores.csv               model, feature, kind, score_<layer>..., score (layer mean), rank
    shap_<model>.png         top-15 features (bar chart, layers stacked)
    attributions_<model>.nc  the full attributions (sample, step, feature, layer), degC
    scenario_scores.csv      the same on the scenario windows (+ scenario, years), and
    scenario_shap_<model>.png, scenario_attributions_<model>.nc
    rankings.csv             both rankings side by side: model, rank, test_feature,
                             test_score, scenario_feature, scenario_score
    additivity.json          per model: mean/max |sum of attributions - (prediction - E[f])|;
                             ``scenario_windows``: what was explained, or why it was skipped
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from permaplug.core import progress as bars
from permaplug.core import schema
from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.core.errors import ConfigError, DataError
from permaplug.core.explainer import ExplainInputs
from permaplug.core.plugins import get_explainer

TOP_N = 15

#: ``(folder name, (low, high) scenario pair or None)`` of a projection being written
FreshProjection = tuple[str, "tuple[str, str] | None"]


def select_windows(index: np.ndarray, n_background: int, n_explained: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of background and explained windows in ``index`` ``[N, 2]`` (unit, last).

    Explained windows are drawn round-robin over units so every band is explained; background
    windows are drawn from the rest (all of them when fewer remain). Seeded.
    """
    if n_background < 1 or n_explained < 1:
        raise ConfigError("--n-background and --n-explained must be at least 1")
    if len(index) < 2:
        raise DataError(f"only {len(index)} test window(s): nothing to explain")
    rng = np.random.default_rng(seed)
    units = np.unique(index[:, 0])
    pools = {u: list(rng.permutation(np.flatnonzero(index[:, 0] == u))) for u in units}
    explained: list[int] = []
    while len(explained) < min(n_explained, len(index) - 1):
        for u in units:
            if pools[u] and len(explained) < n_explained:
                explained.append(int(pools[u].pop()))
    rest = np.setdiff1d(np.arange(len(index)), explained)
    background = rng.choice(rest, min(n_background, len(rest)), replace=False)
    return np.sort(background), np.asarray(explained, np.int64)


def to_degc(ds: xr.Dataset, target_mean: list[float], target_std: list[float]) -> xr.Dataset:
    """Attributions from normalised target units to degC (per output layer)."""
    std = xr.DataArray(np.asarray(target_std), dims="layer", coords={"layer": ds["layer"]})
    mean = xr.DataArray(np.asarray(target_mean), dims="layer", coords={"layer": ds["layer"]})
    out = ds.copy()
    for name in ("dynamic", "static"):
        out[name] = ds[name] * std
    for name in ("expected_value", "prediction"):
        out[name] = ds[name] * std + mean
    out = out.assign_coords(layer=list(schema.TARGETS)[: ds.sizes["layer"]])
    out.attrs["units"] = "degC"
    return out


def feature_scores(ds: xr.Dataset) -> pd.DataFrame:
    """One row per feature: ``score_<layer>`` (mean over windows of |SHAP| summed over steps;
    static: mean |SHAP|), ``score`` (mean over layers), ``kind``, ``rank`` (1 = largest)."""
    dyn = np.abs(ds["dynamic"]).sum("step").mean("sample")  # (feature, layer)
    sta = np.abs(ds["static"]).mean("sample").rename(static_feature="feature")
    rows = []
    for kind, arr in (("dynamic", dyn), ("static", sta)):
        for f in arr["feature"].values:
            row = {"feature": str(f), "kind": kind}
            vals = arr.sel(feature=f)
            for layer in arr["layer"].values:
                row[f"score_{layer}"] = float(vals.sel(layer=layer))
            row["score"] = float(vals.mean())
            rows.append(row)
    frame = pd.DataFrame(rows).sort_values("score", ascending=False).reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def additivity(ds: xr.Dataset) -> dict[str, float]:
    """Additivity gap (degC): sum of attributions vs prediction minus expected value."""
    total = ds["dynamic"].sum(("step", "feature")) + ds["static"].sum("static_feature")
    gap = np.abs(total - (ds["prediction"] - ds["expected_value"]))
    scale = np.abs(ds["prediction"] - ds["expected_value"])
    return {"mean_abs_gap_degC": float(gap.mean()), "max_abs_gap_degC": float(gap.max()),
            "mean_abs_prediction_minus_expected_degC": float(scale.mean()),
            "relative_gap": float(gap.mean() / scale.mean()) if float(scale.mean()) else 0.0}


def bar_chart(scores: pd.DataFrame, model: str, data_label: str, method: str, n: int,
              path: Path, what: str = "test") -> Path:
    """Top-``TOP_N`` features of one model: horizontal bars, one segment per layer;
    ``what`` names the windows in the title (``test``, or the scenario and its years)."""
    top = scores.head(TOP_N).iloc[::-1]
    layers = [c[len("score_"):] for c in scores.columns if c.startswith("score_")]
    fig, ax = plt.subplots(figsize=(7.5, 0.33 * len(top) + 1.6))
    left = np.zeros(len(top))
    for k, layer in enumerate(layers):
        width = top[f"score_{layer}"].to_numpy() / len(layers)
        ax.barh(top["feature"], width, left=left, color=f"C{k}", label=layer)
        left += width
    ax.set_xlabel("mean |SHAP| summed over the window (degC), averaged over layers")
    ax.legend(fontsize=8, loc="lower right", title="layer share", title_fontsize=8)
    ax.set_title(f"{model}: top {len(top)} features ({method}, {n} {what} windows)\n"
                 f"data: {data_label}",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _csv(frame: pd.DataFrame, path: Path, label: str) -> Path:
    buf = io.StringIO()
    buf.write(f"# data: {label}\n")
    frame.to_csv(buf, index=False, float_format="%.6g")
    return write_text_atomic(path, buf.getvalue())


def side_by_side(test: pd.DataFrame, scenario: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Both rankings rank by rank: ``model, rank, test_feature, test_score, scenario_feature,
    scenario_score`` for the first ``top`` ranks of every model (scores in degC)."""
    rows = []
    for model in dict.fromkeys(test["model"]):
        a = test[test["model"] == model].sort_values("rank").head(top)
        b = scenario[scenario["model"] == model].sort_values("rank").head(top)
        for k in range(max(len(a), len(b))):
            ra = a.iloc[k] if k < len(a) else None
            rb = b.iloc[k] if k < len(b) else None
            rows.append({"model": model, "rank": k + 1,
                         "test_feature": ra["feature"] if ra is not None else "",
                         "test_score": float(ra["score"]) if ra is not None else np.nan,
                         "scenario_feature": rb["feature"] if rb is not None else "",
                         "scenario_score": float(rb["score"]) if rb is not None else np.nan})
    return pd.DataFrame(rows)


def _explain_windows(run, explainer_obj, explainer: str, names: list[str], arrays, index,
                     bg_rows: np.ndarray, ex_rows: np.ndarray, label: str, out_dir: Path,
                     prefix: str, what: str, progress: bool) -> tuple[pd.DataFrame, dict]:
    """Explain ``names`` on the windows ``index[ex_rows]`` against ``index[bg_rows]``; write
    ``<prefix>attributions_<model>.nc`` and ``<prefix>shap_<model>.png``; return the scores of
    every model and the additivity gaps."""
    from permaplug.training.predict import window_set

    norm = run.normaliser
    data = window_set(arrays, norm, index)

    def inputs(rows: np.ndarray) -> ExplainInputs:
        x, band, static, _ = data.batch(rows)
        return ExplainInputs(x.contiguous(), band, static.contiguous())

    background, explained = inputs(bg_rows), inputs(ex_rows)
    all_scores, gaps = [], {}
    for name in tqdm(names, desc=f"explaining ({explainer}, {what})",
                     disable=bars.disabled(progress), unit="model"):
        model = run.load_model(name)
        raw = explainer_obj.explain(model, background, explained, list(norm.dynamic_names),
                                    list(norm.static_names))
        ds = to_degc(raw, norm.target_mean, norm.target_std)
        unit, last = index[ex_rows, 0], index[ex_rows, 1]
        ds = ds.assign_coords(target_month=("sample", arrays.time[last + 1]),
                              unit=("sample", arrays.units[unit]))
        ds.attrs.update({schema.DATA_LABEL_ATTR: label, "data": label, "model": name,
                         "explainer": explainer, "n_background": len(bg_rows),
                         "n_explained": len(ex_rows), "windows": what})
        with atomic_path(out_dir / f"{prefix}attributions_{name}.nc") as tmp:
            ds.to_netcdf(tmp)
        scores = feature_scores(ds)
        bar_chart(scores, name, label, raw.attrs.get("method", explainer), len(ex_rows),
                  out_dir / f"{prefix}shap_{name}.png", what)
        scores.insert(0, "model", name)
        scores["data"] = label
        all_scores.append(scores)
        gaps[name] = {**additivity(ds), "method": str(raw.attrs.get("method", explainer))}
    return pd.concat(all_scores, ignore_index=True), gaps


def prepare_explainer(explainer: str = "shap", options: dict | None = None) -> None:
    """Load ahead what :func:`explain_run` with ``explainer`` will need: the modules it imports
    when called and the plugin's own :meth:`~permaplug.core.explainer.Explainer.prepare`
    (``permaplug run``'s explanation process does this while the networks train)."""
    from permaplug.explain import scenario  # noqa: F401
    from permaplug.training import loop, runs, windows  # noqa: F401

    get_explainer(explainer)(**(options or {})).prepare()


def explain_run(run_dir: Path, explainer: str = "shap", n_background: int = 100,
                n_explained: int = 10, models: list[str] | None = None, seed: int = 0,
                options: dict | None = None, progress: bool = True,
                table: xr.Dataset | None = None, projection: str | None = None,
                wait_projection: Callable[[], FreshProjection | None] | None = None) -> Path:
    """Explain every trained network of ``run_dir`` on its test windows and, when the run has
    projections, on the scenario windows (:mod:`.scenario`: the highest scenario's last
    projected decade, from ``projection`` -- a folder name under ``RUN/projections``; None:
    the one projected furthest); return the output folder (``RUN_DIR/explanations/<explainer>``).

    ``table``: the run's historical table when already loaded (default: the table stored in
    the run folder, ``RUN/inputs``). ``options`` go to the explainer plugin (e.g. ``nsamples``).

    ``wait_projection``: for an explanation running alongside a projection still being written
    (``permaplug run``, :mod:`permaplug.commands.alongside`): called after the test windows are
    explained, it returns once the projection's scenario inputs are stored, with ``(folder
    name, scenario pair)`` of that projection (its ``summary.json`` is not written yet), or None
    when there is no fresh projection. The projection folder is then looked up as without it.
    """
    from permaplug.explain import scenario as scenario_windows
    from permaplug.training.loop import configure_threads
    from permaplug.training.runs import load_run
    from permaplug.training.windows import window_index

    if n_background < 1 or n_explained < 1:
        raise ConfigError("--n-background and --n-explained must be at least 1")
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    configure_threads(run.config.threads)  # one thread unless the run says otherwise
    explainer_obj = get_explainer(explainer)(**(options or {}))
    names = models or run.network_names
    if not names:
        raise ConfigError(f"run {run_dir}: no trained network to explain (baselines have no "
                          "input attributions)")
    not_networks = [m for m in names if m not in run.network_names]
    if not_networks:
        raise ConfigError(f"--model {not_networks[0]}: not a trained network of run {run_dir} "
                          f"(networks: {', '.join(run.network_names) or 'none'})")
    sw = None
    if wait_projection is None:  # a bad name or inputs file fails before any work
        proj_dir = scenario_windows.find_projection(run_dir, projection)
        sw = (scenario_windows.scenario_windows(proj_dir, run.normaliser.window) if proj_dir
              else None)
    if table is None:
        table = run.table()  # stored in the run folder: the catalog is not read
    label = run.data_label
    arrays = run.arrays(table)
    norm = run.normaliser
    index = window_index(arrays, tuple(run.config.test_years), norm.window)
    bg_rows, ex_rows = select_windows(index, n_background, n_explained, seed)
    out_dir = run_dir / "explanations" / explainer
    scores, gaps = _explain_windows(run, explainer_obj, explainer, names, arrays, index, bg_rows,
                                    ex_rows, label, out_dir, "", "test", progress)
    _csv(scores, out_dir / "scores.csv", label)
    doc = {"data": label, "explainer": explainer, "n_background": len(bg_rows),
           "n_explained": len(ex_rows), "test_years": list(run.config.test_years),
           "units": "degC", "models": gaps}
    for old in [*out_dir.glob("scenario_*"), out_dir / "rankings.csv"]:  # nothing stale
        old.unlink(missing_ok=True)
    if wait_projection is not None:
        fresh = wait_projection()
        proj_dir = scenario_windows.find_projection(run_dir, projection)
        pair = None
        if fresh is not None and proj_dir is not None and proj_dir.name == fresh[0]:
            pair = fresh[1]  # its summary.json, which holds the pair, is not written yet
        sw = scenario_windows.scenario_windows(proj_dir, norm.window, pair) if proj_dir else None
    if sw is None:
        doc["scenario_windows"] = {
            "skipped": f"no projection with stored scenario inputs in {run_dir / 'projections'}"
                       f" (run `permaplug project {run_dir}`, then explain again)"}
    else:
        s_bg, s_ex = select_windows(sw.index, n_background, n_explained, seed)
        what = f"{sw.scenario} {sw.years[0]}-{sw.years[1]}"
        s_scores, s_gaps = _explain_windows(run, explainer_obj, explainer, names, sw.arrays,
                                            sw.index, s_bg, s_ex, sw.data_label, out_dir,
                                            "scenario_", what, progress)
        s_scores.insert(1, "scenario", sw.scenario)
        s_scores.insert(2, "years", f"{sw.years[0]}-{sw.years[1]}")
        _csv(s_scores, out_dir / "scenario_scores.csv", sw.data_label)
        both = side_by_side(scores, s_scores)
        both["data"] = label if sw.data_label == label else f"{label}; scenario: {sw.data_label}"
        _csv(both, out_dir / "rankings.csv", str(both["data"].iloc[0]) if len(both) else label)
        doc["scenario_windows"] = {
            "projection": sw.projection, "scenario": sw.scenario, "years": list(sw.years),
            "data": sw.data_label, "n_background": len(s_bg), "n_explained": len(s_ex),
            "models": s_gaps}
    write_text_atomic(out_dir / "additivity.json", json.dumps(doc, indent=1))
    return out_dir
