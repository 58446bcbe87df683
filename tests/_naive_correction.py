"""Deliberately naive reference paths for the correction steps permaplug hands to xsdba.

Used by the tests to pin results at test time: a per-series, per-group Python loop for the
rank-preserving reordering, and one plain xsdba ``adjust`` per block (on the period centred on
it, clipped to the series) for QDM's moving periods.
"""
from __future__ import annotations

import numpy as np
import xarray as xr


def naive_reorder(sim: np.ndarray, scen: np.ndarray, months: np.ndarray | None) -> np.ndarray:
    """Per series and group: the k-th smallest model value gets the k-th smallest corrected
    value (equal model values in time order); groups whose gaps differ are left alone."""
    out = scen.copy()
    flat_sim, flat_scen, flat_out = (a.reshape(-1, a.shape[-1]) for a in (sim, scen, out))
    labels = months if months is not None else np.zeros(sim.shape[-1], int)
    for s in range(flat_sim.shape[0]):
        for label in set(labels.tolist()):
            idx = [i for i in range(labels.size) if labels[i] == label]
            x, y = flat_sim[s, idx], flat_scen[s, idx]
            if not (np.isnan(x) == np.isnan(y)).all():
                continue
            valid = [i for i in range(len(idx)) if not np.isnan(x[i])]
            order = sorted(valid, key=lambda i: (x[i], i))
            values = sorted(y[i] for i in valid)
            for rank, i in enumerate(order):
                flat_out[s, idx[i]] = values[rank]
    return out


def naive_periods(adj, sim: xr.DataArray, window: int, stride: int) -> xr.DataArray:
    """Each ``stride``-year block adjusted inside the ``window``-year period centred on it
    (shifted to stay inside the series): one plain xsdba adjust per block."""
    n_years = sim.sizes["time"] // 12
    parts = []
    for b0 in range(0, n_years, stride):
        b1 = min(b0 + stride, n_years)
        w0 = int(np.clip((b0 + b1) // 2 - window // 2, 0, n_years - window))
        period = sim.isel(time=slice(12 * w0, 12 * (w0 + window)))
        scen = adj.adjust(period, interp="nearest", extrapolation="constant")
        parts.append(scen.isel(time=slice(12 * (b0 - w0), 12 * (b1 - w0))))
    return xr.concat(parts, "time")
