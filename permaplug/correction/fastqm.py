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

Where two nodes with different factors are exactly equally near (tied calibration values:
soil water, zero radiation in the polar night), xsdba's answer depends on its k-d tree's
internal order. The kernels flag those values, and :func:`_tree_factors` settles each of them
by the search xsdba itself runs (:func:`scipy.interpolate.griddata`, nearest, on the same
points in the same order), one k-d tree per cell with ties, queried only at the tied values.
(On the default demo grid 40 % of the cell-series of the corrected variables hold ties, about
6 % of their values; handing whole cells to ``interp_on_quantiles`` cost more than the fast
path itself.) When a month's own nodes are a month-unit or more away (large-valued units such
as J m-2), the search crosses months through one value-sorted list of all nodes of the cell
(:func:`_scan_merged`) instead of month by month.

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


@numba.njit(cache=True, nogil=True)
def _quantiles_block(x: np.ndarray, months: np.ndarray, q: np.ndarray,
                     out: np.ndarray) -> None:
    """``x`` ``[T, C]`` -> ``out`` ``[12, Q, C]`` (see :func:`quantiles_by_month`)."""
    n_t, n_c = x.shape
    vals = np.empty(n_t)
    for c in range(n_c):
        for m in range(12):
            n = 0
            for t in range(n_t):
                if months[t] == m + 1 and not np.isnan(x[t, c]):
                    vals[n] = x[t, c]
                    n += 1
            if n == 0:
                for j in range(q.size):
                    out[m, j, c] = np.nan
                continue
            srt = np.sort(vals[:n])
            for j in range(q.size):
                vi = (n - 1) * q[j]  # xsdba: n q + (1 - q) - 1, Hyndman & Fan type 7
                if vi >= n - 1:
                    out[m, j, c] = srt[n - 1]
                    continue
                prev = int(np.floor(vi))  # vi >= 0: q > 0
                gamma = vi - prev
                left, right = srt[prev], srt[prev + 1]
                diff = right - left
                out[m, j, c] = right - diff * (1 - gamma) if gamma >= 0.5 else left + diff * gamma


