"""A fast path for empirical quantile mapping on many cells at once (NumPy + numba).

xsdba's ``EmpiricalQuantileMapping`` with ``group="time.month"`` loops over groups and cells in
Python and interpolates the adjustment factors with :func:`scipy.interpolate.griddata`, one
cell at a time. This module computes the same numbers for a whole block of cells:

* **train** (:func:`train_eqm`): per calendar month and cell, the quantiles of the reference
  and of the model on xsdba's nodes (``equally_spaced_nodes(n)``: ``(i + 0.5) / n``), with
  xsdba's estimator (Hyndman & Fan type 7, NaN skipped, the same interpolation formula), and
  the adjustment factors ``ref_q - hist_q`` (additive) or ``ref_q / hist_q``
  (multiplicative);
* **adjust** (:func:`adjust_eqm`): xsdba's ``interp="nearest"`` on a month grouping is a
  nearest-neighbour search in the plane (model value, month index), the months made cyclic
  (December before January, January after December), in the data's own units: a value far
  outside its month's quantiles can take the factor of a neighbouring month's node. That
  search is done here exactly (per value: the nearest node of its own month, then of the other
  months while the month distance alone is shorter than the best distance so far), followed by
  xsdba's ``extrapolation="constant"`` (below the month's first quantile: its first factor,
  above the last: its last factor).

Where two nodes with different factors are exactly equally near (possible with tied
calibration values), xsdba's answer depends on its k-d tree's internal order; those cells are
handed to xsdba's own :func:`xsdba.utils.interp_on_quantiles` (counted in the returned flag).

Not covered (the caller, :class:`permaplug.correction.xsdba_corrector.XsdbaCorrector`, uses xsdba
itself): frequency adaptation and jitter (precipitation, snowfall), groupings other than
``time.month``, ``interp`` other than ``nearest``, ``extrapolation`` other than ``constant``,
and the detrended (``dqm``) and delta (``qdm``) methods' own steps.

Shapes: series ``[..., T, C]`` as float64 (``C`` cells last), ``months`` ``[T]`` in 1..12;
quantile tables ``[12, Q, C]``.
"""
from __future__ import annotations

import numba
import numpy as np

ADDITIVE, MULTIPLICATIVE = "+", "*"


def nodes(n: int) -> np.ndarray:
    """xsdba's ``equally_spaced_nodes(n)``: ``n`` quantiles ``(i + 0.5) / n``."""
    dq = 1 / n / 2
    return np.linspace(dq, 1 - dq, n)


def months_of(time) -> np.ndarray:
    """Calendar months 1..12 of ``time`` (datetime64 or cftime values): ``[T]`` int64."""
    import xarray as xr

    return xr.DataArray(np.asarray(time), dims="time").dt.month.values.astype(np.int64)


