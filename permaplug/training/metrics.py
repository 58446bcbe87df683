"""RMSE, MAE and R² pooled over bands and layers (paper), per layer, per band, per band x layer;
plus two scores that do not reward the seasonal cycle alone: the MSE skill score against the
training years' monthly climatology (``msess`` = 1 - MSE / MSE of the climatology; 0 = no better
than the climatology, 1 = perfect) and the R² of the anomalies from that climatology
(``anom_r2`` = 1 - SSE / SST of the observed anomalies). A high R² of a seasonal series says
little: the climatology alone has R² 0.96 on the demo."""
from __future__ import annotations

import numpy as np
import pandas as pd

from permaplug.core import schema


def scores(observed: np.ndarray, predicted: np.ndarray,
           climatology: np.ndarray | None = None) -> dict[str, float]:
    """``{"rmse", "mae", "r2", "n"}`` of flattened arrays (degC; R² = 1 - SSE / SST); with
    ``climatology`` (the training years' mean of each point's unit, calendar month and layer)
    also ``msess`` and ``anom_r2`` (module docstring)."""
    o = np.asarray(observed, float).ravel()
    p = np.asarray(predicted, float).ravel()
    ok = np.isfinite(o) & np.isfinite(p)
    c = None
    if climatology is not None:
        c = np.asarray(climatology, float).ravel()
        ok &= np.isfinite(c)
        c = c[ok]
    o, p = o[ok], p[ok]
    nan = float("nan")
    if o.size == 0:
        out = {"rmse": nan, "mae": nan, "r2": nan, "n": 0}
        return out if c is None else {**out, "msess": nan, "anom_r2": nan}
    err = p - o
    sse = float((err**2).sum())
    sst = float(((o - o.mean()) ** 2).sum())
    r2 = 1.0 - sse / sst if sst > 0 else nan
    out = {"rmse": float(np.sqrt((err**2).mean())), "mae": float(np.abs(err).mean()),
           "r2": r2, "n": int(o.size)}
    if c is not None:
        anom = o - c
        mse_clim = float((anom**2).sum())
        ss_anom = float(((anom - anom.mean()) ** 2).sum())
        out["msess"] = 1.0 - sse / mse_clim if mse_clim > 0 else nan
        out["anom_r2"] = 1.0 - sse / ss_anom if ss_anom > 0 else nan
    return out


def training_climatology(target: np.ndarray, month: np.ndarray, years: np.ndarray,
                         train_years: tuple[int, int] | list[int]) -> np.ndarray:
    """Mean of ``target`` ``[U, T, L]`` degC per unit, calendar month and layer over the
    training years: ``[U, 12, L]`` (NaN where nothing was observed)."""
    import warnings

    keep = (years >= train_years[0]) & (years <= train_years[1])
    out = np.full((target.shape[0], 12, target.shape[2]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a month never observed: NaN
        for m in range(12):
            sel = keep & (month == m + 1)
            if sel.any():
                out[:, m] = np.nanmean(target[:, sel], axis=1)
    return out


def model_metrics(pred: pd.DataFrame, unit_col: str = "band") -> dict:
    """Metrics of one model's predictions (columns ``unit_col, layer, observed, predicted``,
    optionally ``climatology``: then every score set has ``msess`` and ``anom_r2`` too).

    Returns ``{"overall", "per_layer": {stl1..}, "per_band": {band..}, "per_band_layer":
    {band: {stl1..}}}``; keys are strings (JSON). In gridded mode the cells of a band pool into
    it (``unit_col`` = ``band``, the cell's band column).
    """
    def sc(frame: pd.DataFrame) -> dict:
        clim = frame.get("climatology", None)
        return scores(frame["observed"], frame["predicted"], clim)

    out = {"overall": sc(pred), "per_layer": {}, "per_band": {}, "per_band_layer": {}}
    for layer in schema.TARGETS:
        sub = pred[pred["layer"] == layer]
        if len(sub):
            out["per_layer"][layer] = sc(sub)
    for unit, sub in pred.groupby(unit_col, sort=True):
        key = str(unit)
        out["per_band"][key] = scores(sub["observed"], sub["predicted"])
        out["per_band_layer"][key] = {
            layer: scores(s["observed"], s["predicted"]) for layer, s in sub.groupby("layer", sort=True)
        }
    return out
