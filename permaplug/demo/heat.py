"""1-D heat conduction with freezing and thawing: implicit enthalpy scheme, vectorised over cells.

The column is a stack of finite volumes (faces :data:`FACES`, metres, 0 at the ground surface,
positive down). Every ERA5-Land layer boundary (0.07, 0.28, 1.00, 2.89 m) is a face, so layer
values are exact thickness-weighted means of the volumes inside each layer. The bottom face is
20 m deep and receives a geothermal heat flux.

Soil water (``theta`` m3 m-3) freezes over a range: its liquid share ``f(T)`` is 1 above 0 degC,
falls linearly to ``f_res`` at ``-w`` degC and stays there below (the residual unfrozen water).
The volumetric enthalpy (J m-3, reference: frozen at 0 degC) is then piecewise linear::

    H(T) = Cu T + rho_w L theta                                  T >= 0
    H(T) = Cf T + rho_w L theta [f_res + (1 - f_res)(1 + T/w)]  -w <= T < 0
    H(T) = Cf T + rho_w L theta f_res                            T < -w

with ``Cu = Cs + theta Cw`` and ``Cf = Cs + theta Ci`` the thawed and frozen heat capacities.
The large capacity of the freezing range holds the ground near 0 degC while latent heat is
exchanged (the autumn "zero curtain"). Each time step solves the implicit (backward Euler)
balance ``dz (H_new - H_old) / dt = div(k grad T(H_new))`` by Newton's method in the enthalpy
(``T(H)`` is monotone and Lipschitz, so this converges robustly through phase change); it
stops when the temperatures change by less than ``tol``. The step's energy error is the final
Newton residual (the tests check the budget closes within 1 %; measured ~1e-14). Arrays are
``(nz, ncell)``: depth first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FACES: np.ndarray = np.array([
    0.0, 0.035, 0.07, 0.15, 0.28, 0.50, 0.75, 1.00, 1.40, 1.90, 2.40, 2.89, 3.60, 4.50, 7.00,
    11.0, 20.0,
])
"""Volume faces in metres below the surface (ERA5-Land layer boundaries are faces)."""

C_WATER = 4.18e6  # J m-3 K-1
C_ICE = 1.93e6  # J m-3 K-1 (per volume of water equivalent)
RHO_L = 1000.0 * 3.34e5  # J m-3: latent heat of fusion per m3 of water
K_WATER, K_ICE, K_AIR = 0.57, 2.2, 0.025  # W m-1 K-1
SECONDS_PER_DAY = 86400.0


@dataclass
class Column:
    """Thermal properties of ``ncell`` soil columns; every array is ``(nz, ncell)``.

    ``c_solid`` J m-3 K-1 (solid part per bulk volume), ``theta`` total water m3 m-3,
    ``k_thawed``/``k_frozen`` W m-1 K-1 (bulk conductivity with all water liquid / frozen),
    ``width`` K (freezing width), ``f_res`` (unfrozen share far below 0 degC).
    """

    c_solid: np.ndarray
    theta: np.ndarray
    k_thawed: np.ndarray
    k_frozen: np.ndarray
    width: np.ndarray
    f_res: np.ndarray
    faces: np.ndarray = field(default_factory=lambda: FACES.copy())

    def __post_init__(self) -> None:
        th = self.theta
        self.c_u = self.c_solid + th * C_WATER  # thawed heat capacity
        self.c_f = self.c_solid + th * C_ICE  # frozen heat capacity
        self.c_m = self.c_f + RHO_L * th * (1.0 - self.f_res) / self.width  # freezing range
        self.h0 = RHO_L * th  # H at 0 degC
        self.h_res = self.h0 * self.f_res  # latent heat still held below -w
        self.h1 = -self.c_f * self.width + self.h_res  # H at -w degC
        self.log_k_ratio = np.log(self.k_thawed / self.k_frozen)
        self.inv_c_u, self.inv_c_f, self.inv_c_m = 1 / self.c_u, 1 / self.c_f, 1 / self.c_m

    @property
    def dz(self) -> np.ndarray:
        """Volume thicknesses (nz,) in m."""
        return np.diff(self.faces)

    @property
    def z(self) -> np.ndarray:
        """Volume centre depths (nz,) in m."""
        return 0.5 * (self.faces[1:] + self.faces[:-1])

    @property
    def ncell(self) -> int:
        return self.theta.shape[1]

    def tile(self, n: int) -> Column:
        """The columns repeated ``n`` times along cells (to run several scenarios at once)."""
        rep = lambda a: np.tile(a, (1, n))
        return Column(rep(self.c_solid), rep(self.theta), rep(self.k_thawed),
                      rep(self.k_frozen), rep(self.width), rep(self.f_res), self.faces)

    def cells(self, part: slice) -> Column:
        """The columns of cells ``part`` (views)."""
        return Column(self.c_solid[:, part], self.theta[:, part], self.k_thawed[:, part],
                      self.k_frozen[:, part], self.width[:, part], self.f_res[:, part],
                      self.faces)


def liquid_fraction(T: np.ndarray, col: Column) -> np.ndarray:
    """Liquid share of the soil water at ``T`` degC (1 above 0 degC, ``f_res`` below ``-w``)."""
    return col.f_res + (1.0 - col.f_res) * np.clip(1.0 + T / col.width, 0.0, 1.0)


def enthalpy(T: np.ndarray, col: Column) -> np.ndarray:
    """Volumetric enthalpy H(T) in J m-3 (reference: frozen at 0 degC), shape of ``T``."""
    return np.where(T >= 0.0, col.c_u, col.c_f) * T + col.h0 * liquid_fraction(T, col)


def temperature(H: np.ndarray, col: Column) -> tuple[np.ndarray, np.ndarray]:
    """Invert H (J m-3) exactly: temperature (degC) and dT/dH (K m3 J-1), shapes of ``H``."""
    thawed = H >= col.h0
    deep = H < col.h1
    slope = np.where(thawed, col.inv_c_u, np.where(deep, col.inv_c_f, col.inv_c_m))
    t = (H - np.where(deep, col.h_res, col.h0)) * slope
    return t, slope


def conductivity(T: np.ndarray, col: Column) -> np.ndarray:
    """Bulk conductivity (W m-1 K-1): geometric blend of thawed and frozen by liquid share."""
    f = liquid_fraction(T, col)
    return col.k_frozen * np.exp(f * col.log_k_ratio)


def column_energy(H: np.ndarray, col: Column) -> np.ndarray:
    """Column enthalpy per unit area (J m-2) from volumetric enthalpy ``H`` (nz, ncell)."""
    return np.sum(H * col.dz[:, None], axis=0)


def _solve_tridiagonal(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Solve tridiagonal systems along axis 0 for every column at once (Thomas algorithm).

    ``a`` sub-diagonal (a[0] unused), ``b`` diagonal, ``c`` super-diagonal (c[-1] unused),
    ``d`` right-hand side; all ``(nz, ncell)``. The matrices are diagonally dominant
    (conduction plus positive capacity), so no pivoting is needed.
    """
    n = b.shape[0]
    cp = np.empty_like(b)
    dp = np.empty_like(b)
    m = 1.0 / b[0]
    cp[0] = c[0] * m
    dp[0] = d[0] * m
    for i in range(1, n):
        m = 1.0 / (b[i] - a[i] * cp[i - 1])
        cp[i] = c[i] * m
        dp[i] = (d[i] - a[i] * dp[i - 1]) * m
    x = dp
    for i in range(n - 2, -1, -1):
        x[i] -= cp[i] * x[i + 1]
    return x


