"""RMSE, MAE and R² pooled over bands and layers (paper), per layer, per band, per band x layer."""
from __future__ import annotations

import numpy as np
import pandas as pd

from permaplug.core import schema


def scores(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """``{"rmse", "mae", "r2", "n"}`` of flattened arrays (degC; R² = 1 - SSE / SST)."""
    o = np.asarray(observed, float).ravel()
    p = np.asarray(predicted, float).ravel()
    ok = np.isfinite(o) & np.isfinite(p)
    o, p = o[ok], p[ok]
    if o.size == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan"), "n": 0}
    err = p - o
    sst = float(((o - o.mean()) ** 2).sum())
    r2 = 1.0 - float((err**2).sum()) / sst if sst > 0 else float("nan")
    return {"rmse": float(np.sqrt((err**2).mean())), "mae": float(np.abs(err).mean()),
            "r2": r2, "n": int(o.size)}


def model_metrics(pred: pd.DataFrame, unit_col: str = "band") -> dict:
    """Metrics of one model's predictions (columns ``unit_col, layer, observed, predicted``).

    Returns ``{"overall", "per_layer": {stl1..}, "per_band": {band..}, "per_band_layer":
    {band: {stl1..}}}``; keys are strings (JSON). In gridded mode the cells of a band pool into
    it (``unit_col`` = ``band``, the cell's band column).
    """
    out = {"overall": scores(pred["observed"], pred["predicted"]), "per_layer": {},
           "per_band": {}, "per_band_layer": {}}
    for layer in schema.TARGETS:
        sub = pred[pred["layer"] == layer]
        if len(sub):
            out["per_layer"][layer] = scores(sub["observed"], sub["predicted"])
    for unit, sub in pred.groupby(unit_col, sort=True):
        key = str(unit)
        out["per_band"][key] = scores(sub["observed"], sub["predicted"])
        out["per_band_layer"][key] = {
            layer: scores(s["observed"], s["predicted"]) for layer, s in sub.groupby("layer", sort=True)
        }
    return out
