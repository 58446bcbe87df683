"""Run folders: train and evaluate models on a table, write the outputs, reload them later.

Layout (``runs/<timestamp>-<source>-<model>/``)::

    config.yaml            resolved RunConfig (+ "resolved": data label, features, windows)
    metrics.json           {"data", "test_years", "models": {name: {overall, per_layer,
                           per_band, per_band_layer, data, kind, train_seconds}}}
    predictions.parquet    time, band (or cell + band), layer, observed, predicted, model
    comparison.md/.csv     every model side by side (paper Table 2 layout), "data: <label>"
    checkpoints/<model>/   model.pt (state_dict), config.json, normaliser.json, history.json
    figures/               observed_vs_predicted.png (paper Figure 4), loss_curves.png
    inputs/                the table trained on (table.nc or table.zarr), the catalog it was
                           built from, the reanalysis files' SHA-256 (training/inputs.py)
    COMPLETE               written last
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from permaplug import __version__
from permaplug.core import schema
from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.core.errors import ConfigError, DataError
from permaplug.core.model import Model, ModelDims
from permaplug.core.plugins import get_model
from permaplug.data.features import (
    GRID_STATIC,
    PAPER_CALENDAR,
    PAPER_DYNAMIC,
    SIGNAL,
    add_features,
    feature_classes,
)
from permaplug.training import figures
from permaplug.training.baseline import Baseline
from permaplug.training.checkpoint import load_checkpoint, read_config, save_checkpoint
from permaplug.training.config import CONFIG_FILE, RunConfig, resolve_models
from permaplug.training.inputs import open_stored_table, save_inputs, stored_table_path
from permaplug.training.loop import TrainConfig, configure_threads, remove_state, train_model
from permaplug.training.metrics import model_metrics, training_climatology
from permaplug.training.normalise import Normaliser
from permaplug.training.predict import predict_windows, predictions_frame, window_set
from permaplug.training.tables import comparison_frame, write_comparison
from permaplug.training.windows import SeriesArrays, table_arrays, target_windows, window_index

COMPLETE = "COMPLETE"
FEATURE_STATES = "feature_states"
"""Key in ``normaliser.json``'s ``extra``: per derived feature, what it learnt from the training
years (e.g. z's mean and standard deviation)."""


def load_table(source: str, catalog: str | None, spatial: str = "bands",
               features: list[str] | None = None) -> xr.Dataset:
    """The assembled monthly table of ``source`` from ``catalog`` (None = bundled demo data);
    ``spatial``: ``bands`` (dims time, band) or ``grid`` (time, cell); ``features``: the run's
    inputs (None: the paper's), checked against the catalog before any data is read."""
    from permaplug.core.catalog import load_catalog
    from permaplug.data.assemble import assemble_table

    return assemble_table(load_catalog(catalog), source=source, spatial=spatial,
                          features=features)


def input_names(table: xr.Dataset, cfg: RunConfig) -> tuple[list[str], list[str]]:
    """The run's (dynamic, static) input names, in model order.

    ``cfg.features`` None: the paper's dynamic inputs (z when ``use_z``) and every static
    feature of the table (one without a time dim), plus ``lat`` in gridded mode. Otherwise the
    selected names, split by kind (a variable without a time dim, or a static feature plugin,
    is static), then ``cfg.static`` when it lists names (a recipe's statics).
    ``drop_features`` and ``--no-z`` remove names in both cases.
    """
    drop = set(cfg.drop_features) | (set() if cfg.use_z else {SIGNAL})
    if cfg.features is None:
        dynamic = dynamic_features(table, drop) + ([SIGNAL] if cfg.use_z else [])
        static = cfg.static if cfg.static is not None else [
            v for v in table.data_vars if "time" not in table[v].dims]
        if cfg.static is None and "cell" in table.dims:  # gridded mode: the cell's latitude too
            static += [s for s in GRID_STATIC if s in table.coords]
        return dynamic, [s for s in static if s not in drop]
    feats = feature_classes()
    dynamic, static = [], []
    for name in cfg.features:
        if name in drop:
            continue
        if name in table.variables:
            is_static = "time" not in table[name].dims
        else:
            is_static = name in feats and feats[name].kind == "static"
        (static if is_static else dynamic).append(name)
    static += [s for s in cfg.static or () if s not in static and s not in drop]
    return dynamic, static


def default_run_dir(source: str, models: list[str], root: Path | str = "runs") -> Path:
    """``runs/<UTC timestamp>-<source>-<model|all>``."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    what = models[0] if len(models) == 1 else "all"
    return Path(root) / f"{stamp}-{source}-{what}"


@dataclass
class Prepared:
    """A table turned into model arrays, with normaliser and window indices."""

    arrays: SeriesArrays
    normaliser: Normaliser
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    counts: dict = field(default_factory=dict)  # windows kept / dropped per split


def dynamic_features(table: xr.Dataset, drop: set[str]) -> list[str]:
    """The default per-month inputs: the table's own list (``attrs['dynamic_features']``, site
    tables) plus the calendar features, else the paper's (``data.features.PAPER_DYNAMIC``)."""
    own = [f for f in str(table.attrs.get("dynamic_features", "")).split(",") if f]
    names = own + list(PAPER_CALENDAR) if own else list(PAPER_DYNAMIC)
    return [f for f in names if f not in drop]