def quantiles_by_month(x: np.ndarray, months: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Type-7 quantiles ``q`` of ``x`` ``[T, C]`` per calendar month, NaN skipped: ``[12, Q, C]``.

    Same estimator and interpolation formula as xsdba's ``nbutils._nan_quantile_1d``; an
    all-NaN month of a cell gives NaN.
    """
    out = np.empty((12, q.size, x.shape[1]))
    _quantiles_block(np.ascontiguousarray(x, dtype=float), np.asarray(months, np.int64),
                     np.asarray(q, float), out)
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


@numba.njit(cache=True, nogil=True, inline="always")
def _nearest_in_row(xs: np.ndarray, c: int, g: int, n: int, v: float) -> int:
    """Index of the first of the ``n`` sorted nodes ``xs[c, g, :n]`` nearest to ``v``."""
    lo = 0  # first index with xs >= v: a branch-free count (faster than bisection for ~50)
    for j in range(n):
        lo += 1 if xs[c, g, j] < v else 0
    if lo == n:
        return n - 1
    if lo > 0 and v - xs[c, g, lo - 1] <= xs[c, g, lo] - v:
        return lo - 1
    return lo


@numba.njit(cache=True, nogil=True, inline="always")
def _scan_row(xs: np.ndarray, ys: np.ndarray, c: int, g: int, n: int, v: float, dg2: float,
              best: float, val: float, tie: bool) -> tuple[float, float, bool]:
    """Update ``(best, val, tie)`` with the nodes of row ``g`` nearest to ``v`` (all of them
    when several are exactly as near; sorted nodes, so scan both ways from the nearest)."""
    i = _nearest_in_row(xs, c, g, n, v)
    d = (v - xs[c, g, i]) ** 2 + dg2
    for step in (-1, 1):  # down from the nearest node, then up from the one above it
        j = i if step < 0 else i + 1
        while 0 <= j < n:
            dj = (v - xs[c, g, j]) ** 2 + dg2
            if dj > d:
                break
            if dj < best:
                best, val, tie = dj, ys[c, g, j], False
            elif dj == best and ys[c, g, j] != val:
                tie = True
            j += step
    return best, val, tie


@numba.njit(cache=True, nogil=True)
def _tables(xq: np.ndarray, yq: np.ndarray) -> tuple:
    """Per cell, xsdba's cyclic map (rows: December, January..December, January) without NaN
    nodes, and each month's extrapolation bounds. ``xq``, ``yq``: ``[12, Q, C]``."""
    n_q, n_c = xq.shape[1], xq.shape[2]
    xs = np.empty((n_c, 14, n_q))
    ys = np.empty((n_c, 14, n_q))
    counts = np.zeros((n_c, 14), np.int64)
    bounds = np.full((n_c, 12, 4), np.nan)  # first x, last x, first y, last y
    dupes = np.zeros((n_c, 14), np.bool_)  # a row holds equal nodes with different factors
    for c in range(n_c):
        for g in range(14):
            m = 11 if g == 0 else (0 if g == 13 else g - 1)
            k = 0
            for j in range(n_q):
                if not (np.isnan(xq[m, j, c]) or np.isnan(yq[m, j, c])):
                    xs[c, g, k] = xq[m, j, c]
                    ys[c, g, k] = yq[m, j, c]
                    k += 1
            counts[c, g] = k
            for j in range(1, k):
                if xs[c, g, j] == xs[c, g, j - 1] and ys[c, g, j] != ys[c, g, j - 1]:
                    dupes[c, g] = True
        for m in range(12):
            for j in range(n_q):
                if not np.isnan(xq[m, j, c]):
                    if np.isnan(bounds[c, m, 0]):
                        bounds[c, m, 0] = xq[m, j, c]
                    bounds[c, m, 1] = xq[m, j, c]
                if not np.isnan(yq[m, j, c]):
                    if np.isnan(bounds[c, m, 2]):
                        bounds[c, m, 2] = yq[m, j, c]
                    bounds[c, m, 3] = yq[m, j, c]
    return xs, ys, counts, bounds, dupes


@numba.njit(cache=True, nogil=True)
def _merge_rows(xs: np.ndarray, ys: np.ndarray, counts: np.ndarray, c: int, mx: np.ndarray,
                my: np.ndarray, mg: np.ndarray) -> int:
    """All nodes of cell ``c``'s 14 rows in one list sorted by value: ``mx`` (values), ``my``
    (factors), ``mg`` (row 0..13), each ``[>= 14 Q]``; returns how many."""
    n = counts[c].sum()
    fx, fy, fg = np.empty(n), np.empty(n), np.empty(n, np.int64)
    k = 0
    for g in range(14):
        for j in range(counts[c, g]):
            fx[k], fy[k], fg[k] = xs[c, g, j], ys[c, g, j], g
            k += 1
    order = np.argsort(fx, kind="mergesort")
    for i in range(n):
        mx[i], my[i], mg[i] = fx[order[i]], fy[order[i]], fg[order[i]]
    return n


@numba.njit(cache=True, nogil=True, inline="always")
def _scan_merged(mx: np.ndarray, my: np.ndarray, mg: np.ndarray, n: int, v: float, g0: int,
                 best: float, val: float, tie: bool) -> tuple[float, float, bool]:
    """Update ``(best, val, tie)`` with every node of every row (:func:`_merge_rows`) at the
    distance ``(v - x) ** 2 + (g - g0) ** 2``: outward from ``v``'s place in the value order,
    each way until the value distance alone exceeds ``best`` (no node further on can be as
    near). The same nodes as scanning the rows month by month, far fewer steps when a month's
    spacing is tiny next to the values' (large-valued units)."""
    lo, hi = 0, n  # first node with value >= v
    while lo < hi:
        mid = (lo + hi) >> 1
        if mx[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    for step in (-1, 1):
        j = lo - 1 if step < 0 else lo
        while 0 <= j < n:
            dx2 = (v - mx[j]) ** 2
            if dx2 > best:
                break
            dg = mg[j] - g0
            dj = dx2 + float(dg * dg)
            if dj < best:
                best, val, tie = dj, my[j], False
            elif dj == best and my[j] != val:
                tie = True
            j += step
    return best, val, tie


TILE = 8
"""Cells adjusted one after the other within a tile of 8 (one 64-byte cache line of float64
along the cell axis): a cell's quantile table stays in cache, and the series' cache lines read
for the first cell of a tile serve the other seven from cache."""


@numba.njit(cache=True, nogil=True)  # no fastmath: distances rounded as scipy's k-d tree does
def _adjust_block(sim: np.ndarray, months: np.ndarray, xq: np.ndarray, yq: np.ndarray,
                  multiplicative: bool, out: np.ndarray, clean: np.ndarray,
                  base: np.ndarray, unit: bool, ties: np.ndarray) -> None:
    """``sim``/``base``/``out`` ``[S, T, C]``, ``xq``/``yq`` ``[12, Q, C]``: the factor found for
    ``sim`` (the search coordinate: model values, or ranks for QDM) is applied to ``base`` (the
    model values). ``clean`` ``[C]`` set False where an exactly tied nearest node with a
    different factor decided a value, and ``ties`` ``[S, T, C]`` True at that value. ``unit``: ``sim`` are ranks in [0, 1] on nodes spread
    evenly over [0, 1] (QDM), so a value's place among the nodes is guessed from ``v * n`` and
    then settled exactly by comparisons (instead of counting all nodes)."""
    xs, ys, counts, bounds, dupes = _tables(xq, yq)
    n_s, n_t, n_c = sim.shape
    total = counts.sum(axis=1)
    mx = np.empty(14 * xs.shape[2])  # every node of one cell, sorted (see _scan_merged)
    my = np.empty(14 * xs.shape[2])
    mg = np.empty(14 * xs.shape[2], np.int64)
    merged, n_merged = -1, 0  # the cell they hold
    for c0 in range(0, n_c, TILE):
        width = min(TILE, n_c - c0)
        for k in range(width):
            c = c0 + k
            for s in range(n_s):
                for t in range(n_t):
                    v = sim[s, t, c]
                    m = months[t] - 1
                    if np.isnan(v) or total[c] == 0:
                        out[s, t, c] = np.nan
                        continue
                    g0 = m + 1
                    n = counts[c, g0]
                    if n > 0 and not dupes[c, g0]:  # own month, branch-light: its 2 neighbours
                        if unit:  # guess, then the exact count of nodes below v
                            lo = min(max(int(v * n + 0.5), 0), n)
                            while lo > 0 and xs[c, g0, lo - 1] >= v:
                                lo -= 1
                            while lo < n and xs[c, g0, lo] < v:
                                lo += 1
                        else:
                            lo = 0
                            for j in range(n):
                                lo += 1 if xs[c, g0, j] < v else 0
                        il = lo - 1 if lo > 0 else 0
                        ir = lo if lo < n else n - 1
                        dl = (v - xs[c, g0, il]) ** 2
                        dr = (v - xs[c, g0, ir]) ** 2
                        best = min(dl, dr)
                        val = ys[c, g0, il] if dl <= dr else ys[c, g0, ir]
                        tie = dl == dr and ys[c, g0, il] != ys[c, g0, ir]
                    else:
                        best, val, tie = np.inf, np.nan, False
                        if n > 0:
                            best, val, tie = _scan_row(xs, ys, c, g0, n, v, 0.0, best, val, tie)
                    below = v < bounds[c, m, 0]
                    above = v > bounds[c, m, 1]
                    if best >= 1.0 and not (below or above):  # another month may be nearer
                        if merged != c:
                            n_merged = _merge_rows(xs, ys, counts, c, mx, my, mg)
                            merged = c
                        best, val, tie = _scan_merged(mx, my, mg, n_merged, v, g0, best, val,
                                                      tie)
                    if below:  # below the month's first quantile: its first factor
                        val = bounds[c, m, 2]
                    elif above:  # above the last: the last factor
                        val = bounds[c, m, 3]
                    elif tie:
                        clean[c] = False
                        ties[s, t, c] = True
                    b = base[s, t, c]
                    out[s, t, c] = b * val if multiplicative else b + val


def adjust_eqm(sim: np.ndarray, months: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
               kind: str = ADDITIVE) -> tuple[np.ndarray, np.ndarray]:
    """Corrected ``sim`` ``[..., T, C]`` and a flag per cell ``[C]`` (False: tie, see module).

    ``af``, ``hist_q``: ``[12, Q, C]`` from :func:`train_eqm` (or an xsdba training).
    """
    out, clean, _ = _adjust_eqm_ties(sim, months, af, hist_q, kind)
    return out, clean


def _adjust_eqm_ties(sim: np.ndarray, months: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
                     kind: str = ADDITIVE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`adjust_eqm` plus the tied values themselves: ``(out, clean [C], ties)``,
    ``ties`` ``[..., T, C]`` True where an exact tie decided the value (left unsettled)."""
    sim = np.asarray(sim, dtype=float)
    flat = np.ascontiguousarray(sim.reshape((-1,) + sim.shape[-2:]))
    out = np.empty_like(flat)
    clean = np.ones(flat.shape[-1], dtype=np.bool_)
    ties = np.zeros(flat.shape, dtype=np.bool_)
    _adjust_block(flat, np.asarray(months, np.int64), np.asarray(hist_q, float),
                  np.asarray(af, float), kind == MULTIPLICATIVE, out, clean, flat, False, ties)
    return out.reshape(sim.shape), clean, ties.reshape(sim.shape)


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


def _tree_factors(x: np.ndarray, months: np.ndarray, xq: np.ndarray,
                  yq: np.ndarray) -> np.ndarray:
    """xsdba's nearest-node factor for the values ``x`` ``[K]`` of one cell (calendar months
    ``months`` ``[K]``, 1..12) on its tables ``xq``/``yq`` ``[12, Q]``, by the very search
    xsdba's ``interp_on_quantiles`` runs: :func:`scipy.interpolate.griddata` (nearest, a k-d
    tree) on the same points in the same order (rows December, January..December, January at
    month coordinates 0..13, NaN nodes left out), so an exact tie is settled as xsdba settles
    it. Only values inside their month's quantile range are passed (no extrapolation here)."""
    from scipy.interpolate import griddata

    rows = np.r_[11, np.arange(12), 0]  # xsdba's add_cyclic_bounds: wrap, coordinates 0..13
    old_x, old_y = xq[rows], yq[rows]
    old_g = np.broadcast_to(np.arange(14.0)[:, None], old_x.shape)
    keep = ~(np.isnan(old_y) | np.isnan(old_x))
    return griddata((old_x[keep], old_g[keep]), old_y[keep],
                    (np.asarray(x, float), np.asarray(months, float)), method="nearest")


def _settle_ties(out: np.ndarray, base: np.ndarray, coord: np.ndarray, ties: np.ndarray,
                 months: np.ndarray, xq: np.ndarray, yq: np.ndarray, kind: str) -> int:
    """Recompute, in place, the values of ``out`` ``[S, T, C]`` flagged in ``ties`` with
    :func:`_tree_factors` (search coordinate ``coord``, factor applied to ``base``, both
    ``[S, T, C]``; tables ``[12, Q, C]``). Returns the number of cells that had ties."""
    cells = np.flatnonzero(ties.any(axis=(0, 1)))
    for c in cells:
        s_idx, t_idx = np.nonzero(ties[..., c])
        factor = _tree_factors(coord[s_idx, t_idx, c], months[t_idx], xq[..., c], yq[..., c])
        out[s_idx, t_idx, c] = _apply(base[s_idx, t_idx, c], factor, kind)
    return int(cells.size)


def adjust_eqm_exact(sim: np.ndarray, time: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
                     kind: str = ADDITIVE) -> tuple[np.ndarray, int]:
    """:func:`adjust_eqm`, with the values it flags (exact ties) settled by xsdba's own search
    (:func:`_tree_factors`).

    ``sim`` ``[..., T, C]``; ``time`` ``[T]`` datetime64 or cftime (monthly or daily). Returns
    the corrected array and the number of cells that had tied values.
    """
    sim = np.asarray(sim, dtype=float)
    months = months_of(time)
    out, _, ties = _adjust_eqm_ties(sim, months, af, hist_q, kind)
    shape = (-1,) + sim.shape[-2:]
    flat = sim.reshape(shape)
    n_bad = _settle_ties(out.reshape(shape), flat, flat, ties.reshape(shape), months,
                         np.asarray(hist_q, float), np.asarray(af, float), kind)
    return out, n_bad


# --- quantile delta mapping (xsdba ``QuantileDeltaMapping``) ---------------------------------

@numba.njit(cache=True, nogil=True)
def _group_by_month(sim: np.ndarray, steps: np.ndarray, rows: np.ndarray) -> None:
    """``sim`` ``[S, T, C]`` -> ``rows`` ``[S, C, 12, N]``: each month's values of each series
    (``steps`` ``[12, N]``: their time steps, -1 for padding, which gets NaN); a tile of
    ``TILE`` cells at a time (one cache line of ``sim`` serves the whole tile)."""
    n_s, _, n_c = sim.shape
    n_m, n_max = steps.shape
    for s in range(n_s):
        for c0 in range(0, n_c, TILE):
            width = min(TILE, n_c - c0)
            for m in range(n_m):
                for j in range(n_max):
                    t = steps[m, j]
                    for k in range(width):
                        rows[s, c0 + k, m, j] = sim[s, t, c0 + k] if t >= 0 else np.nan


@numba.njit(cache=True, nogil=True)
def _rank_block(rows: np.ndarray, srt: np.ndarray, steps: np.ndarray, q: np.ndarray,
                af_t: np.ndarray, lookup: np.ndarray, multiplicative: bool, out: np.ndarray,
                clean: np.ndarray, ties: np.ndarray) -> None:
    """``rows``/``srt`` ``[S, C, 12, N]``: each month's values (NaN-padded) and the same sorted
    (NaN last); ``steps`` ``[12, N]`` their time steps (-1: padding). ``out`` ``[S, T, C]``:
    xsdba's percentile ranks (see :func:`month_pct_ranks`), or, for the cells where ``lookup``
    ``[C]`` is True (every factor finite), the QDM result: the value with the factor of
    ``af_t`` ``[C, 12, Q]`` at the node of ``q`` ``[Q]`` (sorted, in [0, 1]) nearest to its
    rank, as :func:`_adjust_block` finds it when a month has all its nodes (a rank is less
    than 1 from any node of its month, so no other month can be nearer), with the constant
    extrapolation; ``clean[c]`` set False where an exact tie between two nodes decided, and
    ``ties`` ``[S, T, C]`` True at that value."""
    n_s, n_c, n_m, n_max = rows.shape
    n_q = q.size
    n_bits = 1  # binary search steps 2 ** (n_bits - 1), ..., 2, 1 reach any of n_max places
    while (1 << n_bits) <= n_max:
        n_bits += 1
    pct = np.empty((n_m, n_max, TILE))
    below = np.empty(n_max, np.int64)
    for s in range(n_s):
        for c0 in range(0, n_c, TILE):
            width = min(TILE, n_c - c0)
            for k in range(width):
                c = c0 + k
                for m in range(n_m):
                    row, vals = srt[s, c, m], rows[s, c, m]
                    n = n_max
                    while n > 0 and np.isnan(row[n - 1]):
                        n -= 1
                    if n == 0:
                        pct[m, :, k] = np.nan
                        continue
                    # average 1-based rank of the run of ties lo..hi-1: (lo + 1 + hi) / 2
                    hi0 = 1
                    while hi0 < n and row[hi0] == row[0]:
                        hi0 += 1
                    lo1 = n - 1
                    while lo1 > 0 and row[lo1 - 1] == row[n - 1]:
                        lo1 -= 1
                    mn = (1 + hi0) / 2.0 / n  # xarray's pct rank: rank / count
                    mx = (lo1 + 1 + n) / 2.0 / n
                    below[:] = 0  # per value: the number of sorted values below it, by
                    for e in range(n_bits - 1, -1, -1):  # binary searches side by side
                        step = 1 << e
                        for j in range(n_max):
                            i = below[j] + step  # no short-circuit: no branch to mispredict
                            below[j] += step * ((i <= n) & (row[min(i, n) - 1] < vals[j]))
                    for j in range(n_max):
                        v = vals[j]
                        if np.isnan(v) or not mx > mn:  # one distinct value: xsdba's 0 / 0
                            pct[m, j, k] = np.nan
                            continue
                        lo = below[j]
                        hi = lo + 1
                        while hi < n and row[hi] == v:
                            hi += 1
                        r = (lo + 1 + hi) / 2.0 / n
                        p = mx * (r - mn) / (mx - mn)  # xsdba: rescaled to [0, max]
                        if not lookup[c]:
                            pct[m, j, k] = p
                            continue
                        if p < q[0]:  # below the first node: the first factor
                            val = af_t[c, m, 0]
                        elif p > q[n_q - 1]:  # above the last: the last factor
                            val = af_t[c, m, n_q - 1]
                        else:
                            # guess (exact for nodes (i + 0.5) / Q), then the exact count
                            g = min(max(int(p * n_q + 0.5), 0), n_q)
                            while g > 0 and q[g - 1] >= p:
                                g -= 1
                            while g < n_q and q[g] < p:
                                g += 1
                            il = g - 1 if g > 0 else 0
                            ir = g if g < n_q else n_q - 1
                            dl = (p - q[il]) ** 2
                            dr = (p - q[ir]) ** 2
                            val = af_t[c, m, il if dl <= dr else ir]
                            if dl == dr and af_t[c, m, il] != af_t[c, m, ir]:
                                clean[c] = False
                                ties[s, steps[m, j], c] = True
                        pct[m, j, k] = v * val if multiplicative else v + val
            for m in range(n_m):
                for j in range(n_max):
                    t = steps[m, j]
                    if t >= 0:
                        for k in range(width):
                            out[s, t, c0 + k] = pct[m, j, k]


def month_pct_ranks(sim: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Percentile ranks of ``sim`` ``[S, T, C]`` within each calendar month of each series.

    xsdba's ``utils.rank(..., pct=True)`` as QDM's adjustment uses it: average ranks of ties
    (bottleneck's ``nanrankdata``), divided by the number of valid values, then rescaled as
    ``max * (r - min) / (max - min)`` (lowest value 0); NaN where the value is NaN or where the
    month holds a single distinct value (xsdba's 0 / 0). Dimensionless, ``[S, T, C]``. Each
    month's values are gathered into rows ``[S, C, 12, N]``, sorted by NumPy (its vectorised
    sort), then ranked by binary search.
    """
    flat = np.ascontiguousarray(sim, dtype=float)
    months = np.asarray(months, np.int64)
    out = np.full(flat.shape, np.nan)
    n_c = flat.shape[-1]
    _rank_block(*_sorted_months(flat, months), np.zeros(0), np.zeros((n_c, 12, 0)),
                np.zeros(n_c, np.bool_), False, out, np.ones(n_c, np.bool_),
                np.zeros((1, 1, 1), np.bool_))
    return out


def _sorted_months(flat: np.ndarray, months: np.ndarray) -> tuple:
    """``flat`` ``[S, T, C]`` -> ``(rows, sorted rows, steps)`` for :func:`_rank_block`."""
    counts = np.bincount(months - 1, minlength=12)[:12]
    steps = np.full((12, max(1, int(counts.max()))), -1, np.int64)  # time steps per month
    by_month = np.argsort(months, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for m in range(12):
        steps[m, :counts[m]] = by_month[starts[m]:starts[m] + counts[m]]
    rows = np.empty((flat.shape[0], flat.shape[2]) + steps.shape)
    _group_by_month(flat, steps, rows)
    return rows, np.sort(rows, axis=-1), steps


def adjust_qdm(sim: np.ndarray, months: np.ndarray, af: np.ndarray, quantiles: np.ndarray,
               kind: str = ADDITIVE) -> tuple[np.ndarray, np.ndarray]:
    """Quantile delta mapping of ``sim`` ``[..., T, C]``: ``(scen, clean [C])``.

    Each value's factor is the trained factor ``af`` ``[12, Q, C]`` (from :func:`train_eqm`:
    QDM trains as EQM does) at the node of ``quantiles`` ``[Q]`` nearest to the value's
    percentile rank within its calendar month of ``sim`` (:func:`month_pct_ranks`), by the same
    nearest-node search and constant extrapolation as :func:`adjust_eqm` (cells with a NaN
    factor: that general search, as xsdba skips NaN nodes). ``clean``: as :func:`adjust_eqm`.
    """
    out, clean, _ = _adjust_qdm_ties(sim, months, af, quantiles, kind)
    return out, clean


def _adjust_qdm_ties(sim: np.ndarray, months: np.ndarray, af: np.ndarray,
                     quantiles: np.ndarray, kind: str = ADDITIVE,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`adjust_qdm` plus the tied values: ``(out, clean [C], ties [..., T, C])``."""
    sim = np.asarray(sim, dtype=float)
    flat = np.ascontiguousarray(sim.reshape((-1,) + sim.shape[-2:]))
    months = np.asarray(months, np.int64)
    q = np.asarray(quantiles, float)
    af = np.asarray(af, dtype=float)
    full = np.isfinite(af).all(axis=(0, 1))
    simple = bool(q.size and q[0] >= 0 and q[-1] <= 1 and np.all(np.diff(q) > 0))
    lookup = full & simple
    out = np.full(flat.shape, np.nan)
    clean = np.ones(flat.shape[-1], dtype=np.bool_)
    ties = np.zeros(flat.shape, dtype=np.bool_)
    _rank_block(*_sorted_months(flat, months), q, np.ascontiguousarray(np.moveaxis(af, -1, 0)),
                lookup, kind == MULTIPLICATIVE, out, clean, ties)
    rest = np.flatnonzero(~lookup)  # out holds their ranks: the general nearest-node search
    if rest.size:
        ranks = np.ascontiguousarray(out[..., rest])
        part = np.empty_like(ranks)
        part_clean = np.ones(rest.size, dtype=np.bool_)
        part_ties = np.zeros(ranks.shape, dtype=np.bool_)
        xq = np.ascontiguousarray(np.broadcast_to(q[None, :, None], (12, q.size, rest.size)))
        _adjust_block(ranks, months, xq, np.ascontiguousarray(af[..., rest]),
                      kind == MULTIPLICATIVE, part, part_clean,
                      np.ascontiguousarray(flat[..., rest]), simple, part_ties)
        out[..., rest] = part
        clean[rest] = part_clean
        ties[..., rest] = part_ties
    return out.reshape(sim.shape), clean, ties.reshape(sim.shape)


def adjust_qdm_exact(sim: np.ndarray, time: np.ndarray, af: np.ndarray, quantiles: np.ndarray,
                     kind: str = ADDITIVE) -> tuple[np.ndarray, int]:
    """:func:`adjust_qdm`, with the values it flags (exact ties) settled by xsdba's own search
    on their ranks (:func:`_tree_factors`).

    ``sim`` ``[..., T, C]``, ``time`` ``[T]``; returns the corrected array and the number of
    cells that had tied values.
    """
    sim = np.asarray(sim, dtype=float)
    months = months_of(time)
    out, clean, ties = _adjust_qdm_ties(sim, months, af, quantiles, kind)
    bad = np.flatnonzero(~clean)
    if bad.size:
        shape = (-1,) + sim.shape[-2:]
        flat = sim.reshape(shape)[..., bad]
        q = np.asarray(quantiles, float)
        xq = np.ascontiguousarray(np.broadcast_to(q[None, :, None], (12, q.size, bad.size)))
        part = out.reshape(shape)[..., bad]
        _settle_ties(part, flat, month_pct_ranks(flat, months), ties.reshape(shape)[..., bad],
                     months, xq, np.asarray(af, float)[..., bad], kind)
        out.reshape(shape)[..., bad] = part
    return out, int(bad.size)


# --- detrended quantile mapping (xsdba ``DetrendedQuantileMapping``, ``detrend=1``) -----------

def _apply(x: np.ndarray, factor: np.ndarray, kind: str) -> np.ndarray:
    """xsdba's ``apply_correction``: ``x + factor`` or ``x * factor``."""
    return x * factor if kind == MULTIPLICATIVE else x + factor


def _month_means(x: np.ndarray, months: np.ndarray) -> np.ndarray:
    """NaN-skipping mean of ``x`` ``[T, C]`` per calendar month: ``[12, C]``."""
    out = np.full((12, x.shape[-1]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for m in range(12):
            sel = x[months == m + 1]
            n = np.sum(~np.isnan(sel), axis=0)
            out[m] = np.where(n > 0, np.nansum(sel, axis=0) / np.maximum(n, 1), np.nan)
    return out


def train_dqm(ref: np.ndarray, hist: np.ndarray, months: np.ndarray, nquantiles: int,
              kind: str = ADDITIVE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xsdba's DQM training: ``(af [12, Q, C], hist_q [12, Q, C], scaling [12, C])``.

    Per calendar month, ``ref`` and ``hist`` ``[T, C]`` lose their mean (subtracted, or divided
    for ``*``), the quantile tables are those of :func:`train_eqm` on these anomalies, and
    ``scaling`` is the mean bias (``mean(ref) - mean(hist)``, or the ratio).
    """
    ref, hist = np.asarray(ref, float), np.asarray(hist, float)
    mu_ref, mu_hist = _month_means(ref, months), _month_means(hist, months)
    idx = np.asarray(months, np.int64) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (lambda mu: 1 / mu) if kind == MULTIPLICATIVE else (lambda mu: -mu)
        af, hist_q = train_eqm(_apply(ref, inv(mu_ref)[idx], kind),
                               _apply(hist, inv(mu_hist)[idx], kind), months, nquantiles, kind)
        scaling = mu_ref / mu_hist if kind == MULTIPLICATIVE else mu_ref - mu_hist
    return af, hist_q, scaling


def month_linear_trend(x: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line through each calendar month of each series of ``x`` ``[S, T, C]``
    against time (xsdba's ``PolyDetrend(degree=1)``: ``polyfit``/``polyval`` over the month's
    values, NaN skipped, time in ns in the series' calendar), evaluated at every step: ``(trend [S, T, C],
    fitted [S, 12, C])``; ``fitted`` False where a month has fewer than two valid values (no
    unique line: xsdba's least-squares answer differs, so the caller hands those to xsdba)."""
    time = np.asarray(time)
    if np.issubdtype(time.dtype, np.datetime64):
        t_ns = (time.astype("datetime64[ns]") - np.datetime64("1970-01-01", "ns")).astype(
            "int64").astype(float)
    else:  # cftime: differences in the series' own calendar (e.g. noleap), as xarray takes them
        t_ns = np.array([(t - time[0]).total_seconds() for t in time]) * 1e9
    months = months_of(time)
    counts = np.bincount(months - 1, minlength=12)[:12]
    steps = np.full((12, max(1, int(counts.max()))), -1, np.int64)  # time steps per month
    by_month = np.argsort(months, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for m in range(12):
        steps[m, :counts[m]] = by_month[starts[m]:starts[m] + counts[m]]
    x = np.ascontiguousarray(x, dtype=float)
    trend = np.full(x.shape, np.nan)
    n_valid = np.zeros((x.shape[0], 12, x.shape[-1]), np.int64)
    _month_trend(x, t_ns, steps, counts, trend, n_valid)
    return trend, (n_valid >= 2) | (n_valid == 0)


@numba.njit(cache=True, nogil=True)
def _month_trend(x: np.ndarray, t_ns: np.ndarray, steps: np.ndarray, counts: np.ndarray,
                 trend: np.ndarray, n_valid: np.ndarray) -> None:
    """``x``/``trend`` ``[S, T, C]``: per series and calendar month (time steps ``steps``
    ``[12, N]``, ``counts`` ``[12]``), the least-squares line through the valid values against
    ``t_ns`` ``[T]``, centred on their mean time, at every step of the month (NaN where fewer
    than two values); ``n_valid`` ``[S, 12, C]`` the number of valid values."""
    n_s, _, n_c = x.shape
    t0 = np.empty(n_c)
    y0 = np.empty(n_c)
    cnt = np.empty(n_c)
    sxy = np.empty(n_c)
    sxx = np.empty(n_c)
    for s in range(n_s):
        for m in range(12):
            t0[:], y0[:], cnt[:], sxy[:], sxx[:] = 0.0, 0.0, 0.0, 0.0, 0.0
            for j in range(counts[m]):
                t = steps[m, j]
                for c in range(n_c):
                    v = x[s, t, c]
                    if not np.isnan(v):
                        t0[c] += t_ns[t]
                        y0[c] += v
                        cnt[c] += 1.0
            for c in range(n_c):
                if cnt[c] > 0:
                    t0[c] /= cnt[c]
                    y0[c] /= cnt[c]
                n_valid[s, m, c] = int(cnt[c])
            for j in range(counts[m]):
                t = steps[m, j]
                for c in range(n_c):
                    v = x[s, t, c]
                    if not np.isnan(v):
                        dt = t_ns[t] - t0[c]
                        sxy[c] += dt * (v - y0[c])
                        sxx[c] += dt * dt
            for j in range(counts[m]):
                t = steps[m, j]
                for c in range(n_c):
                    if sxx[c] > 0:
                        trend[s, t, c] = y0[c] + sxy[c] / sxx[c] * (t_ns[t] - t0[c])


def adjust_dqm_exact(sim: np.ndarray, time: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
                     scaling: np.ndarray, kind: str = ADDITIVE) -> tuple[np.ndarray, int]:
    """xsdba's DQM adjustment (``detrend=1``, nearest, constant) of ``sim`` ``[..., T, C]``
    (``time`` ``[T]`` datetime64 or cftime): the model's mean bias removed (``scaling`` ``[12, C]``),
    each month's linear trend removed, the anomalies mapped by :func:`adjust_eqm_exact`, the
    trend put back. Returns the result and the number of cells computed by xsdba (ties, or a
    month with a single valid value)."""
    sim = np.asarray(sim, dtype=float)
    flat = sim.reshape((-1,) + sim.shape[-2:])
    months = months_of(time)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = _apply(flat, np.asarray(scaling, float)[months - 1], kind)
        trend, fitted = month_linear_trend(scaled, time)
        inv = 1 / trend if kind == MULTIPLICATIVE else -trend
        anomalies = _apply(scaled, inv, kind)
        out, clean = adjust_eqm(anomalies, months, af, hist_q, kind)
        out = _apply(out, trend, kind)
    clean &= fitted.all(axis=(0, 1))
    bad = np.flatnonzero(~clean)
    if bad.size:
        out[..., bad] = _xsdba_dqm(flat[..., bad], np.asarray(time), af[..., bad],
                                   hist_q[..., bad], np.asarray(scaling)[..., bad], kind)
    return out.reshape(sim.shape), int(bad.size)


def _xsdba_dqm(sim: np.ndarray, time: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
               scaling: np.ndarray, kind: str) -> np.ndarray:
    """xsdba's own DQM adjustment for ``sim`` ``[S, T, C]`` with the given tables."""
    import warnings

    import xarray as xr
    from xsdba import DetrendedQuantileMapping
    from xsdba.base import Grouper

    q = nodes(af.shape[1])
    table = {"dims": ("month", "quantiles", "cell"),
             "coords": {"month": np.arange(1, 13), "quantiles": q}}
    group = Grouper("time.month")
    ds = xr.Dataset({"af": xr.DataArray(af, **table), "hist_q": xr.DataArray(hist_q, **table),
                     "scaling": xr.DataArray(scaling, dims=("month", "cell"),
                                             coords={"month": np.arange(1, 13)})})
    ds.attrs = {"group": group.name, "group_compute_dims": [group.dim],
                "group_window": group.window}
    calendar = xr.DataArray(time, dims="time").dt.calendar
    adj = DetrendedQuantileMapping(_trained=True, hist_calendar=calendar, train_units="1",
                                   group=group, kind=kind, adapt_freq_thresh=None,
                                   max_tail_factor=None)
    adj.set_dataset(ds)
    da = xr.DataArray(sim, dims=("s", "time", "cell"), coords={"time": time},
                      attrs={"units": "1"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = adj.adjust(da, interp="nearest", extrapolation="constant")
    return out.transpose("s", "time", "cell").values
