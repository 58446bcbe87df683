"""Transfer from the emulator to observed sites (issue 14.4): does the demo data teach anything?

Three ways to get a network for a site table (e.g. the real ``toolik`` catalog), compared on the
site's test years with the same inputs (the variables both tables have, plus the calendar):

* ``site only``: trained on the site's training years from scratch (the site's normaliser);
* ``emulator, unchanged``: trained on the emulator (demo band ``band``, default 4, Toolik's
  band) and applied to the site as is (the emulator's normaliser, physical inputs in, degC out);
* ``emulator + fine-tune``: the emulator model trained further on the site's training years
  (same normaliser and weights to start from; ``finetune_lr``, early stopping on the site's
  validation months).

The site's band embedding index must match the emulator's (``site_embedding: band``). Results
are per layer (RMSE degC, n) with the baselines fitted on the site for reference.
"""
from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.data.features import PAPER_CALENDAR, feature_classes
from permaplug.training.config import RunConfig
from permaplug.training.loop import TrainConfig, train_model
from permaplug.training.metrics import model_metrics
from permaplug.training.predict import predict_windows, predictions_frame, window_set
from permaplug.training.runs import Prepared, build_model, fit_model, prepare

VARIANTS = ("site only", "emulator, unchanged", "emulator + fine-tune")


@dataclass
class TransferSetup:
    """What the comparison runs on. ``inputs``: the shared dynamic inputs, variables both tables
    have or derived features computed from them (e.g. ``snowpack_dd``, by the same feature
    plugins on both tables; the calendar features are added); ``emulator_years``/
    ``site_*_years``: target years (inclusive)."""

    band: int = 4
    inputs: tuple[str, ...] = ("t2m", "tp")
    emulator_years: tuple[int, int] = (2001, 2018)
    site_train_years: tuple[int, int] = (1989, 2012)
    site_test_years: tuple[int, int] = (2013, 2021)
    val_fraction: float = 0.2
    epochs: int = 50
    finetune_epochs: int = 50
    finetune_lr: float = 3e-4
    early_stopping: int = 10
    seed: int = 0


def can_supply(table: xr.Dataset, name: str) -> bool:
    """True when ``table`` holds ``name`` or the variables its derived feature reads."""
    if name in table:
        return True
    feats = feature_classes()
    return name in feats and all(can_supply(table, dep) for dep in feats[name].inputs)


def shared_inputs(tables: Sequence[xr.Dataset], names: Sequence[str]) -> list[str]:
    """The dynamic inputs of ``names`` (calendar features left out: always added) that every
    table can supply, in order."""
    return [n for n in names if n not in PAPER_CALENDAR
            and all(can_supply(t, n) for t in tables)]


def restrict(table: xr.Dataset, inputs: Sequence[str], unit: int | None = None) -> xr.Dataset:
    """``table`` with the dynamic inputs ``inputs`` only (+ calendar), no static features, and
    (``unit`` given) the one band ``unit`` of a band table. A derived feature may be absent
    (the run computes it) when the variables it reads are present."""
    missing = [v for v in inputs if not can_supply(table, v)]
    if missing:
        raise DataError(f"table lacks the transfer input(s) {missing}")
    if unit is not None and "band" in table.dims:
        table = table.sel(band=[unit])
    out = table.copy()
    out.attrs = dict(table.attrs)
    out.attrs["dynamic_features"] = ",".join(inputs)
    return out


def _config(setup: TransferSetup, train: tuple[int, int], test: tuple[int, int],
            **kw) -> RunConfig:
    cfg = RunConfig(train_years=list(train), test_years=list(test), use_z=False, static=[],
                    epochs=setup.epochs, seed=setup.seed, val_fraction=setup.val_fraction,
                    early_stopping=setup.early_stopping,
                    features=[*setup.inputs, *PAPER_CALENDAR], **kw)
    cfg.validate()
    return cfg


def _layer_scores(model, prep: Prepared, normaliser=None) -> dict[str, dict[str, float]]:
    norm = normaliser or prep.normaliser
    pred = predict_windows(model, prep.arrays, norm, prep.test)
    frame = predictions_frame(prep.arrays, prep.test, pred, model.name)
    return {k: {"rmse": v["rmse"], "n": v["n"]}
            for k, v in model_metrics(frame)["per_layer"].items()}


def _finetune(model, site: Prepared, norm, setup: TransferSetup):
    tuned = copy.deepcopy(model)
    tc = TrainConfig(epochs=setup.finetune_epochs, batch_size=32, lr=setup.finetune_lr,
                     seed=setup.seed, early_stopping=setup.early_stopping if len(site.val) else 0)
    train = window_set(site.arrays, norm, site.train)
    val = window_set(site.arrays, norm, site.val) if len(site.val) else None
    train_model(tuned, train, tc, val, progress=False, label=f"{model.name} fine-tune")
    return tuned


