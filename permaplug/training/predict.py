"""Predict soil temperatures (degC) for a set of windows, for networks and baselines alike."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from permaplug.core import schema
from permaplug.core.model import Model
from permaplug.training.baseline import Baseline
from permaplug.training.normalise import Normaliser
from permaplug.training.windows import Z_FEATURE, SeriesArrays, WindowSet


def window_set(arrays: SeriesArrays, normaliser: Normaliser, index: np.ndarray) -> WindowSet:
    """Normalised tensors of ``arrays`` with the window ``index`` (targets normalised too)."""
    normaliser.check(arrays)
    names = list(arrays.dynamic_names)
    z_col = names.index(Z_FEATURE) if Z_FEATURE in names else None
    return WindowSet(normaliser.dynamic(arrays.dynamic), normaliser.static(arrays.static),
                     arrays.band, normaliser.target(arrays.target), index, normaliser.window,
                     z_col)


def _months_ext(arrays: SeriesArrays) -> torch.Tensor:
    """Calendar month ``[T + 1]`` of every step and of the month after the table."""
    nxt = (pd.DatetimeIndex(arrays.time[-1:]) + pd.offsets.MonthBegin(1)).month.to_numpy()
    return torch.as_tensor(np.concatenate([arrays.month, nxt]), dtype=torch.int64)


def predict_windows(model: Model, arrays: SeriesArrays, normaliser: Normaliser,
                    index: np.ndarray, batch_size: int = 512,
                    device: str | torch.device = "cpu") -> np.ndarray:
    """``[N, L]`` degC predictions for windows ``index`` ``[N, 2]`` (unit, last input month)."""
    index = np.asarray(index, np.int64).reshape(-1, 2)
    if isinstance(model, Baseline) or not model.trainable:
        target = torch.as_tensor(np.concatenate(
            [arrays.target, np.full_like(arrays.target[:, :1], np.nan)], axis=1))
        idx = torch.as_tensor(index)
        extra = {"dynamic": arrays.dynamic} if getattr(model, "needs_dynamic", False) else {}
        with torch.no_grad():
            out = model.predict_series(target, torch.as_tensor(arrays.band), _months_ext(arrays),
                                       idx[:, 0], idx[:, 1], **extra)
        return out.numpy().astype(np.float32)
    data = window_set(arrays, normaliser, index)
    model.eval()
    model.to(device)
    outs = []
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            x, band, static, _ = data.batch(slice(s, s + batch_size))
            outs.append(model(x.to(device), band.to(device), static.to(device)).cpu().numpy())
    out = np.concatenate(outs) if outs else np.zeros((0, len(schema.TARGETS)), np.float32)
    return normaliser.target_inverse(out)


def predictions_frame(arrays: SeriesArrays, index: np.ndarray, predicted: np.ndarray,
                      model_name: str) -> pd.DataFrame:
    """Long table: ``time`` (target month), unit, ``band``, ``layer``, ``observed``,
    ``predicted`` (degC), ``model``."""
    unit, last = index[:, 0], index[:, 1]
    n, n_layers = predicted.shape
    observed = arrays.target[unit, last + 1]
    times = arrays.time[last + 1]
    frame = {
        "time": np.repeat(times, n_layers),
        arrays.unit_dim: np.repeat(arrays.units[unit], n_layers),
    }
    if arrays.unit_dim != "band":
        frame["band"] = np.repeat(arrays.band[unit], n_layers)
    frame.update({
        "layer": np.tile(np.asarray(schema.TARGETS), n),
        "observed": observed.reshape(-1).astype(np.float64),
        "predicted": predicted.reshape(-1).astype(np.float64),
        "model": model_name,
    })
    return pd.DataFrame(frame)
