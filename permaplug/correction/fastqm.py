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
  above the last: its last factor). :func:`_map_block` runs it on 64 cells side by side: per
  time step, the count of each cell's nodes below its value (SIMD) gives the two neighbouring
  nodes; the few values it does not settle (nearest node 1 or more away, exact ties, unsorted
  or tied nodes) take the full search (:func:`_factor`).

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
``time.month``, ``interp`` other than ``nearest``, ``extrapolation`` other than ``constant``.
``dqm`` is xsdba's default linear detrending (``detrend=1``, :func:`adjust_dqm_exact`).

Shapes: series ``[..., T, C]`` as float64 (``C`` cells last), ``months`` ``[T]`` in 1..12;
quantile tables ``[12, Q, C]``.
"""
from __future__ import annotations

import itertools

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
def _quantiles_block(x: np.ndarray, steps: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
    """``x`` ``[T, C]`` -> ``out`` ``[12, Q, C]`` (see :func:`quantiles_by_month`); ``steps``
    ``[12, N]`` each month's time steps (:func:`month_steps`). Per tile of ``QLANES`` cells and
    month, the valid values are gathered row by row (contiguous along the cells), then each
    cell's are sorted in place."""
    n_c = x.shape[1]
    n_max = steps.shape[1]
    vals = np.empty((QLANES, n_max))
    cnt = np.zeros(QLANES, np.int64)
    qv = np.empty((q.size, QLANES))
    for c0 in range(0, n_c, QLANES):
        width = min(QLANES, n_c - c0)
        for m in range(12):
            cnt[:] = 0
            for i in range(n_max):
                t = steps[m, i]
                if t < 0:
                    break
                for k in range(width):
                    v = x[t, c0 + k]
                    if not np.isnan(v):
                        vals[k, cnt[k]] = v
                        cnt[k] += 1
            for k in range(width):
                n = cnt[k]
                if n == 0:
                    for j in range(q.size):
                        qv[j, k] = np.nan
                    continue
                srt = vals[k, :n]
                if n <= 32:  # insertion sort: fewer steps than a quicksort on a month or two
                    for i in range(1, n):
                        v = srt[i]
                        h = i
                        while h > 0 and srt[h - 1] > v:
                            srt[h] = srt[h - 1]
                            h -= 1
                        srt[h] = v
                else:
                    srt.sort()
                for j in range(q.size):
                    vi = (n - 1) * q[j]  # xsdba: n q + (1 - q) - 1, Hyndman & Fan type 7
                    if vi >= n - 1:
                        qv[j, k] = srt[n - 1]
                        continue
                    prev = int(np.floor(vi))  # vi >= 0: q > 0
                    gamma = vi - prev
                    left, right = srt[prev], srt[prev + 1]
                    diff = right - left
                    qv[j, k] = right - diff * (1 - gamma) if gamma >= 0.5 else left + diff * gamma
            for j in range(q.size):  # written along the cells
                for k in range(width):
                    out[m, j, c0 + k] = qv[j, k]


QLANES = 64
"""Cells whose calibration values are gathered side by side by :func:`_quantiles_block`."""


