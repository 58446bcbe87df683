"""The heat scheme of :mod:`permaplug.demo.heat`, compiled with numba.

Same physics, same arithmetic, same Newton stopping rule as :func:`permaplug.demo.heat.step`
(the NumPy reference): conductivity lagged at the old temperatures, backward Euler in the
enthalpy, a tridiagonal Newton correction (Thomas algorithm over depth, vectorised over cells)
and, for each cell, a stop once none of its temperatures changes by ``tol`` or more. A cell's
numbers therefore never depend on the other cells of its block (tests: the same to the last
bit in any block, order or split), so a grid can be cut into any tiles, processes or chunks.

What changes is the order of work. The reference makes ~40 whole-block NumPy passes per Newton
iteration, each writing a temporary array. Here the block is cut into tiles of :data:`TILE`
cells; :func:`run_months` takes each tile through a whole step while it is in cache (start,
Newton iterations -- each one fused forward sweep and one fused back-substitution-and-update
sweep -- end of step, monthly means). Cells of a tile that have converged keep their values
while the others iterate. The conductivities' ``exp`` is evaluated by :func:`_exp`, a loop LLVM
vectorises (within 1 ulp of the C library's, which is a scalar call). Arrays are
``(nz, ncell)`` as in the reference; inner loops run over cells from index 0 on row views, so
LLVM vectorises them.

:func:`run_months` runs the emulator's whole sub-monthly loop (snow pack, surface drive, heat
step, monthly means in the reference's order); :func:`permaplug.demo.emulator.run` calls it.
Results equal the reference within rounding (``tests/test_demo_heat.py``). The first call in a
fresh installation compiles (about 20-60 s on a busy 2-core machine); numba caches the machine
code next to this module (or in ``NUMBA_CACHE_DIR``), later processes load it in ~1 s.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from permaplug.demo import heat

TILE = 256
"""Cells per tile: a tile's ~12 working arrays (nz x TILE float64) stay in a core's L2 cache."""
NEWTON, TOL = 8, 1e-3
"""The emulator's Newton settings (the defaults of :func:`permaplug.demo.heat.step`)."""


_JIT = {"cache": True, "error_model": "numpy"}  # numpy: x / 0 is inf (no Python check)


_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (x + _ROUND) - _ROUND rounds x to an integer
_POW2 = np.array([2.0 ** n for n in range(-64, 65)])  # exact powers of two, 2**-64 .. 2**64
_EXP_FAST = 40.0  # |x| up to this: the vectorised path below; beyond (or NaN): math.exp


@njit(**_JIT)
def _exp(x, out, n):
    """``out[:n] = exp(x[:n])`` within 1 ulp of ``math.exp`` (which a loop cannot vectorise:
    it is a scalar libm call, ~8 ns each): x = k ln2 + r, |r| <= ln2 / 2, exp(r) from its
    Taylor series to r**13 / 13! (truncation < 1e-17 relative), times 2**k from a table.
    Arguments beyond +-40 (none in the emulator's soils) or NaN go to ``math.exp``."""
    slow = 0
    for k in range(n):
        v = x[k]
        kf = (v * _INV_LN2 + _ROUND) - _ROUND
        fast = abs(v) <= _EXP_FAST
        kf = kf if fast else 0.0
        r = (v - kf * _LN2_HI) - kf * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        out[k] = p * _POW2[int(kf) + 64]
        slow += 0 if fast else 1
    if slow:
        for k in range(n):
            if not abs(x[k]) <= _EXP_FAST:
                out[k] = math.exp(x[k])