def prepare(table: xr.Dataset, cfg: RunConfig) -> Prepared:
    """Arrays, training-years normaliser and the train/validation/test windows of ``table``.

    The validation split holds out the LAST ``val_fraction`` of the training target months
    (chronological, so validation never precedes training data it could leak into).
    """
    n_months = int(table.sizes.get("time", 0))
    if n_months <= cfg.window:
        span = (f" ({str(table['time'].values[0])[:7]}..{str(table['time'].values[-1])[:7]})"
                if n_months else "")
        raise DataError(f"the record has {n_months} months{span}: too short for the "
                        f"{cfg.window}-month window (each target month needs the {cfg.window} "
                        "months before it)")
    dynamic, static = input_names(table, cfg)
    # derived features the table lacks (z: fitted on the training years), by their plugins
    table, states = add_features(table, dynamic + static, fit_years=tuple(cfg.train_years),
                                 window=cfg.window)
    arrays = table_arrays(table, tuple(dynamic), tuple(static))
    _check_units(table, arrays)
    normaliser = Normaliser.fit(arrays, tuple(cfg.train_years), cfg.window)
    if cfg.target_norm == "none":  # the networks predict degC as they are
        normaliser.target_mean = [0.0] * len(normaliser.target_mean)
        normaliser.target_std = [1.0] * len(normaliser.target_std)
    normaliser.extra[FEATURE_STATES] = states
    counts: dict[str, dict] = {"train": {}, "test": {}}
    train = window_index(arrays, tuple(cfg.train_years), cfg.window, counts=counts["train"])
    test = window_index(arrays, tuple(cfg.test_years), cfg.window, counts=counts["test"])
    if len(train) == 0:
        raise DataError(f"no training windows with targets in {cfg.train_years[0]}-"
                        f"{cfg.train_years[1]} (the table spans {str(arrays.time[0])[:7]}.."
                        f"{str(arrays.time[-1])[:7]}; each window needs {cfg.window} prior months)")
    if len(test) == 0:
        raise DataError(f"no test windows with targets in {cfg.test_years[0]}-{cfg.test_years[1]} "
                        f"(the table spans {str(arrays.time[0])[:7]}..{str(arrays.time[-1])[:7]})")
    val = np.zeros((0, 2), np.int64)
    if cfg.val_fraction:
        months = np.unique(train[:, 1])
        if len(months) < 2:
            raise DataError("too few training months for a validation split")
        cut = months[min(max(round(len(months) * (1 - cfg.val_fraction)), 1), len(months) - 1)]
        val, train = train[train[:, 1] >= cut], train[train[:, 1] < cut]
    return Prepared(arrays, normaliser, train, val, test, counts)