def quantiles_by_month(x: np.ndarray, months: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Type-7 quantiles ``q`` of ``x`` ``[T, C]`` per calendar month, NaN skipped: ``[12, Q, C]``.

    Same estimator and interpolation formula as xsdba's ``nbutils._nan_quantile_1d``; an
    all-NaN month of a cell gives NaN.
    """
    out = np.empty((12, q.size, x.shape[1]))
    _quantiles_block(np.ascontiguousarray(x, dtype=float), month_steps(months),
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


@numba.njit(cache=True, nogil=True)
def _nearest_in_row(xs: np.ndarray, c: int, g: int, n: int, v: float) -> int:
    """Index of the first of the ``n`` sorted nodes ``xs[c, g, :n]`` nearest to ``v``."""
    lo = 0  # first index with xs >= v: a branch-free count
    for j in range(n):
        lo += 1 if xs[c, g, j] < v else 0
    if lo == n:
        return n - 1
    if lo > 0 and v - xs[c, g, lo - 1] <= xs[c, g, lo] - v:
        return lo - 1
    return lo


@numba.njit(cache=True, nogil=True)
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
def _tile_tables(xq: np.ndarray, yq: np.ndarray, c0: int, width: int, xs: np.ndarray,
                 ys: np.ndarray, counts: np.ndarray, bounds: np.ndarray,
                 general: np.ndarray) -> None:
    """For cells ``c0 .. c0 + width`` of ``xq``, ``yq`` ``[12, Q, C]``, fill (index ``k`` =
    ``c - c0``): ``xs``/``ys`` ``[W, 14, Q]`` xsdba's cyclic map (rows: December,
    January..December, January) without NaN nodes, ``counts`` ``[W, 14]`` the nodes per row,
    ``bounds`` ``[W, 12, 4]`` each month's extrapolation bounds (first x, last x, first y, last
    y, NaN skipped), ``general`` ``[W, 14]`` True where the row holds equal nodes with different
    factors, or nodes out of order (its nearest node is found by :func:`_scan_row`)."""
    n_q = xq.shape[1]
    for k in range(counts.shape[0]):
        for g in range(14):
            counts[k, g] = 0
            general[k, g] = False
        for m in range(12):
            for i in range(4):
                bounds[k, m, i] = np.nan
    for m in range(12):
        g = m + 1
        for j in range(n_q):
            for k in range(width):
                x, y = xq[m, j, c0 + k], yq[m, j, c0 + k]
                if not np.isnan(x):
                    if np.isnan(bounds[k, m, 0]):
                        bounds[k, m, 0] = x
                    bounds[k, m, 1] = x
                if not np.isnan(y):
                    if np.isnan(bounds[k, m, 2]):
                        bounds[k, m, 2] = y
                    bounds[k, m, 3] = y
                if not (np.isnan(x) or np.isnan(y)):
                    n = counts[k, g]
                    xs[k, g, n] = x
                    ys[k, g, n] = y
                    counts[k, g] = n + 1
    for k in range(width):
        for g in (0, 13):  # the cyclic rows: December before January, January after December
            src = 12 if g == 0 else 1
            counts[k, g] = counts[k, src]
            for j in range(counts[k, src]):
                xs[k, g, j] = xs[k, src, j]
                ys[k, g, j] = ys[k, src, j]
        for g in range(14):
            for j in range(1, counts[k, g]):
                if xs[k, g, j] < xs[k, g, j - 1] or (xs[k, g, j] == xs[k, g, j - 1]
                                                     and ys[k, g, j] != ys[k, g, j - 1]):
                    general[k, g] = True


@numba.njit(cache=True, nogil=True)
def _factor(xs: np.ndarray, ys: np.ndarray, counts: np.ndarray, bounds: np.ndarray,
            general: np.ndarray, c: int, m: int, v: float, mx: np.ndarray, my: np.ndarray,
            mg: np.ndarray, n_merged: np.ndarray) -> tuple[float, bool]:
    """xsdba's factor for the value ``v`` (not NaN) of month ``m`` (0..11) in cell ``c`` (tables
    of :func:`_tile_tables`), and whether an exact tie between nodes with different factors
    decided it (see the module): the search in full, for the values the vectorised search of
    :func:`_map_block` does not settle. ``mx``/``my``/``mg`` ``[W, 14 Q]``: each cell's nodes
    in one value-sorted list (:func:`_merge_rows`), built on first need (``n_merged`` ``[W]``:
    their number, -1 before)."""
    if v < bounds[c, m, 0]:  # below the month's first quantile: its first factor
        return bounds[c, m, 2], False
    if v > bounds[c, m, 1]:  # above the last: the last factor
        return bounds[c, m, 3], False
    g0 = m + 1
    n = counts[c, g0]
    if n > 0 and not general[c, g0]:  # own month, sorted distinct nodes: its 2 neighbours
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
    if best >= 1.0:  # another month may be nearer (one month's step counts 1 in the plane)
        if n_merged[c] < 0:
            n_merged[c] = _merge_rows(xs, ys, counts, c, mx[c], my[c], mg[c])
        best, val, tie = _scan_merged(mx[c], my[c], mg[c], n_merged[c], v, g0, best, val, tie)
    return val, tie


@numba.njit(cache=True, nogil=True)
def _merge_rows(xs: np.ndarray, ys: np.ndarray, counts: np.ndarray, c: int, mx: np.ndarray,
                my: np.ndarray, mg: np.ndarray) -> int:
    """All nodes of cell ``c``'s 14 rows in one list sorted by value: ``mx`` (values), ``my``
    (factors), ``mg`` (row 0..13), each ``[>= 14 Q]``; returns how many."""
    n_q = xs.shape[2]
    rx, ry = np.empty(n_q), np.empty(n_q)  # one row, sorted by a stable insertion (rows are
    tx, ty, tg = np.empty(14 * n_q), np.empty(14 * n_q), np.empty(14 * n_q, np.int64)  # sorted
    n = 0  # nodes merged so far (rows 0..g-1), in mx/my/mg         # unless general)
    for g in range(14):
        k = counts[c, g]
        for j in range(k):
            x, y = xs[c, g, j], ys[c, g, j]
            h = j
            while h > 0 and rx[h - 1] > x:
                rx[h], ry[h] = rx[h - 1], ry[h - 1]
                h -= 1
            rx[h], ry[h] = x, y
        i = j = o = 0  # stable merge: earlier rows first among equal values
        while i < n or j < k:
            if j >= k or (i < n and mx[i] <= rx[j]):
                tx[o], ty[o], tg[o] = mx[i], my[i], mg[i]
                i += 1
            else:
                tx[o], ty[o], tg[o] = rx[j], ry[j], g
                j += 1
            o += 1
        for i in range(o):
            mx[i], my[i], mg[i] = tx[i], ty[i], tg[i]
        n = o
    return n


@numba.njit(cache=True, nogil=True)
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

LANES = 64
"""Cells mapped side by side by :func:`_map_block` (contiguous along the cell axis): the
count of nodes below each value runs over the 64 cells at once (SIMD), on a copy of their
month's nodes (``Q x 64`` float64, in the L1/L2 cache)."""