@njit(**_JIT)
def _start(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res, width, dz,
           r_top, t_top, g, g_top, src_top, kbuf, arg, j0, j1, s0):
    """Start a step for cells ``j0:j1``: Newton start ``h`` (``H + dh`` when ``use_dh``), its
    temperatures, the conductances at the old temperatures ``T`` (lagged, as the reference).

    The work arrays ``h``, ``t``, ``slope``, ``g``, ``g_top``, ``src_top`` hold these cells at
    ``s0:s0 + j1 - j0`` (``s0 = j0`` for whole-block arrays, 0 for a tile's own); ``kbuf``
    (nz, >= j1 - j0) and ``arg`` (>= j1 - j0,) are scratch. Loops run over row views from 0
    (so LLVM vectorises them without index wrap-around).
    """
    nz = T.shape[0]
    nk = j1 - j0
    s1 = s0 + nk
    for i in range(nz):
        Ti, wi, fi, kf, lr, kb = T[i, j0:j1], width[i, j0:j1], f_res[i, j0:j1], \
            k_frozen[i, j0:j1], log_k_ratio[i, j0:j1], kbuf[i]
        for k in range(nk):
            x = min(max(1.0 + Ti[k] / wi[k], 0.0), 1.0)
            f = fi[k] + (1.0 - fi[k]) * x
            arg[k] = f * lr[k]
        _exp(arg, kb, nk)
        for k in range(nk):
            kb[k] = kf[k] * kb[k]
    half0 = 0.5 * dz[0]
    k0 = kbuf[0]
    gt, st, rt, tt = g_top[s0:s1], src_top[s0:s1], r_top[j0:j1], t_top[j0:j1]
    for k in range(nk):
        gt[k] = 1.0 / (rt[k] + half0 / k0[k])
        st[k] = 0.0 + gt[k] * tt[k]
    for i in range(nz - 1):
        a, b = 0.5 * dz[i], 0.5 * dz[i + 1]
        gi, ka, kb_ = g[i, s0:s1], kbuf[i], kbuf[i + 1]
        for k in range(nk):
            gi[k] = 1.0 / (a / ka[k] + b / kb_[k])
    for i in range(nz):
        hi, ti, si = h[i, s0:s1], t[i, s0:s1], slope[i, s0:s1]
        if use_dh:
            Hi, dhi = H[i, j0:j1], dh[i, j0:j1]
            for k in range(nk):
                hi[k] = Hi[k] + dhi[k]
        p0, p1, p2, p3, p4, p5 = props[0, i, j0:j1], props[1, i, j0:j1], props[2, i, j0:j1], \
            props[3, i, j0:j1], props[4, i, j0:j1], props[5, i, j0:j1]
        for k in range(nk):
            hv = hi[k]
            deep = hv < p1[k]
            slope_v = p3[k] if hv >= p0[k] else (p4[k] if deep else p5[k])
            base = p2[k] if deep else p0[k]
            ti[k] = (hv - base) * slope_v
            si[k] = slope_v


