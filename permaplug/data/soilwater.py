"""Dirichlet split of climate-model soil water (mrso, mrsos) into ERA5-Land layers swvl1..4.

CMIP5 gives total column soil water ``mrso`` and top-10-cm water ``mrsos`` (kg m-2); ERA5-Land
gives volumetric water in four layers (0-7, 7-28, 28-100, 100-289 cm). Following the paper:

1. ``fit_dirichlet(obs)``: from the reanalysis' ``swvl1..4`` (m3 m-3), layer water
   ``w_i = swvl_i * d_i * 1000`` (kg m-2, ``d_i`` the layer thickness in m) and fractions
   ``p_i = w_i / sum(w)``. For every spatial unit (band or cell) and calendar month, a
   Dirichlet(alpha) is fitted to the fractions by maximum likelihood (Minka's fixed-point
   iteration started from the method of moments).
2. ``split_soil_water(model, params, seed=None)``: the model's ``mrso`` of month m is split into
   layer water by the fitted mean fractions ``alpha / sum(alpha)`` (``seed=None``) or by one
   Dirichlet sample per value (seeded), then ``swvl_i = w_i / (d_i * 1000)``.
   When ``mrsos`` is present, layer 1 takes the top-10-cm volumetric content
   (``swvl1 = mrsos / 100``) and the rest (``mrso - swvl1 * 70``, floored at 0) is split over
   layers 2-4 with the Dirichlet's aggregation property (fractions of layers 2-4 renormalised;
   samples from Dirichlet(alpha_2..4)).

The model's column depth differs from ERA5-Land's 2.89 m: the split keeps the model's water
amount, so level differences remain for the bias correction to remove.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import digamma, polygamma, zeta

from permaplug.core import schema
from permaplug.core.errors import DataError

THICKNESS_M = np.array([b - a for a, b in schema.LAYERS])
WATER_DENSITY = 1000.0  # kg m-3
EPS = 1e-6


def _inv_digamma(y: np.ndarray, iters: int = 5) -> np.ndarray:
    """Inverse of the digamma function (Minka 2000, Newton iterations)."""
    x = np.where(y >= -2.22, np.exp(y) + 0.5, -1.0 / (y - digamma(1.0)))
    for _ in range(iters):
        x = x - (digamma(x) - y) / polygamma(1, x)
    return x


def dirichlet_mle(p: np.ndarray, iters: int = 200, tol: float = 1e-8) -> np.ndarray:
    """Dirichlet alpha (k,) fitted to fractions ``p`` (n, k) by maximum likelihood.

    Rows with a missing value are ignored; fractions are clipped to [EPS, 1] and renormalised.
    Needs at least two rows; returns NaN otherwise.
    """
    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p).all(axis=1)]
    if p.shape[0] < 2:
        return np.full(p.shape[1], np.nan)
    p = np.clip(p, EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    mean = p.mean(axis=0)
    var = p.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.nanmedian(mean * (1 - mean) / var - 1)
    if not np.isfinite(s) or s <= 0:
        s = 1e3  # (near-)constant fractions: a sharp Dirichlet around the mean
    alpha = mean * s
    log_p = np.log(p).mean(axis=0)
    for _ in range(iters):
        new = _inv_digamma(digamma(alpha.sum()) + log_p)
        if np.max(np.abs(new - alpha)) < tol * max(1.0, alpha.max()):
            alpha = new
            break
        alpha = new
    return alpha


def dirichlet_mle_batch(p: np.ndarray, iters: int = 200, tol: float = 1e-8) -> np.ndarray:
    """:func:`dirichlet_mle` for many units at once: ``p`` (units, n, k) -> alpha (units, k).

    Same maximum-likelihood estimate (to the tolerance), vectorised over units, reached by
    Newton steps instead of the fixed point; each unit stops at its own tolerance.
    """
    p = np.asarray(p, dtype=float)
    valid = np.isfinite(p).all(axis=2)  # (units, n)
    count = valid.sum(axis=1)
    p = np.where(valid[..., None], np.clip(p, EPS, 1.0), np.nan)
    p = p / p.sum(axis=2, keepdims=True)
    out = np.full(p.shape[::2], np.nan)
    ok = count >= 2
    if not ok.any():
        return out
    p = p[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.nanmean(p, axis=1)
        var = np.nanvar(p, axis=1, ddof=1)
        ratio = mean * (1 - mean) / var - 1
        ratio = np.where(np.isfinite(ratio), ratio, np.nan)
        all_nan = np.isnan(ratio).all(axis=1)
        s = np.full(len(p), np.nan)
        s[~all_nan] = np.nanmedian(ratio[~all_nan], axis=1)
    s = np.where(np.isfinite(s) & (s > 0), s, 1e3)
    alpha = mean * s[:, None]
    log_p = np.nanmean(np.log(p), axis=1)
    active = np.ones(len(p), bool)
    for _ in range(iters):
        # Newton step on the log-likelihood (Minka 2000, diagonal + rank-one Hessian), the
        # fixed-point step where Newton would leave alpha > 0; same maximum, ~10x fewer steps
        a, lp = alpha[active], log_p[active]
        total = a.sum(axis=1, keepdims=True)
        grad = digamma(total) - digamma(a) + lp
        q = -zeta(2, a)
        z = zeta(2, total)
        b = (grad / q).sum(axis=1, keepdims=True) / (1.0 / z + (1.0 / q).sum(axis=1,
                                                                          keepdims=True))
        new = a - (grad - b) / q
        bad = ~(np.isfinite(new) & (new > 0)).all(axis=1)
        if bad.any():
            new[bad] = _inv_digamma(digamma(total[bad]) + lp[bad])
        done = np.max(np.abs(new - alpha[active]), axis=1) < tol * np.maximum(
            1.0, alpha[active].max(axis=1))
        alpha[active] = new
        idx = np.flatnonzero(active)
        active[idx[done]] = False
        if not active.any():
            break
    out[ok] = alpha
    return out

def layer_fractions(obs: xr.Dataset) -> xr.DataArray:
    """Fractions of column water per layer: dims (..., layer) from swvl1..4 (m3 m-3)."""
    missing = [v for v in schema.SOIL_WATER if v not in obs]
    if missing:
        raise DataError(f"soil-water split: reanalysis lacks {', '.join(missing)}")
    water = xr.concat([obs[v] * THICKNESS_M[i] * WATER_DENSITY
                       for i, v in enumerate(schema.SOIL_WATER)], dim="layer")
    water = water.assign_coords(layer=np.arange(1, schema.N_LAYERS + 1))
    total = water.sum("layer", skipna=False)
    return (water / total.where(total > 0)).transpose(..., "layer")


def fit_dirichlet(obs: xr.Dataset) -> xr.Dataset:
    """Fit Dirichlet(alpha) per spatial unit and calendar month to the reanalysis fractions.

    ``obs``: dims (time, unit) with ``swvl1..4``. Returns ``alpha`` (month, unit, layer),
    ``mean_fraction`` (= alpha / sum alpha), ``n`` (months used) and attrs naming the data.
    """
    frac = layer_fractions(obs).load()
    units = [d for d in frac.dims if d not in ("time", "layer")]
    if len(units) > 1:
        raise DataError(f"soil-water split: expected dims (time, unit), got {frac.dims}")
    unit = units[0] if units else None
    month = frac["time"].dt.month.values
    n_units = frac.sizes[unit] if unit else 1
    alpha = np.full((12, n_units, schema.N_LAYERS), np.nan)
    count = np.zeros((12, n_units), dtype=int)
    for m in range(1, 13):  # all units of a month at once (gridded mode: thousands of cells)
        sel = frac.isel(time=np.flatnonzero(month == m))
        p = (sel.transpose(unit, "time", "layer") if unit else
             sel.transpose("time", "layer").expand_dims("unit")).values
        count[m - 1] = np.isfinite(p).all(axis=2).sum(axis=1)
        alpha[m - 1] = dirichlet_mle_batch(p)
    dims = ("month", unit or "unit", "layer")
    coords = {"month": np.arange(1, 13), "layer": np.arange(1, schema.N_LAYERS + 1)}
    if unit:
        coords[unit] = frac[unit].values
        extra = {c: frac[c] for c in frac.coords if c not in frac.dims and
                 frac[c].dims == (unit,)}
        coords.update(extra)
    ds = xr.Dataset({"alpha": (dims, alpha), "n": (dims[:2], count)}, coords=coords)
    ds["mean_fraction"] = ds["alpha"] / ds["alpha"].sum("layer")
    ds["alpha"].attrs = {"long_name": "Dirichlet concentration of layer water fractions"}
    ds.attrs = {"fitted_on": schema.data_label(obs),
                "method": "Dirichlet MLE (Minka fixed point) per unit and calendar month"}
    return ds


def split_soil_water(model: xr.Dataset, params: xr.Dataset, seed: int | None = None) -> xr.Dataset:
    """Add ``swvl1..4`` (m3 m-3) to ``model`` from its ``mrso`` (and ``mrsos``), kg m-2.

    ``model`` dims (..., time, unit) with the unit dim named as in ``params``; ``seed=None``
    splits by the mean fractions, an integer draws one seeded Dirichlet sample per value.
    """
    if "mrso" not in model:
        raise DataError("soil-water split: the model data have no 'mrso'")
    unit = next(d for d in params["alpha"].dims if d not in ("month", "layer"))
    if unit not in model["mrso"].dims:
        raise DataError(f"soil-water split: model data lack the '{unit}' dimension of the fit")
    alpha = params["alpha"]
    chunks = model["mrso"].chunksizes
    if unit in chunks:  # lazy model (gridded mode): keep the per-month fractions lazy too, so
        # no (time, unit, layer) array is built in memory or shipped inside the dask graph
        alpha = alpha.chunk({unit: chunks[unit], "month": -1, "layer": -1})
    alpha = alpha.sel(month=model["time"].dt.month).drop_vars("month")
    alpha = alpha.sel({unit: model[unit]}) if unit in model.coords else alpha
    use_mrsos = "mrsos" in model
    layers = slice(2, schema.N_LAYERS + 1) if use_mrsos else slice(1, schema.N_LAYERS + 1)
    a = alpha.sel(layer=layers)
    if seed is None:
        frac = a / a.sum("layer")
    else:
        rng = np.random.default_rng(seed)
        av = a.transpose(..., "layer").values
        ok = np.isfinite(av).all(axis=-1)
        g = np.full(av.shape, np.nan)
        g[ok] = rng.gamma(av[ok])
        frac = xr.DataArray(g / g.sum(axis=-1, keepdims=True),
                            dims=a.transpose(..., "layer").dims,
                            coords=a.transpose(..., "layer").coords)
    total = model["mrso"]
    out = model.copy()
    if use_mrsos:
        swvl1 = model["mrsos"] / (0.1 * WATER_DENSITY)
        rest = (total - swvl1 * THICKNESS_M[0] * WATER_DENSITY).clip(min=0.0)
        out["swvl1"] = swvl1
        first = 2
    else:
        rest = total
        first = 1
    for layer in range(first, schema.N_LAYERS + 1):
        w = rest * frac.sel(layer=layer, drop=True)
        out[f"swvl{layer}"] = w / (THICKNESS_M[layer - 1] * WATER_DENSITY)
    for v in schema.SOIL_WATER:
        out[v] = out[v].transpose(*model["mrso"].dims).assign_attrs(schema.cf_attrs(v))
    out.attrs = dict(model.attrs)
    out.attrs["soil_water_split"] = (
        f"Dirichlet split of mrso{' (swvl1 from mrsos)' if use_mrsos else ''} by "
        f"{'mean fractions' if seed is None else f'samples (seed {seed})'} fitted on "
        f"{params.attrs.get('fitted_on', 'the reanalysis')}")
    return out