def month_steps(months: np.ndarray) -> np.ndarray:
    """Time steps of each calendar month: ``[12, N]`` int64, in time order, padded with -1."""
    months = np.asarray(months, np.int64)
    counts = np.bincount(months - 1, minlength=12)[:12]
    steps = np.full((12, max(1, int(counts.max()))), -1, np.int64)
    by_month = np.argsort(months, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for m in range(12):
        steps[m, :counts[m]] = by_month[starts[m]:starts[m] + counts[m]]
    return steps


@numba.njit(cache=True, nogil=True)
def _count_below(xt: np.ndarray, vb: np.ndarray, cnt: np.ndarray, n_q: int) -> None:
    """``cnt[k]`` = the number of nodes ``xt[j * LANES + k]`` (``j < n_q``) below ``vb[k]``
    (float32 and int32 in :func:`_map_block`: 16 cells per AVX-512 instruction)."""
    for k in range(LANES):
        cnt[k] = 0
    for j in range(n_q):
        for k in range(LANES):
            cnt[k] += xt[j * LANES + k] < vb[k]


@numba.njit(cache=True, nogil=True, error_model="numpy")  # no fastmath: distances rounded as
def _map_block(sim: np.ndarray, base: np.ndarray, steps: np.ndarray, xq: np.ndarray,  # scipy's
               yq: np.ndarray, multiplicative: bool, detrend: bool, t_ns: np.ndarray,  # k-d tree
               scaling: np.ndarray, t0: np.ndarray, y0: np.ndarray, slope: np.ndarray,
               out: np.ndarray, clean: np.ndarray, ties: np.ndarray) -> None:
    """``sim``/``base``/``out`` ``[S, T, C]``, ``steps`` ``[12, N]`` (:func:`month_steps`),
    ``xq``/``yq`` ``[12, Q, C]``: the factor found for ``sim`` (the search coordinate: model
    values, or ranks for QDM) is applied to ``base`` (the model values). ``clean`` ``[C]`` set
    False where an exactly tied nearest node with a different factor decided a value, and
    ``ties`` ``[S, T, C]`` True at that value.

    ``detrend`` (DQM; ``base`` unused): each value of ``sim`` is first scaled by ``scaling``
    ``[12, C]`` and loses its month's line (``t0``, ``y0``, ``slope`` ``[S, 12, C]`` from
    :func:`_month_trend`, at ``t_ns`` ``[T]``); the anomaly is mapped and the line put back:
    the same operations, in the same order, as xsdba's (``x + s - line + factor + line``, or
    ``x * s * (1 / line) * factor * line``).

    Per tile of :data:`LANES` cells and calendar month, the month's nodes are copied side by
    side (``+inf`` past a cell's last node); per time step, the number of nodes below each
    cell's value is counted for all cells at once, which gives the two neighbouring nodes; a
    value whose nearest node is 1 or more away (another month may be nearer), that lands on
    an exact tie, or whose month's nodes are not sorted and distinct, is settled by
    :func:`_factor`'s full search."""
    n_s, _, n_c = sim.shape
    n_q = xq.shape[1]
    xs = np.empty((LANES, 14, n_q))
    ys = np.empty((LANES, 14, n_q))
    counts = np.zeros((LANES, 14), np.int64)
    bounds = np.empty((LANES, 12, 4))
    general = np.zeros((LANES, 14), np.bool_)
    mx = np.empty((LANES, 14 * n_q))  # each cell's nodes sorted by value (see _scan_merged)
    my = np.empty((LANES, 14 * n_q))
    mg = np.empty((LANES, 14 * n_q), np.int64)
    n_merged = np.empty(LANES, np.int64)
    xt = np.empty(n_q * LANES)  # the month's nodes and factors, cells side by side
    yt = np.empty(n_q * LANES)
    xt32 = np.empty(n_q * LANES, np.float32)  # the nodes rounded to float32 (the count)
    vb32 = np.zeros(LANES, np.float32)
    bt = np.empty((4, LANES))  # the month's bounds, cells side by side
    vb = np.zeros(LANES)  # the values searched (lanes past the last cell: 0)
    fb = np.empty(LANES)  # their factors
    slow = np.zeros(LANES, np.bool_)
    line = np.empty(LANES)
    cnt = np.empty(LANES, np.int32)
    last = np.zeros(LANES, np.int64)  # index of the month's last node
    fast = np.zeros(LANES, np.bool_)  # sorted distinct nodes: the vectorised search holds
    empty = np.zeros(LANES, np.bool_)  # no node in any month: NaN out
    for c0 in range(0, n_c, LANES):
        width = min(LANES, n_c - c0)
        _tile_tables(xq, yq, c0, width, xs, ys, counts, bounds, general)
        for k in range(LANES):
            n_merged[k] = -1
        for m in range(12):
            g = m + 1
            for k in range(LANES):
                n = counts[k, g] if k < width else 0
                empty[k] = k >= width or counts[k, 1:13].sum() == 0
                fast[k] = n > 0 and not general[k, g] and not empty[k]
                last[k] = max(n - 1, 0)
                for j in range(n_q):
                    xt[j * LANES + k] = xs[k, g, j] if j < n else np.inf
                    yt[j * LANES + k] = ys[k, g, j] if j < n else np.nan
                    xt32[j * LANES + k] = np.float32(xt[j * LANES + k])
                for i in range(4):
                    bt[i, k] = bounds[k, m, i] if k < width else np.nan
            for s in range(n_s):
                for jj in range(steps.shape[1]):
                    t = steps[m, jj]
                    if t < 0:
                        break
                    if detrend:
                        for k in range(width):
                            c = c0 + k
                            ln = y0[s, m, c] + slope[s, m, c] * (t_ns[t] - t0[s, m, c])
                            x, sc = sim[s, t, c], scaling[m, c]
                            vb[k] = (x * sc) * (1.0 / ln) if multiplicative else (x + sc) + (-ln)
                            line[k] = ln
                    else:
                        for k in range(width):
                            vb[k] = sim[s, t, c0 + k]
                    for k in range(LANES):
                        vb32[k] = np.float32(vb[k])
                    # rounding to float32 keeps the order, so the count in float32 is at most
                    # the exact one, and exact unless a node rounds to the value's float32:
                    # checked below on the float64 nodes (placed)
                    _count_below(xt32, vb32, cnt, n_q)
                    for k in range(LANES):  # the two neighbouring nodes, without branches
                        v = vb[k]
                        lo = cnt[k]
                        il = max(lo - 1, 0) * LANES + k
                        ir = min(lo, last[k]) * LANES + k
                        xl, xr, yl, yr = xt[il], xt[ir], yt[il], yt[ir]
                        dl = (v - xl) ** 2
                        dr = (v - xr) ** 2
                        left = dl <= dr
                        val = yl if left else yr
                        best = dl if left else dr
                        below = v < bt[0, k]  # below the first quantile: the first factor
                        above = v > bt[1, k]  # above the last: the last factor
                        val = bt[2, k] if below else val
                        val = bt[3, k] if above else val
                        placed = (lo > last[k]) | (xr >= v)  # no node left between xl and v
                        # another month may be nearer, an exact tie, or a count to redo
                        hard = (best >= 1.0) | ((dl == dr) & (yl != yr)) | (not placed)
                        bad = np.isnan(v) | empty[k]
                        slow[k] = ((not fast[k]) | ((not (below | above)) & hard)) & (not bad)
                        fb[k] = np.nan if bad else val
                    n_slow = 0
                    for k in range(LANES):
                        n_slow += slow[k]
                    if n_slow:
                        for k in range(width):
                            if slow[k]:  # the full search
                                fb[k], tie = _factor(xs, ys, counts, bounds, general, k, m,
                                                     vb[k], mx, my, mg, n_merged)
                                if tie:
                                    clean[c0 + k] = False
                                    ties[s, t, c0 + k] = True
                    if detrend:
                        for k in range(width):
                            out[s, t, c0 + k] = (vb[k] * fb[k] * line[k] if multiplicative
                                                 else vb[k] + fb[k] + line[k])
                    else:
                        for k in range(width):
                            b = base[s, t, c0 + k]
                            out[s, t, c0 + k] = b * fb[k] if multiplicative else b + fb[k]


_NONE3, _NONE2, _NONE1 = np.empty((0, 0, 0)), np.empty((0, 0)), np.empty(0)


def _adjust_block(sim: np.ndarray, steps: np.ndarray, xq: np.ndarray, yq: np.ndarray,
                  multiplicative: bool, out: np.ndarray, clean: np.ndarray,
                  base: np.ndarray, ties: np.ndarray) -> None:
    """:func:`_map_block` without detrending (EQM, and QDM's general search)."""
    _map_block(sim, base, steps, xq, yq, multiplicative, False, _NONE1, _NONE2, _NONE3,
               _NONE3, _NONE3, out, clean, ties)


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
    _adjust_block(flat, month_steps(months), np.ascontiguousarray(hist_q, dtype=float),
                  np.ascontiguousarray(af, dtype=float), kind == MULTIPLICATIVE, out, clean, flat,
                  ties)
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

RANK_CELLS = 64
"""Cells ranked together (:func:`_rank_cells`) for months of up to ~100 values: their keys,
values and results (each ``12 x 100 x 64`` x 8 bytes, 600 KB) stay in a core's L2 cache; longer
months (daily series) take proportionally fewer, at least 8."""

RANK_TABLES = 16
"""Month lengths whose tie-free nodes are tabled per call (:func:`_rank_table`)."""

_SIGN = np.uint64(1 << 63)
_ZERO = np.uint64(0)


@numba.njit(cache=True, nogil=True)
def _month_keys(sim: np.ndarray, bits: np.ndarray, s: int, c0: int, steps: np.ndarray,
                mask: np.uint64, vals: np.ndarray, keys: np.ndarray, counts: np.ndarray) -> None:
    """Cells ``c0 .. c0 + W`` of series ``s`` of ``sim`` ``[S, T, C]`` (``bits``: the same array
    viewed as uint64), month by month (``steps`` ``[12, N]``: each month's time steps, -1
    padding) -> ``vals`` ``[12, N, W]`` the values (padding: NaN), ``keys`` ``[W, 12, N]`` one
    sort key per value: its bits made order-preserving as an unsigned integer, with the lowest
    bits (``mask``) replaced by the value's place ``j`` in its month (NaN and padding: every
    other bit set, so they sort last), ``counts`` ``[W, 12]`` the valid values per month.
    Sorted keys give the values in order, up to values that differ only in the replaced bits
    (:func:`_rank_months` checks the order)."""
    width = keys.shape[0]
    n_m, n_max = steps.shape
    last = ~mask
    for k in range(width):
        for m in range(n_m):
            counts[k, m] = 0
    for m in range(n_m):
        for j in range(n_max):
            t = steps[m, j]
            jj = np.uint64(j)
            if t < 0:
                for k in range(width):
                    vals[m, j, k] = np.nan
                    keys[k, m, j] = last | jj
                continue
            for k in range(width):
                v = sim[s, t, c0 + k]
                b = bits[s, t, c0 + k]
                key = b ^ (_SIGN | (_ZERO - (b >> np.uint64(63))))  # negative: all bits flipped
                nan = np.isnan(v)
                keys[k, m, j] = (last | jj) if nan else ((key & last) | jj)
                vals[m, j, k] = v
                counts[k, m] += 0 if nan else 1


@numba.njit(cache=True, nogil=True, inline="always")
def _pct(lo: int, hi: int, n: int, mn: float, mx: float) -> float:
    """xsdba's percentile rank of the run of equal values at sorted places ``lo .. hi - 1`` among
    ``n``: their average 1-based rank ``(lo + 1 + hi) / 2`` over ``n`` (xarray's pct rank),
    rescaled to ``[0, mx]`` as ``mx * (r - mn) / (mx - mn)`` (``mn``/``mx``: the lowest and
    highest value's)."""
    r = (lo + 1 + hi) / 2.0 / n
    return mx * (r - mn) / (mx - mn)


@numba.njit(cache=True, nogil=True)
def _nearest_node(p: float, q: np.ndarray) -> tuple[int, int, int, bool]:
    """The node of ``q`` ``[Q]`` (sorted, in [0, 1]) nearest to ``p``, as :func:`_adjust_block`
    finds it with all of a month's nodes: ``(left, right, chosen, equal)``, ``equal`` when
    ``p`` is exactly halfway between ``left`` and ``right`` (the first one is chosen); below
    the first node the first, above the last the last (constant extrapolation)."""
    n_q = q.size
    if p < q[0]:
        return 0, 0, 0, False
    if p > q[n_q - 1]:
        return n_q - 1, n_q - 1, n_q - 1, False
    g = min(max(int(p * n_q + 0.5), 0), n_q)  # a guess, exact for nodes (i + 0.5) / Q, then
    while g > 0 and q[g - 1] >= p:  # the exact count of the nodes below p
        g -= 1
    while g < n_q and q[g] < p:
        g += 1
    il = g - 1 if g > 0 else 0
    ir = g if g < n_q else n_q - 1
    dl = (p - q[il]) ** 2
    dr = (p - q[ir]) ** 2
    return il, ir, il if dl <= dr else ir, dl == dr


@numba.njit(cache=True, nogil=True)
def _rank_table(n: int, q: np.ndarray, slot: np.ndarray, used: np.ndarray, tab_i: np.ndarray,
                tab_n: np.ndarray) -> int:
    """The row of the tables for months of ``n`` distinct valid values (built on first need;
    -1 when all ``R`` rows are taken): the value of rank ``i`` (0-based, in value order) has
    the percentile :func:`_pct` and the nearest node ``tab_i[row, 0, i]`` of ``q`` ``[Q]``,
    between ``tab_i[row, 1, i]`` and ``tab_i[row, 2, i]`` (:func:`_nearest_node`);
    ``tab_i[row, 3, :tab_n[row]]`` are the ranks exactly halfway between two nodes. ``slot``
    ``[N + 1]``: the row of each length (-1: none), ``used`` ``[1]`` the rows taken; ``tab_i``
    ``[R, 4, N]``, ``tab_n`` ``[R]``."""
    if slot[n] >= 0 or used[0] == tab_i.shape[0]:
        return slot[n]
    row = used[0]
    used[0] = row + 1
    slot[n] = row
    mn = (1 + 1) / 2.0 / n  # the lowest value alone: rank 1, the highest alone: rank n
    mx = ((n - 1) + 1 + n) / 2.0 / n
    tab_n[row] = 0
    for i in range(n):
        il, ir, sel, eq = _nearest_node(_pct(i, i + 1, n, mn, mx), q)
        tab_i[row, 0, i], tab_i[row, 1, i], tab_i[row, 2, i] = sel, il, ir
        if eq:
            tab_i[row, 3, tab_n[row]] = i
            tab_n[row] += 1
    return row


@numba.njit(cache=True, nogil=True)
def _rank_months(vals: np.ndarray, keys: np.ndarray, counts: np.ndarray, steps: np.ndarray,
                 mon: np.ndarray, pos: np.ndarray, mask: np.uint64, q: np.ndarray,
                 af: np.ndarray, lookup: np.ndarray, multiplicative: bool, s: int, c0: int,
                 out: np.ndarray, clean: np.ndarray, ties: np.ndarray, work: tuple,
                 tables: tuple) -> None:
    """Cells ``c0 .. c0 + W`` of series ``s``, from :func:`_month_keys` with each month's keys
    sorted: ``out`` ``[S, T, C]`` gets xsdba's percentile ranks (:func:`month_pct_ranks`), or,
    for the cells where ``lookup`` ``[C]`` is True (every factor finite), the QDM result: the
    value with the factor of ``af`` ``[12, Q, C]`` at the node of ``q`` ``[Q]`` nearest to its
    rank (:func:`_nearest_node`: a rank is less than 1 from any node of its month, so no other
    month can be nearer); ``clean[c]`` set False where an exact tie between two nodes with
    different factors decided, and ``ties`` ``[S, T, C]`` True at that value. ``mon``/``pos``
    ``[T]``: each step's month (0..11) and place in it. ``work``: buffers ``res`` ``[12, N, W]``,
    ``afc`` ``[W, 12, Q]``, ``sv`` ``[N]``, ``idx`` ``[N]``; ``tables``: those of
    :func:`_rank_table`.

    Per cell and month the values are visited in key order: in a cell with factors, when they
    come out strictly increasing (distinct, no key collision: the usual case), their nodes are
    those of the table for the month's length; otherwise (and for ranks alone) they are sorted
    exactly and ranked run by run of equal values."""
    res, afc, sv, idx = work
    slot, used, tab_i, tab_n = tables
    width, n_m, n_max = keys.shape
    n_q = q.size
    for m in range(n_m):
        for g in range(n_q):
            for k in range(width):
                afc[k, m, g] = af[m, g, c0 + k]
    for k in range(width):
        c = c0 + k
        lk = lookup[c]
        for m in range(n_m):
            n = counts[k, m]
            kr = keys[k, m]
            for i in range(n, n_max):  # NaN values and padding
                res[m, kr[i] & mask, k] = np.nan
            if n == 0:
                continue
            row = _rank_table(n, q, slot, used, tab_i, tab_n) if n > 1 and lk else -1
            if row >= 0:  # optimistic: distinct values in key order take the table
                af_r = afc[k, m]
                sel = tab_i[row, 0]
                increasing = True
                prev = -np.inf
                for i in range(n):
                    j = kr[i] & mask
                    v = vals[m, j, k]
                    res[m, j, k] = v * af_r[sel[i]] if multiplicative else v + af_r[sel[i]]
                    increasing &= v > prev
                    prev = v
                if increasing:
                    for e in range(tab_n[row]):
                        i = tab_i[row, 3, e]
                        if af_r[tab_i[row, 1, i]] != af_r[tab_i[row, 2, i]]:
                            clean[c] = False
                            ties[s, steps[m, kr[i] & mask], c] = True
                    continue
            ordered = True  # the values in key order, then sorted exactly if needed
            equal = False
            prev = -np.inf
            for i in range(n):
                j = kr[i] & mask
                v = vals[m, j, k]
                sv[i] = v
                idx[i] = j
                ordered &= v >= prev
                equal |= v == prev
                prev = v
            if not ordered:  # values differing only in the key's replaced bits: insertion sort
                equal = False
                for i in range(1, n):
                    v, j = sv[i], idx[i]
                    h = i
                    while h > 0 and sv[h - 1] > v:
                        sv[h], idx[h] = sv[h - 1], idx[h - 1]
                        h -= 1
                    sv[h], idx[h] = v, j
                for i in range(1, n):
                    equal |= sv[i] == sv[i - 1]
            hi0 = 1  # first and last run of equal values: the rescaling's min and max
            while hi0 < n and sv[hi0] == sv[0]:
                hi0 += 1
            lo1 = n - 1
            while lo1 > 0 and sv[lo1 - 1] == sv[n - 1]:
                lo1 -= 1
            mn = (1 + hi0) / 2.0 / n
            mx = (lo1 + 1 + n) / 2.0 / n
            if not mx > mn:  # one distinct value: xsdba's 0 / 0
                for i in range(n):
                    res[m, idx[i], k] = np.nan
                continue
            lo = 0
            while lo < n:
                v = sv[lo]
                hi = lo + 1
                while hi < n and sv[hi] == v:
                    hi += 1
                p = _pct(lo, hi, n, mn, mx)
                if not lk:
                    for e in range(lo, hi):
                        res[m, idx[e], k] = p
                else:
                    il, ir, sel_i, eq = _nearest_node(p, q)
                    a = afc[k, m, sel_i]
                    for e in range(lo, hi):
                        res[m, idx[e], k] = sv[e] * a if multiplicative else sv[e] + a
                    if eq and afc[k, m, il] != afc[k, m, ir]:
                        clean[c] = False
                        for e in range(lo, hi):
                            ties[s, steps[m, idx[e]], c] = True
                lo = hi
    for t in range(mon.size):  # written along the cells, in time order
        m, j = mon[t], pos[t]
        for k in range(width):
            out[s, t, c0 + k] = res[m, j, k]


def _rank_cells(flat: np.ndarray, months: np.ndarray, q: np.ndarray, af: np.ndarray,
                lookup: np.ndarray, multiplicative: bool, out: np.ndarray, clean: np.ndarray,
                ties: np.ndarray) -> None:
    """:func:`_rank_months` over ``flat`` ``[S, T, C]`` (float64, C-contiguous), per series and
    chunk of :data:`RANK_CELLS` cells: each month's sort keys (:func:`_month_keys`), sorted by
    NumPy (its vectorised sort, row by row), then ranked; series by series, so that a series'
    values and results stay in the L3 cache across its chunks. Arguments as
    :func:`_rank_months`."""
    steps = month_steps(months)
    n_m, n_max = steps.shape
    mask = np.uint64((1 << max(1, (n_max - 1).bit_length())) - 1)
    mon = np.zeros(flat.shape[1], np.int64)
    pos = np.zeros(flat.shape[1], np.int64)
    for m in range(n_m):
        n = int((steps[m] >= 0).sum())
        mon[steps[m, :n]] = m
        pos[steps[m, :n]] = np.arange(n)
    tables = (np.full(n_max + 1, -1, np.int64), np.zeros(1, np.int64),
              np.zeros((RANK_TABLES, 4, n_max), np.int64), np.zeros(RANK_TABLES, np.int64))
    n_s, _, n_c = flat.shape
    per_chunk = max(8, min(RANK_CELLS, RANK_CELLS * 100 // n_max // 8 * 8))
    bits = flat.view(np.uint64)
    buffers: dict[int, tuple] = {}
    for s, c0 in itertools.product(range(n_s), range(0, n_c, per_chunk)):
        width = min(per_chunk, n_c - c0)
        if width not in buffers:
            buffers[width] = (np.empty((n_m, n_max, width)),
                              np.empty((width, n_m, n_max), np.uint64),
                              np.empty((width, n_m), np.int64),
                              (np.empty((n_m, n_max, width)), np.empty((width, n_m, q.size)),
                               np.empty(n_max), np.empty(n_max, np.int64)))
        vals, keys, counts, work = buffers[width]
        _month_keys(flat, bits, s, c0, steps, mask, vals, keys, counts)
        keys.sort(axis=-1)
        _rank_months(vals, keys, counts, steps, mon, pos, mask, q, af, lookup, multiplicative,
                     s, c0, out, clean, ties, work, tables)


def month_pct_ranks(sim: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Percentile ranks of ``sim`` ``[S, T, C]`` within each calendar month of each series.

    xsdba's ``utils.rank(..., pct=True)`` as QDM's adjustment uses it: average ranks of ties
    (bottleneck's ``nanrankdata``), divided by the number of valid values, then rescaled as
    ``max * (r - min) / (max - min)`` (lowest value 0); NaN where the value is NaN or where the
    month holds a single distinct value (xsdba's 0 / 0). Dimensionless, ``[S, T, C]``. Each
    month's values are sorted by NumPy through order-preserving integer keys that carry the
    value's place (:func:`_month_keys`), then ranked in that order (:func:`_rank_months`).
    """
    flat = np.ascontiguousarray(sim, dtype=float)
    months = np.asarray(months, np.int64)
    out = np.empty(flat.shape)
    n_c = flat.shape[-1]
    _rank_cells(flat, months, np.zeros(0), np.zeros((12, 0, n_c)), np.zeros(n_c, np.bool_),
                False, out, np.ones(n_c, np.bool_), np.zeros((1, 1, 1), np.bool_))
    return out


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
    out = np.empty(flat.shape)
    clean = np.ones(flat.shape[-1], dtype=np.bool_)
    ties = np.zeros(flat.shape, dtype=np.bool_)
    _rank_cells(flat, months, q, np.ascontiguousarray(af), lookup, kind == MULTIPLICATIVE, out,
                clean, ties)
    rest = np.flatnonzero(~lookup)  # out holds their ranks: the general nearest-node search
    if rest.size:
        ranks = np.ascontiguousarray(out[..., rest])
        part = np.empty_like(ranks)
        part_clean = np.ones(rest.size, dtype=np.bool_)
        part_ties = np.zeros(ranks.shape, dtype=np.bool_)
        xq = np.ascontiguousarray(np.broadcast_to(q[None, :, None], (12, q.size, rest.size)))
        _adjust_block(ranks, month_steps(months), xq, np.ascontiguousarray(af[..., rest]),
                      kind == MULTIPLICATIVE, part, part_clean,
                      np.ascontiguousarray(flat[..., rest]), part_ties)
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


def _time_ns(time: np.ndarray) -> np.ndarray:
    """``time`` ``[T]`` (datetime64 or cftime) as float nanoseconds, as xsdba's ``PolyDetrend``
    takes it (cftime: differences in the series' own calendar, e.g. noleap)."""
    time = np.asarray(time)
    if np.issubdtype(time.dtype, np.datetime64):
        return (time.astype("datetime64[ns]") - np.datetime64("1970-01-01", "ns")).astype(
            "int64").astype(float)
    return np.array([(t - time[0]).total_seconds() for t in time]) * 1e9


def month_linear_trend(x: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line through each calendar month of each series of ``x`` ``[S, T, C]``
    against time (xsdba's ``PolyDetrend(degree=1)``: ``polyfit``/``polyval`` over the month's
    values, NaN skipped, time in ns in the series' calendar), evaluated at every step:
    ``(trend [S, T, C], fitted [S, 12, C])``; ``fitted`` False where a month has fewer than two
    valid values (no unique line: xsdba's least-squares answer differs, so the caller hands
    those to xsdba)."""
    t_ns = _time_ns(time)
    idx = months_of(time) - 1
    x = np.ascontiguousarray(x, dtype=float)
    coef, fitted = _fit_month_lines(x, t_ns, month_steps(idx + 1), np.zeros((12, x.shape[-1])),
                                    ADDITIVE)
    t0, y0, slope = (a[:, idx] for a in coef)  # [S, T, C]
    return y0 + slope * (t_ns[None, :, None] - t0), fitted


def _fit_month_lines(x: np.ndarray, t_ns: np.ndarray, steps: np.ndarray, scaling: np.ndarray,
                     kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The lines of :func:`month_linear_trend` through ``x`` ``[S, T, C]`` scaled by
    ``scaling`` ``[12, C]`` (``kind``): ``((t0, y0, slope) each [S, 12, C], fitted)``."""
    shape = (x.shape[0], 12, x.shape[-1])
    t0, y0, slope = np.empty(shape), np.empty(shape), np.full(shape, np.nan)
    n_valid = np.zeros(shape, np.int64)
    _month_trend(x, t_ns, steps, np.ascontiguousarray(scaling, dtype=float),
                 kind == MULTIPLICATIVE, t0, y0, slope, n_valid)
    return (t0, y0, slope), (n_valid >= 2) | (n_valid == 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _scaled(v: float, scaling: float, multiplicative: bool) -> float:
    """A value with the model's mean bias removed: ``v * scaling`` or ``v + scaling``."""
    return v * scaling if multiplicative else v + scaling


@numba.njit(cache=True, nogil=True)
def _month_trend(x: np.ndarray, t_ns: np.ndarray, steps: np.ndarray, scaling: np.ndarray,
                 multiplicative: bool, t0: np.ndarray, y0: np.ndarray, slope: np.ndarray,
                 n_valid: np.ndarray) -> None:
    """``x`` ``[S, T, C]``, each value scaled by ``scaling[m, c]`` (``x * s`` or ``x + s``):
    per series and calendar month (time steps ``steps`` ``[12, N]``, -1 padded), the
    least-squares line through the valid values against ``t_ns`` ``[T]``, centred on their mean
    time ``t0`` and value ``y0`` (``[S, 12, C]``), ``slope`` left NaN where fewer than two
    values; ``n_valid`` ``[S, 12, C]`` the number of valid values. The line at step ``t``:
    ``y0 + slope * (t_ns[t] - t0)``."""
    n_s, _, n_c = x.shape
    cnt = np.empty(n_c)
    sxy = np.empty(n_c)
    sxx = np.empty(n_c)
    for s in range(n_s):
        for m in range(12):
            ta, ya, sc = t0[s, m], y0[s, m], scaling[m]
            ta[:], ya[:], cnt[:], sxy[:], sxx[:] = 0.0, 0.0, 0.0, 0.0, 0.0
            for j in range(steps.shape[1]):
                t = steps[m, j]
                if t < 0:
                    break
                for c in range(n_c):
                    v = _scaled(x[s, t, c], sc[c], multiplicative)
                    if not np.isnan(v):
                        ta[c] += t_ns[t]
                        ya[c] += v
                        cnt[c] += 1.0
            for c in range(n_c):
                if cnt[c] > 0:
                    ta[c] /= cnt[c]
                    ya[c] /= cnt[c]
                n_valid[s, m, c] = int(cnt[c])
            for j in range(steps.shape[1]):
                t = steps[m, j]
                if t < 0:
                    break
                for c in range(n_c):
                    v = _scaled(x[s, t, c], sc[c], multiplicative)
                    if not np.isnan(v):
                        dt = t_ns[t] - ta[c]
                        sxy[c] += dt * (v - ya[c])
                        sxx[c] += dt * dt
            for c in range(n_c):
                if sxx[c] > 0:
                    slope[s, m, c] = sxy[c] / sxx[c]


def adjust_dqm_exact(sim: np.ndarray, time: np.ndarray, af: np.ndarray, hist_q: np.ndarray,
                     scaling: np.ndarray, kind: str = ADDITIVE) -> tuple[np.ndarray, int]:
    """xsdba's DQM adjustment (``detrend=1``, nearest, constant) of ``sim`` ``[..., T, C]``
    (``time`` ``[T]`` datetime64 or cftime): the model's mean bias removed (``scaling``
    ``[12, C]``), each month's linear trend removed, the anomalies mapped as by
    :func:`adjust_eqm`, the trend put back (two passes over ``sim``: the lines' fit, then
    :func:`_map_block`). Values decided by an exact tie are settled on their anomalies by
    xsdba's own search (:func:`_tree_factors`); a cell with a month of a single valid value
    (no unique line) is computed by xsdba. Returns the result and the number of cells that had
    either."""
    sim = np.asarray(sim, dtype=float)
    flat = np.ascontiguousarray(sim.reshape((-1,) + sim.shape[-2:]))
    months = months_of(time)
    steps = month_steps(months)
    t_ns = _time_ns(time)
    scaling = np.ascontiguousarray(scaling, dtype=float)
    hist_q = np.ascontiguousarray(hist_q, dtype=float)
    af = np.ascontiguousarray(af, dtype=float)
    (t0, y0, slope), fitted = _fit_month_lines(flat, t_ns, steps, scaling, kind)
    out = np.empty_like(flat)
    clean = np.ones(flat.shape[-1], dtype=np.bool_)
    ties = np.zeros(flat.shape, np.bool_)
    multiplicative = kind == MULTIPLICATIVE
    _map_block(flat, flat, steps, hist_q, af, multiplicative, True, t_ns, scaling, t0, y0, slope,
               out, clean, ties)
    lines_ok = fitted.all(axis=(0, 1))
    tied = np.flatnonzero(~clean & lines_ok)
    for c in tied:  # the kernel's operations, in its order, with xsdba's factor
        s_idx, t_idx = np.nonzero(ties[..., c])
        m_idx = months[t_idx] - 1
        line = y0[s_idx, m_idx, c] + slope[s_idx, m_idx, c] * (t_ns[t_idx] - t0[s_idx, m_idx, c])
        x, sc = flat[s_idx, t_idx, c], scaling[m_idx, c]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (x * sc) * (1.0 / line) if multiplicative else (x + sc) + (-line)
            factor = _tree_factors(a, months[t_idx], hist_q[..., c], af[..., c])
            out[s_idx, t_idx, c] = a * factor * line if multiplicative else a + factor + line
    bad = np.flatnonzero(~lines_ok)
    if bad.size:
        out[..., bad] = _xsdba_dqm(flat[..., bad], np.asarray(time), af[..., bad],
                                   hist_q[..., bad], scaling[..., bad], kind)
    return out.reshape(sim.shape), int(tied.size + bad.size)


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