def _check_units(table: xr.Dataset, arrays: SeriesArrays) -> None:
    """Refuse a unit without any soil temperature or forcing (e.g. a band with no land cell:
    ERA5-Land is NaN over the sea), rather than train and evaluate around a hole."""
    empty_target = np.isnan(arrays.target).all(axis=(1, 2))
    empty_input = np.isnan(arrays.dynamic).all(axis=(1, 2))
    for u in np.flatnonzero(empty_target | empty_input):
        name = f"{arrays.unit_dim} {arrays.units[u]}"
        if "lat_min" in table.coords and "lat_max" in table.coords and arrays.unit_dim == "band":
            name += (f" ({float(table['lat_min'].values[u]):.2f}-"
                     f"{float(table['lat_max'].values[u]):.2f} N)")
        what = "soil temperature" if empty_target[u] else "input feature"
        raise DataError(f"{name} has no land cell: no {what} value in the table; "
                        "fix the region or the data before training")


def _train_target(arrays: SeriesArrays, years: list[int]) -> torch.Tensor:
    """``[U, T, L]`` degC with NaN outside the training years (what a baseline may fit on)."""
    y = arrays.years
    keep = (y >= years[0]) & (y <= years[1])
    return torch.as_tensor(np.where(keep[None, :, None], arrays.target, np.nan))


def build_model(name: str, prep: Prepared, cfg: RunConfig) -> Model:
    """Instantiate model ``name`` for the prepared data (seeded: same seed, same weights)."""
    cls = get_model(name)
    dims = ModelDims(n_dynamic=len(prep.arrays.dynamic_names),
                     n_static=len(prep.arrays.static_names),
                     n_bands=max(schema.N_BANDS, int(prep.arrays.band.max()) + 1),
                     n_layers=len(schema.TARGETS), window=cfg.window,
                     band_embedding=schema.BAND_EMBEDDING_SIZE if cfg.band_identity else 0)
    torch.manual_seed(cfg.seed)
    return cls(dims, **cfg.hparams.get(name, {}))


def fit_model(name: str, prep: Prepared, cfg: RunConfig, ckpt_dir: Path, resume: bool,
              progress: bool) -> tuple[Model, dict]:
    """Train (or fit) ``name``, or reload it when ``resume`` finds its finished checkpoint."""
    if resume and (ckpt_dir / "model.pt").exists():
        hist_path = ckpt_dir / "history.json"
        hist = json.loads(hist_path.read_text()) if hist_path.exists() else {}
        return load_checkpoint(ckpt_dir, "cpu"), hist
    model = build_model(name, prep, cfg)
    t0 = time.perf_counter()
    if isinstance(model, Baseline) or not model.trainable:
        arrays = prep.arrays
        extra = {}
        if getattr(model, "needs_dynamic", False):
            y = arrays.years
            extra = {"dynamic": arrays.dynamic, "dynamic_names": arrays.dynamic_names,
                     "train_months": (y >= cfg.train_years[0]) & (y <= cfg.train_years[1])}
        model.fit(_train_target(arrays, cfg.train_years), torch.as_tensor(arrays.band),
                  torch.as_tensor(arrays.month), **extra)
        hist = {"train": [], "val": []}
    else:
        tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                         device=cfg.device, early_stopping=cfg.early_stopping,
                         weight_decay=cfg.weight_decay, lr_schedule=cfg.lr_schedule)
        train = window_set(prep.arrays, prep.normaliser, prep.train)
        val = window_set(prep.arrays, prep.normaliser, prep.val) if len(prep.val) else None
        hist = train_model(model, train, tc, val, ckpt_dir, resume, progress, label=name).to_dict()
        model.to("cpu")
    hist["train_seconds"] = round(time.perf_counter() - t0, 3)
    write_text_atomic(ckpt_dir / "history.json", json.dumps(hist))
    save_checkpoint(model, ckpt_dir, prep.normaliser, {"window": cfg.window, "seed": cfg.seed})
    remove_state(ckpt_dir)
    return model, hist


