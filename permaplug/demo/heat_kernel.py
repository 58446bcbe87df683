"""The heat scheme of :mod:`permaplug.demo.heat`, compiled with numba.

Same physics, same arithmetic, same Newton stopping rule as :func:`permaplug.demo.heat.step`
(the NumPy reference): conductivity lagged at the old temperatures, backward Euler in the
enthalpy, a tridiagonal Newton correction (Thomas algorithm over depth, vectorised over cells)
and a stop when the largest temperature change over **all cells of the block** falls below
``tol``, so every cell of a block takes the same number of iterations as in the reference.

What changes is the order of work. The reference makes ~40 whole-block NumPy passes per Newton
iteration, each writing a temporary array. Here each iteration is one fused forward sweep and
one fused back-substitution-and-update sweep, and the block is cut into tiles of :data:`TILE`
cells that stay in cache: a tile iterates until *its own* cells have converged. Each cell's
iterates do not depend on the other cells, so the block's iteration count is then found
exactly: it is the first count, from the largest tile count on, at which every tile's change is
below ``tol`` (tiles that stopped earlier continue to it). Arrays are ``(nz, ncell)`` as in the
reference; inner loops run over cells from index 0 on row views, so LLVM vectorises them.

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


@njit(**_JIT)
def _start(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res, width, dz,
           r_top, t_top, g, g_top, src_top, kbuf):
    """Start a step for every cell: Newton start ``h`` (``H + dh`` when ``use_dh``), its
    temperatures, the conductances at the old temperatures ``T`` (lagged, as the reference).

    Loops run over whole rows from 0 (so LLVM vectorises them without index wrap-around).
    """
    nz, ncell = T.shape
    for i in range(nz):
        Ti, wi, fi, kf, lr, kb = T[i], width[i], f_res[i], k_frozen[i], log_k_ratio[i], kbuf[i]
        for j in range(ncell):
            x = min(max(1.0 + Ti[j] / wi[j], 0.0), 1.0)
            f = fi[j] + (1.0 - fi[j]) * x
            kb[j] = kf[j] * math.exp(f * lr[j])
    half0 = 0.5 * dz[0]
    k0 = kbuf[0]
    for j in range(ncell):
        g_top[j] = 1.0 / (r_top[j] + half0 / k0[j])
        src_top[j] = 0.0 + g_top[j] * t_top[j]
    for i in range(nz - 1):
        a, b = 0.5 * dz[i], 0.5 * dz[i + 1]
        gi, ka, kb_ = g[i], kbuf[i], kbuf[i + 1]
        for j in range(ncell):
            gi[j] = 1.0 / (a / ka[j] + b / kb_[j])
    for i in range(nz):
        hi, ti, si = h[i], t[i], slope[i]
        if use_dh:
            Hi, dhi = H[i], dh[i]
            for j in range(ncell):
                hi[j] = Hi[j] + dhi[j]
        p0, p1, p2, p3, p4, p5 = props[0, i], props[1, i], props[2, i], props[3, i], \
            props[4, i], props[5, i]
        for j in range(ncell):
            hv = hi[j]
            deep = hv < p1[j]
            slope_v = p3[j] if hv >= p0[j] else (p4[j] if deep else p5[j])
            base = p2[j] if deep else p0[j]
            ti[j] = (hv - base) * slope_v
            si[j] = slope_v


@njit(**_JIT)
def _iterate(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp, tol, j0, j1):
    """One Newton iteration for cells j0:j1; returns how many changed by ``tol`` or more
    (NaN counts as not converged). Residual ``w (h - H) - net_in(t)`` and Jacobian rows as the
    reference, Thomas forward sweep, then back substitution fused with the update of h, t.

    Inner loops run over ``k`` from 0 on row views ``[j0:j1]`` (vectorised, no wrap-around).
    """
    nz = h.shape[0]
    nk = j1 - j0
    gd_, t0, t1, h0_, H0, s0, s1 = g[0, j0:j1], t[0, j0:j1], t[1, j0:j1], h[0, j0:j1], \
        H[0, j0:j1], slope[0, j0:j1], slope[1, j0:j1]
    gt, st = g_top[j0:j1], src_top[j0:j1]
    c0, d0 = cp[0], dp[0]
    w0 = w[0]
    for k in range(nk):
        gd = gd_[k]
        diag = (0.0 + gd) + gt[k]
        net = st[k] - diag * t0[k]
        net = net + gd * t1[k]
        rhs = -(w0 * (h0_[k] - H0[k]) - net)
        m = 1.0 / (w0 + diag * s0[k])
        c0[k] = (-gd * s1[k]) * m
        d0[k] = rhs * m
    for i in range(1, nz):
        wi = w[i]
        last = i == nz - 1
        gu_ = g[i - 1, j0:j1]
        gd_ = g[i, j0:j1] if not last else g[i - 1, j0:j1]
        tm, ti, hi, Hi = t[i - 1, j0:j1], t[i, j0:j1], h[i, j0:j1], H[i, j0:j1]
        tp = t[i + 1, j0:j1] if not last else ti
        sm, si = slope[i - 1, j0:j1], slope[i, j0:j1]
        sp = slope[i + 1, j0:j1] if not last else si
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
    bad = 0
    for i in range(nz - 1, -1, -1):
        hi, ti, si, di, ci = h[i, j0:j1], t[i, j0:j1], slope[i, j0:j1], dp[i], cp[i]
        dn = dp[i + 1] if i < nz - 1 else dp[i]
        p0, p1, p2, p3, p4, p5 = props[0, i, j0:j1], props[1, i, j0:j1], props[2, i, j0:j1], \
            props[3, i, j0:j1], props[4, i, j0:j1], props[5, i, j0:j1]
        inner = i < nz - 1
        for k in range(nk):
            d = di[k] - ci[k] * dn[k] if inner else di[k]
            di[k] = d
            hv = hi[k] + d
            hi[k] = hv
            deep = hv < p1[k]
            slope_v = p3[k] if hv >= p0[k] else (p4[k] if deep else p5[k])
            base = p2[k] if deep else p0[k]
            tv = (hv - base) * slope_v
            bad += 0 if abs(tv - ti[k]) < tol else 1
            ti[k] = tv
            si[k] = slope_v
    return bad


@njit(**_JIT)
def advance(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res, width, dz, dt,
            t_surface, r_surface, q_bottom, newton, tol, g, g_top, src_top):
    """One implicit step of every cell of the block .

    ``h`` holds the Newton start (or it is ``H + dh`` when ``use_dh``) and receives ``H_new``;
    ``t`` receives ``T_new``; ``g`` (nz-1, ncell), ``g_top``/``src_top`` (ncell,) receive the
    step's conductances. State arrays are ``(nz, ncell)``; ``t_surface``/``r_surface``
    (ncell,); ``props`` (6, nz, ncell): h0, h1, h_res, 1/c_u, 1/c_f, 1/c_m. Returns the
    block's Newton iteration count (the reference's: the first at which every cell changed by
    less than ``tol``, at most ``newton``).
    """
    nz, ncell = T.shape
    w = dz / dt
    ntile = (ncell + TILE - 1) // TILE
    done = np.zeros(ntile, np.int64)  # iterations each tile has made
    bad = np.zeros(ntile, np.int64)  # its cells not converged at its last iteration
    _start(T, H, h, dh, use_dh, t, slope, props, k_frozen, log_k_ratio, f_res, width, dz,
           r_surface, t_surface, g, g_top, src_top, np.empty((nz, ncell)))
    cp = np.empty((nz, TILE))
    dp = np.empty((nz, TILE))
    for p in range(ntile):  # pass 1: each tile to its own convergence (or the cap)
        j0, j1 = p * TILE, min((p + 1) * TILE, ncell)
        while done[p] < newton:
            bad[p] = _iterate(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp, dp,
                              tol, j0, j1)
            done[p] += 1
            if bad[p] == 0:
                break
    target = done.max()
    while True:  # the block's count: the first from target on at which every tile converged
        for p in range(ntile):
            j0, j1 = p * TILE, min((p + 1) * TILE, ncell)
            while done[p] < target:
                bad[p] = _iterate(H, h, t, slope, g, g_top, src_top, q_bottom, w, props, cp,
                                  dp, tol, j0, j1)
                done[p] += 1
        if target >= newton or bad.sum() == 0:
            return target
        target += 1


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
def _finish(T, H, h, dh, t, f_res, width, lw, wgt, m, record, stl, liquid, acc_t, acc_f):
    """End a step: ``dh = h - H``, ``H = h``, ``T = t``; with ``record`` add the layer means of
    T and of the liquid share into ``stl``/``liquid`` month ``m`` (reference order)."""
    nz, ncell = T.shape
    for i in range(nz):
        Ti, Hi, hi, dhi, ti = T[i], H[i], h[i], dh[i], t[i]
        for j in range(ncell):
            dhi[j] = hi[j] - Hi[j]
            Hi[j] = hi[j]
            Ti[j] = ti[j]
    if not record:
        return
    for la in range(lw.shape[0]):
        acc_t[:] = 0.0
        acc_f[:] = 0.0
        for i in range(nz):
            wl = lw[la, i]
            if wl == 0.0:  # adding 0 x value changes nothing
                continue
            Ti, wi, fi = T[i], width[i], f_res[i]
            for j in range(ncell):
                x = min(max(1.0 + Ti[j] / wi[j], 0.0), 1.0)
                acc_t[j] += wl * Ti[j]
                acc_f[j] += wl * (fi[j] + (1.0 - fi[j]) * x)
        out_t, out_f = stl[m, la], liquid[m, la]
        for j in range(ncell):
            out_t[j] = np.float32(out_t[j] + wgt * acc_t[j])
            out_f[j] = np.float32(out_f[j] + wgt * acc_f[j])


@njit(**_JIT)
def run_months(m0, m1, T, H, dh, has_dh, swe, props, k_frozen, log_k_ratio, f_res, width, dz,
               lw, t_sub, sf, days, density, k_snow, n_thaw, ddf, steps, q_bottom,
               stl, liquid, swe_out, depth_out, melt_out, flux_out, record, profile, do_profile):
    """Months ``m0 .. m1 - 1`` of :func:`permaplug.demo.emulator.run`; state updated in place.

    ``T``, ``H`` and ``dh`` (the last step's enthalpy change: Newton starts from ``H + dh``
    once ``has_dh[0]``) are ``(nz, ncell)``; ``swe`` (ncell,) mm; ``t_sub`` (nt * steps, ncell)
    the sub-monthly air temperature; ``sf`` (nt, ncell) snowfall mm per month; ``lw`` (4, nz)
    layer weights; ``density``, ``k_snow``, ``n_thaw``, ``ddf`` (ncell,). With ``record`` the
    monthly means are accumulated into the float32 outputs ``stl``/``liquid`` (nt, 4, ncell) and
    the others (nt, ncell), in the reference's order; with ``do_profile`` the monthly mean
    temperatures of the top face and of every volume into ``profile`` (nt, nz + 1, ncell).
    """
    nz, ncell = T.shape
    drive = np.empty(ncell)
    r_snow = np.empty(ncell)
    depth = np.empty(ncell)
    melt = np.empty(ncell)
    h = np.empty_like(H)
    t = np.empty_like(H)
    slope = np.empty_like(H)
    g = np.empty((nz - 1, ncell))
    g_top = np.empty(ncell)
    src_top = np.empty(ncell)
    acc_t = np.empty(ncell)
    acc_f = np.empty(ncell)
    wgt = 1.0 / steps
    for m in range(m0, m1):
        dt_days = days[m] / steps
        dt = dt_days * heat.SECONDS_PER_DAY
        for s in range(steps):
            row = m * steps + s
            for j in range(ncell):
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
            if not has_dh[0]:
                h[:, :] = H
            advance(T, H, h, dh, has_dh[0], t, slope, props, k_frozen, log_k_ratio, f_res,
                    width, dz, dt, drive, r_snow, q_bottom, NEWTON, TOL, g, g_top, src_top)
            _finish(T, H, h, dh, t, f_res, width, lw, wgt, m, record, stl, liquid, acc_t, acc_f)
            has_dh[0] = True
            if do_profile:
                for j in range(ncell):
                    flux = g_top[j] * (drive[j] - T[0, j])
                    profile[m, 0, j] += wgt * (drive[j] - flux * r_snow[j])
                for i in range(nz):
                    pi, Ti = profile[m, i + 1], T[i]
                    for j in range(ncell):
                        pi[j] += wgt * Ti[j]
            if not record:
                continue
            for j in range(ncell):
                flux = g_top[j] * (drive[j] - T[0, j])
                swe_out[m, j] = np.float32(swe_out[m, j] + wgt * swe[j])
                depth_out[m, j] = np.float32(depth_out[m, j] + wgt * depth[j])
                melt_out[m, j] = np.float32(melt_out[m, j] + melt[j])
                flux_out[m, j] = np.float32(flux_out[m, j] + wgt * flux)