def step(T: np.ndarray, H: np.ndarray, col: Column, dt: float, t_surface: np.ndarray,
         r_surface: np.ndarray, q_bottom: np.ndarray | float, newton: int = 8, tol: float = 1e-3,
         h_guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance one implicit, energy-conserving step of ``dt`` seconds.

    ``T`` (nz, ncell) degC and ``H`` (nz, ncell) J m-3 are the state (``T = T(H)``). The
    surface boundary is a resistance ``r_surface`` (m2 K W-1, e.g. the snow pack; ``inf`` =
    insulated) to the driving temperature ``t_surface`` (ncell,) degC; ``q_bottom`` W m-2
    enters through the bottom face (geothermal flux, >0 warms). Conductivity is lagged (taken at
    the old temperatures). ``h_guess`` (e.g. an extrapolation of the previous steps) starts
    Newton's iterations (default: ``H``); each cell iterates until none of its temperatures
    changes by ``tol`` K or more (at most ``newton`` times), so a cell's result never depends
    on the other cells of the block. Returns ``(T_new, H_new, flux_top)``, the last being
    the heat flux into the ground (ncell,) W m-2 over the step.
    """
    dz = col.dz[:, None]
    k = conductivity(T, col)
    g = 1.0 / (0.5 * dz[:-1] / k[:-1] + 0.5 * dz[1:] / k[1:])  # (nz-1, ncell) interface conductance
    g_top = 1.0 / (np.asarray(r_surface, float) + 0.5 * dz[0] / k[0])
    zero = np.zeros((1, T.shape[1]))
    g_up = np.vstack([zero, g])  # conductance to the volume above
    g_dn = np.vstack([g, zero])  # conductance to the volume below
    diag = g_up + g_dn
    diag[0] = diag[0] + g_top
    src = np.zeros_like(T)
    src[0] += g_top * t_surface
    src[-1] += q_bottom
    w = dz / dt

    def net_in(t: np.ndarray) -> np.ndarray:  # heat gained per volume, W m-2
        out = src - diag * t
        out[1:] += g_up[1:] * t[:-1]
        out[:-1] += g_dn[:-1] * t[1:]
        return out

    h = H.copy() if h_guess is None else h_guess
    t, slope = temperature(h, col)
    active = np.ones(T.shape[1], dtype=bool)  # cells still iterating
    for _ in range(newton):
        resid = w * (h - H) - net_in(t)
        sub = np.zeros_like(t)
        sup = np.zeros_like(t)
        sub[1:] = -g_up[1:] * slope[:-1]
        sup[:-1] = -g_dn[:-1] * slope[1:]
        h_new = h + _solve_tridiagonal(sub, w + diag * slope, sup, -resid)
        t_new, slope_new = temperature(h_new, col)
        moved = ~(np.max(np.abs(t_new - t), axis=0) < tol)  # NaN: not converged
        h = np.where(active, h_new, h)
        t = np.where(active, t_new, t)
        slope = np.where(active, slope_new, slope)
        active &= moved
        if not active.any():
            break
    return t, h, g_top * (t_surface - t[0])


def layer_weights(faces: np.ndarray, layers: tuple[tuple[float, float], ...]) -> np.ndarray:
    """(nlayer, nz) weights averaging volumes into layers (thickness-weighted depth means)."""
    dz = np.diff(faces)
    w = np.zeros((len(layers), dz.size))
    for j, (top, bot) in enumerate(layers):
        overlap = np.clip(np.minimum(faces[1:], bot) - np.maximum(faces[:-1], top), 0, None)
        w[j] = overlap / overlap.sum()
    return w