def execute_run(cfg: RunConfig, out_dir: Path, table: xr.Dataset | None = None,
                resume: bool = False, progress: bool = True,
                echo: Callable[[str], None] = print, mark_complete: bool = True,
                on_inputs: Callable[[Path, Prepared], None] | None = None,
                on_trained: Callable[[Path], None] | None = None) -> Path:
    """Train every model of ``cfg`` and write the run folder ``out_dir`` (see module doc).

    ``mark_complete=False`` leaves the ``COMPLETE`` marker to the caller (``permaplug run``
    writes it after its projection, explanation and report steps). ``on_inputs(out_dir,
    prepared)`` is called once the table is stored in the run folder and the normaliser is
    fitted, before training (``permaplug run`` starts work that needs no networks then).
    ``on_trained(out_dir)`` is called once every model is trained and saved, before the
    predictions, metrics and figures are written (``permaplug run`` starts explaining then).
    """
    cfg.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not resume:
        raise ConfigError(f"--out {out_dir}: folder exists and is not empty (use --resume to "
                          "continue it, or choose another folder)")
    models = resolve_models(cfg.models)
    configure_threads(cfg.threads)
    stored = open_stored_table(out_dir) if resume and table is None else None
    if stored is not None:  # resume from the run's own table, not the catalog
        table = stored
    if table is None:
        table = load_table(cfg.source, cfg.catalog, cfg.spatial, cfg.features)
    label = schema.data_label(table)
    prep = prepare(table, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / COMPLETE).unlink(missing_ok=True)
    if resume:  # temporaries of writes cut short by a SIGKILL
        from permaplug.core.atomic import remove_stale_temporaries

        remove_stale_temporaries(out_dir)
    echo(f"Run folder: {out_dir}" + (" (resuming)" if resume else ""))
    from permaplug.training.recipe import recipe_line

    echo(recipe_line(cfg))
    if stored is None:
        save_inputs(table, out_dir)
        save_recipe(cfg, out_dir)
    echo(f"table: {stored_table_path(out_dir)}"
         + (" (stored with the run; the catalog is not read)" if stored is not None else ""))
    resolved = {
        "data": label, "models": models, "permaplug_version": __version__,
        "dynamic_features": list(prep.arrays.dynamic_names),
        "static_features": list(prep.arrays.static_names),
        "spatial_dim": prep.arrays.unit_dim, "n_units": len(prep.arrays.units),
        "windows": {"train": len(prep.train), "validation": len(prep.val),
                    "test": len(prep.test)},
        "windows_dropped": {k: {"missing_inputs": v.get("dropped_missing_inputs", 0),
                                "missing_targets": v.get("dropped_missing_targets", 0)}
                            for k, v in prep.counts.items()},
        "table_span": [str(prep.arrays.time[0])[:7], str(prep.arrays.time[-1])[:7]],
        "provenance": str(table.attrs.get("provenance", "")),
        "recipe": cfg.recipe,
    }
    cfg.save(out_dir / CONFIG_FILE, resolved)
    if on_inputs is not None:
        on_inputs(out_dir, prep)
    echo(f"data: {label}; {len(prep.train)} training / {len(prep.val)} validation / "
         f"{len(prep.test)} test windows; models: {', '.join(models)}")
    dropped = {k: (v.get("dropped_missing_inputs", 0), v.get("dropped_missing_targets", 0))
               for k, v in prep.counts.items()}
    if any(a or b for a, b in dropped.values()):
        echo("windows dropped: " + "; ".join(
            f"{k}: {a} with missing inputs, {b} without any observed target layer"
            for k, (a, b) in dropped.items()))

    frames, metrics, histories = [], {}, {}
    clim = training_climatology(prep.arrays.target, prep.arrays.month, prep.arrays.years,
                                cfg.train_years)  # [U, 12, L]: the reference of msess, anom_r2
    for name in models:
        model, hist = fit_model(name, prep, cfg, out_dir / "checkpoints" / name, resume, progress)
        pred = predict_windows(model, prep.arrays, prep.normaliser, prep.test)
        frame = predictions_frame(prep.arrays, prep.test, pred, name)
        ref = clim[prep.test[:, 0], prep.arrays.month[prep.test[:, 1] + 1] - 1].reshape(-1)
        frames.append(frame)
        kind = "baseline" if not model.trainable else "network"
        metrics[name] = {**model_metrics(frame.assign(climatology=ref)), "data": label,
                         "kind": kind, "train_seconds": hist.get("train_seconds")}
        if kind == "network":
            histories[name] = hist
        ov = metrics[name]["overall"]
        echo(f"{name:>15}: test RMSE {ov['rmse']:.3f} degC, R2 {ov['r2']:.3f}, "
             f"MSESS {ov['msess']:.3f}, anomaly R2 {ov['anom_r2']:.3f}"
             + (f" ({hist['train_seconds']:.1f} s)" if hist.get("train_seconds") else ""))

    if on_trained is not None:
        on_trained(out_dir)
    write_outputs(out_dir, cfg, prep, label, pd.concat(frames, ignore_index=True), metrics,
                  histories)
    if mark_complete:
        mark_run_complete(out_dir)
    return out_dir