def compare_transfer(emulator: xr.Dataset, site: xr.Dataset, networks: Sequence[str],
                     setup: TransferSetup | None = None,
                     echo: Callable[[str], None] = print) -> dict:
    """Run the three variants for each network; returns ``{"networks": {name: {variant:
    {layer: {rmse, n}}}}, "baselines": {name: {layer: ...}}, "data": {...}}``."""
    setup = setup or TransferSetup()
    emu = restrict(emulator, setup.inputs, setup.band)
    st = restrict(site, setup.inputs)
    if "band" in st.coords and int(st["band"].values[0]) != setup.band:
        raise DataError(f"the site's embedding index is {int(st['band'].values[0])}, the "
                        f"emulator band is {setup.band}: use site_embedding: band")
    e_years = setup.emulator_years
    cfg_e = _config(setup, (e_years[0], e_years[1] - 1), (e_years[1], e_years[1]))
    cfg_s = _config(setup, setup.site_train_years, setup.site_test_years)
    prep_e, prep_s = prepare(emu, cfg_e), prepare(st, cfg_s)
    # the site's windows, normalised with the emulator's statistics (same features, checked)
    prep_s_emu = replace(prep_s, normaliser=prep_e.normaliser)
    echo(f"emulator band {setup.band}: {len(prep_e.train)} training windows; site: "
         f"{len(prep_s.train)} training / {len(prep_s.val)} validation / {len(prep_s.test)} test")
    result: dict = {"networks": {}, "baselines": {}, "setup": setup.__dict__,
                    "data": {"emulator": emu.attrs.get("permaplug_data", ""),
                             "site": st.attrs.get("permaplug_data", "")},
                    "inputs": list(prep_s.arrays.dynamic_names)}
    for name in networks:
        scratch = build_model(name, prep_s, cfg_s)
        tc = TrainConfig(epochs=cfg_s.epochs, batch_size=cfg_s.batch_size, lr=cfg_s.lr,
                         seed=cfg_s.seed, early_stopping=cfg_s.early_stopping)
        train_model(scratch, window_set(prep_s.arrays, prep_s.normaliser, prep_s.train), tc,
                    window_set(prep_s.arrays, prep_s.normaliser, prep_s.val), progress=False)
        pre = build_model(name, prep_e, cfg_e)
        tce = replace(tc, early_stopping=0)
        train_model(pre, window_set(prep_e.arrays, prep_e.normaliser, prep_e.train), tce,
                    progress=False)
        tuned = _finetune(pre, prep_s_emu, prep_e.normaliser, setup)
        result["networks"][name] = {
            VARIANTS[0]: _layer_scores(scratch, prep_s),
            VARIANTS[1]: _layer_scores(pre, prep_s, prep_e.normaliser),
            VARIANTS[2]: _layer_scores(tuned, prep_s, prep_e.normaliser),
        }
        row = result["networks"][name]
        echo(f"{name:>12}: " + "; ".join(
            f"{v}: " + " ".join(f"{row[v][k]['rmse']:.2f}" for k in ("stl1", "stl2", "stl3"))
            for v in VARIANTS))
    with tempfile.TemporaryDirectory(prefix="permaplug-transfer-") as tmp:
        for name in ("climatology", "linear"):
            model, _ = fit_model(name, prep_s, cfg_s, Path(tmp) / name, False, False)
            result["baselines"][name] = _layer_scores(model, prep_s)
    return result


def markdown(result: dict, layers: Sequence[str] = ("stl1", "stl2", "stl3")) -> str:
    """The comparison as a Markdown table (RMSE degC per layer)."""
    head = "| network | variant | " + " | ".join(f"RMSE {k}" for k in layers) + " |"
    lines = [head, "|---|---|" + "---:|" * len(layers)]
    for name, row in result["networks"].items():
        for v in VARIANTS:
            lines.append(f"| {name} | {v} | " + " | ".join(
                f"{row[v][k]['rmse']:.3f}" for k in layers) + " |")
    for name, row in result["baselines"].items():
        lines.append(f"| {name} (baseline) | site | " + " | ".join(
            f"{row[k]['rmse']:.3f}" for k in layers) + " |")
    return "\n".join(lines)


def mean_over_networks(result: dict, layer: str) -> dict[str, float]:
    """Median RMSE over the networks of each variant at ``layer``."""
    return {v: float(np.median([r[v][layer]["rmse"] for r in result["networks"].values()]))
            for v in VARIANTS}


def median_over_seeds(results: Sequence[dict]) -> dict:
    """One comparison from the results of several seeds (same networks, inputs and windows):
    each RMSE is the median over the seeds; ``seeds`` lists the seeds."""
    first = results[0]

    def med(rows: list[dict]) -> dict:
        return {k: {"rmse": float(np.median([r[k]["rmse"] for r in rows])), "n": rows[0][k]["n"]}
                for k in rows[0]}

    out = {**first, "seeds": [r["setup"]["seed"] for r in results], "networks": {},
           "baselines": {name: med([r["baselines"][name] for r in results])
                         for name in first["baselines"]}}
    for name in first["networks"]:
        out["networks"][name] = {v: med([r["networks"][name][v] for r in results])
                                 for v in VARIANTS}
    return out