@njit(**_JIT)
def _iterate(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp, act, moved, tol,
             j0, j1, s0):
    """One Newton iteration for the still active cells of ``j0:j1``; returns how many stay
    active (work arrays at ``s0:``, see :func:`_start`). ``act`` (int64, >= j1 - j0) flags them
    with 1 (cleared here for a cell whose temperatures all changed by less than ``tol``; NaN
    counts as not converged); ``moved`` is scratch of the same kind.

    Residual ``w (h - H) - net_in(t)`` and Jacobian rows as the reference, Thomas forward
    sweep, then back substitution fused with the update of h, t -- kept only where active, so a
    cell's iterates never depend on the other cells. Inner loops run over ``k`` from 0 on row
    views ``[j0:j1]`` (vectorised, no wrap-around).
    """
    nz = h.shape[0]
    nk = j1 - j0
    s1 = s0 + nk
    gd_, t0, t1, h0_, H0, sl0, sl1 = g[0, s0:s1], t[0, s0:s1], t[1, s0:s1], h[0, s0:s1], \
        H[0, j0:j1], slope[0, s0:s1], slope[1, s0:s1]
    gt, st = g_top[s0:s1], src_top[s0:s1]
    c0, d0 = cp[0], dp[0]
    w0 = w[0]
    for k in range(nk):
        gd = gd_[k]
        diag = (0.0 + gd) + gt[k]
        net = st[k] - diag * t0[k]
        net = net + gd * t1[k]
        rhs = -(w0 * (h0_[k] - H0[k]) - net)
        m = 1.0 / (w0 + diag * sl0[k])
        c0[k] = (-gd * sl1[k]) * m
        d0[k] = rhs * m
    for i in range(1, nz):
        wi = w[i]
        last = i == nz - 1
        gu_ = g[i - 1, s0:s1]
        gd_ = g[i, s0:s1] if not last else g[i - 1, s0:s1]
        tm, ti, hi, Hi = t[i - 1, s0:s1], t[i, s0:s1], h[i, s0:s1], H[i, j0:j1]
        tp = t[i + 1, s0:s1] if not last else ti
        sm, si = slope[i - 1, s0:s1], slope[i, s0:s1]
        sp = slope[i + 1, s0:s1] if not last else si
        cm, dm, ci, di = cp[i - 1], dp[i - 1], cp[i], dp[i]
        if not last:
            for k in range(nk):
                gu = gu_[k]
                gd = gd_[k]
                diag = gu + gd
                net = 0.0 - diag * ti[k]
                net = net + gu * tm[k]
                net = net + gd * tp[k]
                rhs = -(wi * (hi[k] - Hi[k]) - net)
                a = -gu * sm[k]
                m = 1.0 / ((wi + diag * si[k]) - a * cm[k])
                ci[k] = (-gd * sp[k]) * m
                di[k] = (rhs - a * dm[k]) * m
        else:
            qb = 0.0 + q_bottom
            for k in range(nk):
                gu = gu_[k]
                diag = gu + 0.0
                net = qb - diag * ti[k]
                net = net + gu * tm[k]
                rhs = -(wi * (hi[k] - Hi[k]) - net)
                a = -gu * sm[k]
                m = 1.0 / ((wi + diag * si[k]) - a * cm[k])
                di[k] = (rhs - a * dm[k]) * m
    for k in range(nk):
        moved[k] = 0
    for i in range(nz - 1, -1, -1):
        hi, ti, si, di, ci = h[i, s0:s1], t[i, s0:s1], slope[i, s0:s1], dp[i], cp[i]
        dn = dp[i + 1] if i < nz - 1 else dp[i]
        p0, p1, p2, p3, p4, p5 = props[0, i, j0:j1], props[1, i, j0:j1], props[2, i, j0:j1], \
            props[3, i, j0:j1], props[4, i, j0:j1], props[5, i, j0:j1]
        inner = i < nz - 1
        for k in range(nk):
            d = di[k] - ci[k] * dn[k] if inner else di[k]
            di[k] = d
            hv = hi[k] + d
            deep = hv < p1[k]
            slope_v = p3[k] if hv >= p0[k] else (p4[k] if deep else p5[k])
            base = p2[k] if deep else p0[k]
            tv = (hv - base) * slope_v
            on = act[k]
            far = 0 if abs(tv - ti[k]) < tol else 1  # NaN: far
            moved[k] = moved[k] | (on & far)
            keep = on == 0
            hi[k] = hi[k] if keep else hv
            ti[k] = ti[k] if keep else tv
            si[k] = si[k] if keep else slope_v
    left = 0
    for k in range(nk):
        on = act[k] & moved[k]
        act[k] = on
        left += on
    return left


@njit(**_JIT)
def _solve(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp, act, moved, newton,
           tol, j0, j1, s0):
    """Newton iterations for cells ``j0:j1``, each cell until its own temperatures change by
    less than ``tol`` (at most ``newton``); returns the largest count in the range."""
    for k in range(j1 - j0):
        act[k] = 1
    n = 0
    while n < newton:
        n += 1
        if _iterate(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp, act, moved,
                    tol, j0, j1, s0) == 0:
            break
    return n


@njit(**_JIT)
def _tile_scratch(nz):
    """A tile's scratch arrays: ``kbuf``, ``cp``, ``dp`` (nz, TILE) float64, ``act``, ``moved``
    (TILE,) int64 and ``arg`` (TILE,) float64."""
    return (np.empty((nz, TILE)), np.empty((nz, TILE)), np.empty((nz, TILE)),
            np.empty(TILE, np.int64), np.empty(TILE, np.int64), np.empty(TILE))


@njit(**_JIT)
def advance(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res, width, dz, dt,
            t_surface, r_surface, q_bottom, newton, tol, g, g_top, src_top):
    """One implicit step of every cell, tile by tile (start, then Newton iterations, in cache).

    ``h`` holds the Newton start (or it is ``H + dh`` when ``use_dh``) and receives ``H_new``;
    ``t`` receives ``T_new``; ``g`` (nz-1, ncell), ``g_top``/``src_top`` (ncell,) receive the
    step's conductances. State arrays are ``(nz, ncell)``; ``t_surface``/``r_surface``
    (ncell,); ``props`` (6, nz, ncell): h0, h1, h_res, 1/c_u, 1/c_f, 1/c_m. Each cell stops at
    its own convergence (the reference's rule, per cell); returns the largest count.
    """
    nz, ncell = T.shape
    w = dz / dt
    kbuf, cp, dp, act, moved, arg = _tile_scratch(nz)
    most = 0
    for j0 in range(0, ncell, TILE):
        j1 = min(j0 + TILE, ncell)
        _start(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res, width, dz,
               r_surface, t_surface, g, g_top, src_top, kbuf, arg, j0, j1, j0)
        most = max(most, _solve(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp,
                                act, moved, newton, tol, j0, j1, j0))
    return most