def save_recipe(cfg: RunConfig, out_dir: Path) -> Path | None:
    """Keep the run's recipe as written in ``inputs/recipe.yaml`` (its settings are in
    ``config.yaml`` either way); None when ``cfg.recipe`` is no longer readable."""
    from permaplug.training.recipe import load_recipe

    try:
        recipe = load_recipe(cfg.recipe)
    except ConfigError:
        return None
    return write_text_atomic(out_dir / "inputs" / "recipe.yaml",
                             f"# recipe {recipe.source} as used by this run\n{recipe.text}")


def mark_run_complete(out_dir: Path, steps: list[str] | None = None) -> Path:
    """Write the ``COMPLETE`` marker (UTC time and the steps done), the run folder's last file."""
    lines = [_dt.datetime.now(_dt.UTC).isoformat(), *(steps or ["train", "evaluate"])]
    return write_text_atomic(Path(out_dir) / COMPLETE, "\n".join(lines) + "\n")


def write_outputs(out_dir: Path, cfg: RunConfig, prep: Prepared, label: str,
                  predictions: pd.DataFrame, metrics: dict, histories: dict) -> None:
    """Predictions, metrics, comparison table and figures of a finished run."""
    with atomic_path(out_dir / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    doc = {"data": label, "source": cfg.source, "test_years": cfg.test_years,
           "train_years": cfg.train_years, "units": "degC", "windows": prep.counts,
           "models": metrics}
    write_text_atomic(out_dir / "metrics.json", json.dumps(doc, indent=1))
    kinds = {k: v["kind"] for k, v in metrics.items()}
    write_comparison(comparison_frame(metrics, kinds), out_dir, label, tuple(cfg.test_years),
                     len(prep.arrays.units), metrics)
    fig_dir = out_dir / "figures"
    networks = [m for m, k in kinds.items() if k == "network"]
    shown = networks or [m for m in kinds]
    figures.observed_vs_predicted(predictions, fig_dir / "observed_vs_predicted.png", label,
                                  prep.arrays.unit_dim, shown)
    if histories:
        figures.loss_curves(histories, fig_dir / "loss_curves.png", label)


# --- reloading ---------------------------------------------------------------------------

@dataclass
class Run:
    """A finished (or resumable) run folder."""

    path: Path
    config: RunConfig
    resolved: dict
    normaliser: Normaliser
    _models: dict[str, Model] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return (self.path / COMPLETE).exists()

    @property
    def data_label(self) -> str:
        return str(self.resolved.get("data", self.normaliser.data_label))

    @property
    def model_names(self) -> list[str]:
        """Models with a finished checkpoint, in run order."""
        order = self.resolved.get("models") or []
        found = [p.name for p in sorted((self.path / "checkpoints").glob("*"))
                 if (p / "model.pt").exists()]
        return [m for m in order if m in found] + [m for m in found if m not in order]

    @property
    def network_names(self) -> list[str]:
        return [m for m in self.model_names
                if read_config(self.path / "checkpoints" / m).get("trainable", True)]

    @property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text(encoding="utf-8"))

    def load_model(self, name: str, device: str = "cpu") -> Model:
        """The trained model ``name`` (eval mode), from ``checkpoints/<name>``."""
        if name not in self._models:
            if name not in self.model_names:
                raise ConfigError(f"run {self.path}: no trained model {name!r}; available: "
                                  f"{', '.join(self.model_names) or 'none'}")
            self._models[name] = load_checkpoint(self.path / "checkpoints" / name, device)
        return self._models[name]

    def table(self) -> xr.Dataset:
        """The table the run was trained on, from ``inputs/`` (a run folder written before
        runs stored their inputs: assembled again from its catalog)."""
        stored = open_stored_table(self.path)
        if stored is not None:
            return stored
        return load_table(self.config.source, self.config.catalog,
                          getattr(self.config, "spatial", "bands"))

    def arrays(self, table: xr.Dataset) -> SeriesArrays:
        """``table`` as model arrays with this run's features; derived features the table lacks
        are computed by their plugins with the training years' stored state (z's statistics)."""
        n = self.normaliser
        states = dict(n.extra.get(FEATURE_STATES, {}))
        if SIGNAL in n.dynamic_names and SIGNAL not in states and n.z_stats:  # older runs
            from permaplug.training.zsignal import stats_from_json

            states[SIGNAL] = stats_from_json(n.z_stats).to_dict()
        table, _ = add_features(table, [*n.dynamic_names, *n.static_names], states,
                                window=n.window)
        return table_arrays(table, tuple(n.dynamic_names), tuple(n.static_names),
                            require_targets=False)

    def predict(self, model_name: str, table: xr.Dataset, target_months=None) -> xr.DataArray:
        """Soil temperature (degC) predicted for ``target_months`` from ``table``'s features.

        ``table``: canonical schema, dims ``(time, band|cell)`` or ``(scenario, time, ...)``;
        it must hold the ``window`` months before each target month. ``target_months``: any
        sequence of month stamps (None: every month that has a full window, including the
        month after the table's end). Returns dims ``([scenario,] time, band|cell, layer)``.
        """
        if "scenario" in table.dims:
            parts = [self.predict(model_name, table.sel(scenario=s), target_months)
                     for s in table["scenario"].values]
            return xr.concat(parts, dim=table["scenario"])
        model = self.load_model(model_name)
        arrays = self.arrays(table)
        w = self.normaliser.window
        if target_months is None:
            times = pd.DatetimeIndex(arrays.time)
            target_months = times[w:].append(times[-1:] + pd.offsets.MonthBegin(1))
        months = pd.DatetimeIndex(target_months)
        index = target_windows(arrays, months, w)
        pred = predict_windows(model, arrays, self.normaliser, index)
        pred = pred.reshape(len(months), len(arrays.units), len(schema.TARGETS))
        udim = arrays.unit_dim
        unit_coords = {k: v for k, v in table[udim].coords.items() if v.dims == (udim,)}
        da = xr.DataArray(
            pred, dims=("time", udim, "layer"),
            coords={"time": months.values.astype("datetime64[ns]"), **unit_coords,
                    "layer": list(schema.TARGETS)},
            name="soil_temperature",
            attrs={"units": "degC", "long_name": "predicted soil temperature",
                   "model": model_name, schema.DATA_LABEL_ATTR: schema.data_label(table),
                   "trained_on": self.data_label},
        )
        return da


def load_run(run_dir: Path | str) -> Run:
    """Reload a run folder written by :func:`execute_run`."""
    path = Path(run_dir)
    if not (path / CONFIG_FILE).exists():
        raise ConfigError(f"{path}: not a permaplug run folder (no {CONFIG_FILE})")
    import yaml

    raw = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    resolved = raw.pop("resolved", {}) or {}
    cfg = RunConfig.from_dict(raw, str(path / CONFIG_FILE))
    ckpts = sorted((path / "checkpoints").glob("*/normaliser.json"))
    if not ckpts:
        raise ConfigError(f"{path}: the run has no finished checkpoint")
    return Run(path, cfg, resolved, Normaliser.load(ckpts[0]))