def _lerp(left: np.ndarray, right: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """xsdba's ``_linear_interpolation`` (the branch for ``gamma >= 0.5`` counts from the right)."""
    diff = right - left
    return np.where(gamma >= 0.5, right - diff * (1 - gamma), left + diff * gamma)


def quantiles_by_month(x: np.ndarray, months: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Type-7 quantiles ``q`` of ``x`` ``[T, C]`` per calendar month, NaN skipped: ``[12, Q, C]``.

    Same estimator and formulas as xsdba's ``nbutils._nan_quantile_1d``; an all-NaN month of a
    cell gives NaN.
    """
    n_cells = x.shape[1]
    out = np.full((12, q.size, n_cells), np.nan)
    for m in range(1, 13):
        sub = np.sort(x[months == m], axis=0)  # NaN last
        if sub.shape[0] == 0:
            continue
        count = (~np.isnan(sub)).sum(axis=0)  # [C]
        vi = (count[None, :] - 1) * q[:, None]  # [Q, C]: n q + (1 - q) - 1
        prev = np.floor(vi)
        above = vi >= count[None, :] - 1
        prev = np.where(above, count[None, :] - 1, np.where(vi < 0, 0, prev))
        nxt = np.where(above, count[None, :] - 1, np.where(vi < 0, 0, prev + 1))
        prev_i = np.clip(prev, 0, sub.shape[0] - 1).astype(np.intp)
        next_i = np.clip(nxt, 0, sub.shape[0] - 1).astype(np.intp)
        left = np.take_along_axis(sub, prev_i, axis=0)
        right = np.take_along_axis(sub, next_i, axis=0)
        gamma = vi - np.where(above, -1.0, prev)  # unused where above (left == right)
        res = np.where(above, left, _lerp(left, right, gamma))
        out[m - 1] = np.where(count[None, :] > 0, res, np.nan)
    return out


def train_eqm(ref: np.ndarray, hist: np.ndarray, months: np.ndarray, nquantiles: int,
              kind: str = ADDITIVE) -> tuple[np.ndarray, np.ndarray]:
    """Adjustment factors and model quantiles ``(af, hist_q)``, each ``[12, Q, C]``.

    ``ref``, ``hist``: calibration series ``[T, C]`` on the same months ``months`` ``[T]``.
    """
    q = nodes(nquantiles)
    ref_q = quantiles_by_month(np.asarray(ref, float), months, q)
    hist_q = quantiles_by_month(np.asarray(hist, float), months, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        af = ref_q - hist_q if kind == ADDITIVE else ref_q / hist_q
    return af, hist_q


@numba.njit(cache=True, nogil=True)
def _nearest_in_row(xs: np.ndarray, v: float) -> int:
    """Index of the first of the nodes ``xs`` (sorted, no NaN) nearest to ``v``."""
    lo, hi = 0, xs.size
    while lo < hi:  # first index with xs[i] >= v
        mid = (lo + hi) // 2
        if xs[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    if lo == xs.size:
        return xs.size - 1
    if lo > 0 and v - xs[lo - 1] <= xs[lo] - v:
        return lo - 1
    return lo


@numba.njit(cache=True, nogil=True)
def _adjust_cell(sim: np.ndarray, months: np.ndarray, xq: np.ndarray, yq: np.ndarray,
                 multiplicative: bool, out: np.ndarray) -> bool:
    """One cell: ``sim`` ``[S, T]``, ``xq``/``yq`` ``[12, Q]`` -> ``out`` ``[S, T]``.

    Returns False when an exactly tied nearest node with a different factor was met.
    """
    n_q = xq.shape[1]
    # the 14 rows of xsdba's cyclic map: December, January..December, January
    row_month = np.empty(14, np.int64)
    row_month[0] = 11
    for g in range(1, 13):
        row_month[g] = g - 1
    row_month[13] = 0
    xs = np.empty((14, n_q))
    ys = np.empty((14, n_q))
    counts = np.zeros(14, np.int64)
    for g in range(14):
        m = row_month[g]
        k = 0
        for j in range(n_q):
            if not (np.isnan(xq[m, j]) or np.isnan(yq[m, j])):
                xs[g, k] = xq[m, j]
                ys[g, k] = yq[m, j]
                k += 1
        counts[g] = k
    # extrapolation bounds per month: first/last non-NaN hist quantile and its factor
    lo_x = np.full(12, np.nan)
    hi_x = np.full(12, np.nan)
    lo_y = np.full(12, np.nan)
    hi_y = np.full(12, np.nan)
    for m in range(12):
        for j in range(n_q):
            if not np.isnan(xq[m, j]):
                if np.isnan(lo_x[m]):
                    lo_x[m] = xq[m, j]
                hi_x[m] = xq[m, j]
            if not np.isnan(yq[m, j]):
                if np.isnan(lo_y[m]):
                    lo_y[m] = yq[m, j]
                hi_y[m] = yq[m, j]
    total = counts.sum()
    clean = True
    for s in range(sim.shape[0]):
        for t in range(sim.shape[1]):
            v = sim[s, t]
            m = months[t] - 1
            if np.isnan(v) or total == 0:
                out[s, t] = np.nan
                continue
            g0 = m + 1
            best = np.inf
            val = np.nan
            tie = False
            for step in range(14):
                for g in (g0 - step, g0 + step) if step else (g0, -1):
                    if g < 0 or g > 13 or counts[g] == 0:
                        continue
                    dg = float(g - g0)
                    if dg * dg > best:
                        continue
                    row = xs[g, :counts[g]]
                    i = _nearest_in_row(row, v)
                    d = (v - row[i]) ** 2 + dg * dg
                    # every node of this row at that distance (sorted: scan both ways)
                    for direction in (-1, 1):
                        j = i if direction < 0 else i + 1
                        while 0 <= j < counts[g]:
                            dj = (v - row[j]) ** 2 + dg * dg
                            if dj > d:
                                break
                            if dj < best:
                                best = dj
                                val = ys[g, j]
                                tie = False
                            elif dj == best and ys[g, j] != val:
                                tie = True
                            j += direction
                if (step + 1) * (step + 1) > best:
                    break
            if v < lo_x[m]:
                val = lo_y[m]
            elif v > hi_x[m]:
                val = hi_y[m]
            elif tie:
                clean = False
            out[s, t] = v * val if multiplicative else v + val
    return clean


@numba.njit(cache=True, nogil=True)
def _adjust_block(sim: np.ndarray, months: np.ndarray, xq: np.ndarray, yq: np.ndarray,
                  multiplicative: bool, out: np.ndarray, clean: np.ndarray) -> None:
    for c in range(sim.shape[2]):
        clean[c] = _adjust_cell(sim[:, :, c], months, xq[:, :, c], yq[:, :, c],
                                multiplicative, out[:, :, c])


def adjust_eqm(sim: np.ndarray, months: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
               kind: str = ADDITIVE) -> tuple[np.ndarray, np.ndarray]:
    """Corrected ``sim`` ``[..., T, C]`` and a flag per cell ``[C]`` (False: tie, see module).

    ``af``, ``hist_q``: ``[12, Q, C]`` from :func:`train_eqm` (or an xsdba training).
    """
    sim = np.asarray(sim, dtype=float)
    lead = sim.shape[:-2]
    flat = np.ascontiguousarray(sim.reshape((-1,) + sim.shape[-2:]))
    out = np.empty_like(flat)
    clean = np.ones(flat.shape[-1], dtype=np.bool_)
    _adjust_block(flat, np.asarray(months, np.int64), np.ascontiguousarray(hist_q, float),
                  np.ascontiguousarray(af, float), kind == MULTIPLICATIVE, out, clean)
    return out.reshape(lead + sim.shape[-2:]), clean


def _xsdba_factors(sim: np.ndarray, time: np.ndarray, af: np.ndarray,
                   hist_q: np.ndarray) -> np.ndarray:
    """xsdba's own ``interp_on_quantiles`` (nearest, constant) for ``sim`` ``[S, T, C]``."""
    import warnings

    import xarray as xr
    from xsdba.utils import interp_on_quantiles

    q = np.arange(af.shape[1])
    sim_da = xr.DataArray(sim, dims=("s", "time", "cell"), coords={"time": time})
    table = {"dims": ("month", "quantiles", "cell"),
             "coords": {"month": np.arange(1, 13), "quantiles": q}}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-nan slice", category=RuntimeWarning)
        out = interp_on_quantiles(sim_da, xr.DataArray(hist_q, **table), xr.DataArray(af, **table),
                                  group="time.month", method="nearest", extrapolation="constant")
    return out.transpose("s", "time", "cell").values


def adjust_eqm_exact(sim: np.ndarray, time: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
                     kind: str = ADDITIVE) -> tuple[np.ndarray, int]:
    """:func:`adjust_eqm`, with the cells it flags (exact ties) computed by xsdba instead.

    ``sim`` ``[..., T, C]``; ``time`` ``[T]`` datetime64 or cftime (monthly or daily). Returns
    the corrected array and the number of cells handed to xsdba.
    """
    sim = np.asarray(sim, dtype=float)
    months = months_of(time)
    out, clean = adjust_eqm(sim, months, af, hist_q, kind)
    bad = np.flatnonzero(~clean)
    if bad.size:
        lead = sim.shape[:-2]
        flat = sim.reshape((-1,) + sim.shape[-2:])[..., bad]
        factors = _xsdba_factors(flat, np.asarray(time), af[..., bad], hist_q[..., bad])
        fixed = flat * factors if kind == MULTIPLICATIVE else flat + factors
        out = out.reshape((-1,) + sim.shape[-2:])
        out[..., bad] = fixed
        out = out.reshape(lead + sim.shape[-2:])
    return out, int(bad.size)