def column_props(col: heat.Column) -> dict[str, np.ndarray]:
    """The column's arrays as the kernel wants them: C-contiguous float64 ``(nz, ncell)``."""
    def c(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=float)

    return {
        "props": np.ascontiguousarray(np.stack([c(col.h0), c(col.h1), c(col.h_res),
                                                c(col.inv_c_u), c(col.inv_c_f), c(col.inv_c_m)])),
        "k_frozen": c(col.k_frozen), "log_k_ratio": c(col.log_k_ratio), "f_res": c(col.f_res),
        "width": c(col.width), "dz": c(col.dz),
    }


def step(T: np.ndarray, H: np.ndarray, col: heat.Column, dt: float, t_surface: np.ndarray,
         r_surface: np.ndarray, q_bottom: float, newton: int = NEWTON, tol: float = TOL,
         h_guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop-in for :func:`permaplug.demo.heat.step` (``(nz, ncell)`` arrays, nz >= 2)."""
    nz, ncell = T.shape
    if nz < 2:
        raise ValueError("the compiled heat kernel needs at least two volumes")
    p = column_props(col)
    h = np.array(H if h_guess is None else h_guess, dtype=float, order="C")
    t, slope = np.empty_like(h), np.empty_like(h)
    g, g_top, src_top = np.empty((nz - 1, ncell)), np.empty(ncell), np.empty(ncell)
    ts = np.ascontiguousarray(np.broadcast_to(np.asarray(t_surface, float), (ncell,)))
    rs = np.ascontiguousarray(np.broadcast_to(np.asarray(r_surface, float), (ncell,)))
    advance(np.ascontiguousarray(T, dtype=float), np.ascontiguousarray(H, dtype=float), h, h,
            False, t, slope, p["props"], p["k_frozen"], p["log_k_ratio"], p["f_res"],
            p["width"], p["dz"], float(dt), ts, rs, float(q_bottom), int(newton), float(tol), g,
            g_top, src_top)
    return t, h, g_top * (ts - t[0])


@njit(**_JIT)
def _finish(T, H, h, dh, t, f_res, width, lw, wgt, m, record, stl, liquid, acc_t, acc_f, j0,
            j1, s0):
    """End a step for cells ``j0:j1``: ``dh = h - H``, ``H = h``, ``T = t``; with ``record`` add
    the layer means of T and of the liquid share into ``stl``/``liquid`` month ``m`` (reference
    order); ``h``, ``t`` at ``s0:`` (see :func:`_start`); ``acc_t``/``acc_f`` (>= j1 - j0,) are
    scratch."""
    nz = T.shape[0]
    nk = j1 - j0
    s1 = s0 + nk
    for i in range(nz):
        Ti, Hi, hi, dhi, ti = T[i, j0:j1], H[i, j0:j1], h[i, s0:s1], dh[i, j0:j1], t[i, s0:s1]
        for k in range(nk):
            dhi[k] = hi[k] - Hi[k]
            Hi[k] = hi[k]
            Ti[k] = ti[k]
    if not record:
        return
    for la in range(lw.shape[0]):
        for k in range(nk):
            acc_t[k] = 0.0
            acc_f[k] = 0.0
        for i in range(nz):
            wl = lw[la, i]
            if wl == 0.0:  # adding 0 x value changes nothing
                continue
            Ti, wi, fi = T[i, j0:j1], width[i, j0:j1], f_res[i, j0:j1]
            for k in range(nk):
                x = min(max(1.0 + Ti[k] / wi[k], 0.0), 1.0)
                acc_t[k] += wl * Ti[k]
                acc_f[k] += wl * (fi[k] + (1.0 - fi[k]) * x)
        out_t, out_f = stl[m, la, j0:j1], liquid[m, la, j0:j1]
        for k in range(nk):
            out_t[k] = np.float32(out_t[k] + wgt * acc_t[k])
            out_f[k] = np.float32(out_f[k] + wgt * acc_f[k])


@njit(**_JIT)
def run_months(m0, m1, T, H, dh, has_dh, swe, props, k_frozen, log_k_ratio, f_res, width, dz,
               lw, t_sub, sf, days, density, k_snow, n_thaw, ddf, steps, q_bottom,
               stl, liquid, swe_out, depth_out, melt_out, flux_out, record, profile, do_profile):
    """Months ``m0 .. m1 - 1`` of :func:`permaplug.demo.emulator.run`; state updated in place.

    ``T``, ``H`` and ``dh`` (the last step's enthalpy change: Newton starts from ``H + dh``
    once ``has_dh[0]``) are ``(nz, ncell)``; ``swe`` (ncell,) mm; ``t_sub`` ((m1 - m0) * steps,
    ncell) the sub-monthly air temperature of these months; ``sf`` (nt, ncell) snowfall mm per month; ``lw`` (4, nz)
    layer weights; ``density``, ``k_snow``, ``n_thaw``, ``ddf`` (ncell,). With ``record`` the
    monthly means are accumulated into the float32 outputs ``stl``/``liquid`` (nt, 4, ncell) and
    the others (nt, ncell), in the reference's order; with ``do_profile`` the monthly mean
    temperatures of the top face and of every volume into ``profile`` (nt, nz + 1, ncell).

    Cells are independent (each stops Newton at its own convergence), so the work runs tile by
    tile: each tile of :data:`TILE` cells goes through every step of the months (snow, start,
    iterations, end of step, monthly means) while its state, soil parameters and the Newton
    iterate stay in cache; the rest of the block is not touched meanwhile.
    """
    nz, ncell = T.shape
    drive = np.empty(ncell)
    r_snow = np.empty(ncell)
    depth = np.empty(ncell)
    melt = np.empty(ncell)
    h, t, slope = np.empty((nz, TILE)), np.empty((nz, TILE)), np.empty((nz, TILE))
    g = np.empty((nz - 1, TILE))
    g_top = np.empty(TILE)
    src_top = np.empty(TILE)
    kbuf, cp, dp, act, moved, arg = _tile_scratch(nz)
    acc_t = np.empty(TILE)
    acc_f = np.empty(TILE)
    wgt = 1.0 / steps
    first_dh = has_dh[0]
    for j0 in range(0, ncell, TILE):  # each tile through all the months while it is in cache
        j1 = min(j0 + TILE, ncell)
        nk = j1 - j0
        use_dh = first_dh
        for m in range(m0, m1):
            dt_days = days[m] / steps
            dt = dt_days * heat.SECONDS_PER_DAY
            w = dz / dt
            for s in range(steps):
                row = (m - m0) * steps + s
                for j in range(j0, j1):
                    ta = t_sub[row, j]
                    sw = swe[j] + sf[m, j] / steps
                    mj = min(sw, ddf[j] * max(ta, 0.0) * dt_days)
                    sw = sw - mj
                    swe[j] = sw
                    melt[j] = mj
                    d = sw / density[j]
                    depth[j] = d
                    r_snow[j] = d / k_snow[j]
                    drive[j] = n_thaw[j] * ta if (d < 0.01 and ta > 0) else ta
                if not use_dh:
                    h[:, :nk] = H[:, j0:j1]
                _start(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res,
                       width, dz, r_snow, drive, g, g_top, src_top, kbuf, arg, j0, j1, 0)
                _solve(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp, act,
                       moved, NEWTON, TOL, j0, j1, 0)
                _finish(T, H, h, dh, t, f_res, width, lw, wgt, m, record, stl, liquid, acc_t,
                        acc_f, j0, j1, 0)
                use_dh = True
                if do_profile:
                    for j in range(j0, j1):
                        flux = g_top[j - j0] * (drive[j] - T[0, j])
                        profile[m, 0, j] += wgt * (drive[j] - flux * r_snow[j])
                    for i in range(nz):
                        pi, Ti = profile[m, i + 1], T[i]
                        for j in range(j0, j1):
                            pi[j] += wgt * Ti[j]
                if not record:
                    continue
                for j in range(j0, j1):
                    flux = g_top[j - j0] * (drive[j] - T[0, j])
                    swe_out[m, j] = np.float32(swe_out[m, j] + wgt * swe[j])
                    depth_out[m, j] = np.float32(depth_out[m, j] + wgt * depth[j])
                    melt_out[m, j] = np.float32(melt_out[m, j] + melt[j])
                    flux_out[m, j] = np.float32(flux_out[m, j] + wgt * flux)
    has_dh[0] = True
