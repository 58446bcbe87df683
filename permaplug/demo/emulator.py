"""The soil-temperature emulator: snow pack + 1-D heat conduction driven by monthly forcing.

Each month is split into ``steps_per_month`` implicit steps (default 4, about a week). Air
temperature is interpolated linearly between month centres, then shifted so every month keeps
its mean. Snow: snowfall accumulates as water equivalent; melt is ``DDF x max(T, 0)`` per day
(degree-day factor 3 mm K-1 d-1); depth = SWE / density; the pack is a thermal resistance
``depth / k_snow`` (Sturm et al. 1997 conductivity from density) between the air and the ground.
Snow-free ground is driven by ``n x T`` in thaw (``n`` the summer surface factor). A geothermal
flux of 0.06 W m-2 enters at 20 m.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from permaplug.core import progress as bars
from permaplug.core import schema
from permaplug.demo import heat

DDF = 3.0  # mm K-1 day-1, degree-day melt factor
Q_GEOTHERMAL = 0.06  # W m-2
STEPS_PER_MONTH = 4


def snow_conductivity(density: np.ndarray) -> np.ndarray:
    """Snow thermal conductivity (W m-1 K-1) from density (kg m-3), Sturm et al. (1997)."""
    r = np.asarray(density) / 1000.0
    return np.where(r < 0.156, 0.023 + 0.234 * r, 0.138 - 1.01 * r + 3.233 * r**2)


@dataclass
class State:
    """Emulator state: soil ``T`` and ``H`` (nz, ncell), snow water equivalent ``swe`` (ncell,)
    in mm."""

    T: np.ndarray
    H: np.ndarray
    swe: np.ndarray

    def tile(self, n: int) -> State:
        """The state repeated ``n`` times along cells (to run several scenarios at once)."""
        return State(np.tile(self.T, (1, n)), np.tile(self.H, (1, n)), np.tile(self.swe, n))

    def cells(self, part: slice) -> State:
        """The state of cells ``part`` (views)."""
        return State(self.T[:, part], self.H[:, part], self.swe[part])


@dataclass
class Surface:
    """Per-cell surface parameters: snow ``density`` kg m-3, summer factor ``n_thaw`` (ncell,);
    ``snow_k_factor`` (multiplier on the Sturm et al. conductivity) and ``ddf`` (melt factor,
    mm K-1 d-1), scalars or (ncell,)."""

    density: np.ndarray
    n_thaw: np.ndarray
    snow_k_factor: np.ndarray | float = 1.0
    ddf: np.ndarray | float = DDF

    def per_cell(self, name: str) -> np.ndarray:
        """Field ``name`` as an (ncell,) array."""
        return np.broadcast_to(np.asarray(getattr(self, name), float), self.density.shape)

    def tile(self, n: int) -> Surface:
        return Surface(*(np.tile(self.per_cell(k), n) for k in Surface.__dataclass_fields__))

    def cells(self, part: slice) -> Surface:
        """The parameters of cells ``part`` (per-cell arrays)."""
        return Surface(*(self.per_cell(k)[part] for k in Surface.__dataclass_fields__))


@dataclass
class MonthlyOutput:
    """Monthly means (float32): ``stl`` (nt, 4, ncell) degC layer means, ``liquid``
    (nt, 4, ncell) liquid share of soil water, ``swe`` mm and ``snow_depth`` m (nt, ncell),
    ``melt`` mm per month (nt, ncell), ``ground_flux`` W m-2 (nt, ncell)."""

    stl: np.ndarray
    liquid: np.ndarray
    swe: np.ndarray
    snow_depth: np.ndarray
    melt: np.ndarray
    ground_flux: np.ndarray

    def months(self, part: slice) -> MonthlyOutput:
        """Months ``part`` (positions along time; views)."""
        return MonthlyOutput(*(getattr(self, k)[part] for k in MonthlyOutput.__dataclass_fields__))


def substep_temperature(t_month: np.ndarray, steps: int, start: int = 0,
                        stop: int | None = None) -> np.ndarray:
    """Sub-monthly air temperature ((stop - start) * steps, ncell) of months ``start`` to
    ``stop - 1`` (default: all) from the monthly means ``t_month`` (nt, ncell).

    Linear between month centres (held flat beyond the first and last), then each month's
    steps are shifted so that their mean equals the monthly mean. Each month depends only on
    its neighbours, so computing the series a stretch at a time (what the emulator does, to
    keep memory small) gives the same numbers to the last bit.
    """
    nt = t_month.shape[0]
    stop = nt if stop is None else stop
    x = (np.arange(start * steps, stop * steps) + 0.5) / steps - 0.5  # months, 0 = month 0's centre
    i0 = np.clip(np.floor(x).astype(int), 0, nt - 1)
    i1 = np.clip(i0 + 1, 0, nt - 1)
    w = np.clip(x - np.floor(x), 0, 1)[:, None]
    t = (1 - w) * t_month[i0] + w * t_month[i1]
    t = t.reshape(stop - start, steps, -1)
    t += (t_month[start:stop] - t.mean(axis=1))[:, None, :]
    return t.reshape((stop - start) * steps, -1)


def _output_arrays(nt: int, ncell: int, out: MonthlyOutput | None) -> MonthlyOutput:
    """``out`` checked against the shapes of ``nt`` months of ``ncell`` cells (float32), or new
    zero-filled arrays (monthly means in float32, as the files: half the memory)."""
    shapes = {"stl": (nt, schema.N_LAYERS, ncell), "liquid": (nt, schema.N_LAYERS, ncell)}
    if out is None:
        return MonthlyOutput(*(np.zeros(shapes.get(k, (nt, ncell)), np.float32)
                               for k in MonthlyOutput.__dataclass_fields__))
    for k in MonthlyOutput.__dataclass_fields__:
        a = getattr(out, k)
        want = shapes.get(k, (nt, ncell))
        if a.shape != want or a.dtype != np.float32 or not a.flags.c_contiguous:
            raise ValueError(f"out.{k}: expected a C-contiguous float32 array of shape {want}, "
                             f"not {a.dtype} {a.shape}")
    return out


def initial_state(col: heat.Column, t_mean: np.ndarray) -> State:
    """A conductive steady state: ``t_mean + 2.5 K`` at the surface (typical snow offset) with
    the geothermal gradient below; no snow."""
    k = col.k_frozen
    z_faces = col.faces
    resist = np.cumsum(np.diff(z_faces)[:, None] / k, axis=0) - 0.5 * np.diff(z_faces)[:, None] / k
    T = (t_mean + 2.5)[None, :] + Q_GEOTHERMAL * resist
    return State(T=T, H=heat.enthalpy(T, col), swe=np.zeros(t_mean.size))


MONTHS_PER_CALL = 12
"""Months each call of the compiled loop runs (the progress bar moves a year at a time)."""

ENGINES = ("compiled", "numpy")
"""``compiled``: :mod:`permaplug.demo.heat_kernel` (numba, the default); ``numpy``: the NumPy
reference (:func:`permaplug.demo.heat.step`), same results within rounding, ~10-20x slower."""


def run(state: State, col: heat.Column, surface: Surface, t2m: np.ndarray, sf: np.ndarray,
        days: np.ndarray, steps_per_month: int = STEPS_PER_MONTH, record: bool = True,
        progress: bool = False, desc: str = "emulator", profile: np.ndarray | None = None,
        engine: str = "compiled", out: MonthlyOutput | None = None
        ) -> tuple[State, MonthlyOutput | None]:
    """Run the emulator over ``nt`` months of forcing; returns the final state and monthly means.

    ``t2m`` degC and ``sf`` (snowfall, mm per month) are (nt, ncell); ``days`` (nt,) the days in
    each month. With ``record=False`` (spin-up) nothing is accumulated. ``profile``, if given an
    (nt, nz + 1, ncell) array, receives the monthly mean temperature (degC) of the ground
    surface (row 0: the top face, under the snow) and of every volume centre (rows 1..nz). ``engine`` is one of
    :data:`ENGINES`; both advance all cells of the block together with the same physics and the
    same Newton stopping rule (each cell stops at its own convergence, so its result does not
    depend on the other cells of the block). ``out``: zero-filled arrays of
    :class:`MonthlyOutput`'s shapes to record into (e.g. shared memory a parent process reads);
    default: new arrays.
    """
    nt, ncell = t2m.shape
    if record:
        out = _output_arrays(nt, ncell, out)
    if engine == "compiled":
        return _run_compiled(state, col, surface, t2m, sf, days, steps_per_month, record,
                             progress, desc, profile, out)
    if engine != "numpy":
        raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    k_snow = snow_conductivity(surface.density) * surface.snow_k_factor
    lw = heat.layer_weights(col.faces, schema.LAYERS)  # (4, nz)
    T, H, swe = state.T, state.H, state.swe.copy()
    out = out if record else None
    dh = None  # last step's enthalpy change: Newton starts from its extrapolation
    bar = tqdm(total=nt, desc=desc, unit="month", disable=bars.disabled(progress), leave=False)
    for m in range(nt):
        dt_days = days[m] / steps_per_month
        dt = dt_days * heat.SECONDS_PER_DAY
        t_sub = substep_temperature(t2m, steps_per_month, m, m + 1)
        for s in range(steps_per_month):
            ta = t_sub[s]
            swe = swe + sf[m] / steps_per_month
            melt = np.minimum(swe, surface.ddf * np.maximum(ta, 0.0) * dt_days)
            swe = swe - melt
            depth = swe / surface.density
            r_snow = depth / k_snow
            drive = np.where((depth < 0.01) & (ta > 0), surface.n_thaw * ta, ta)
            guess = None if dh is None else H + dh
            H_old = H
            T, H, flux = heat.step(T, H, col, dt, drive, r_snow, Q_GEOTHERMAL, h_guess=guess)
            dh = H - H_old
            if profile is not None:
                w = 1.0 / steps_per_month
                profile[m, 0] += w * (drive - flux * r_snow)  # top face: drive minus snow's drop
                profile[m, 1:] += w * T
            if out is not None:
                w = 1.0 / steps_per_month
                out.stl[m] += w * (lw @ T)
                out.liquid[m] += w * (lw @ heat.liquid_fraction(T, col))
                out.swe[m] += w * swe
                out.snow_depth[m] += w * depth
                out.melt[m] += melt
                out.ground_flux[m] += w * flux
        bar.update()
    bar.close()
    return State(T, H, swe), out


def _run_compiled(state: State, col: heat.Column, surface: Surface, t2m: np.ndarray,
                  sf: np.ndarray, days: np.ndarray, steps_per_month: int, record: bool,
                  progress: bool, desc: str, profile: np.ndarray | None,
                  out: MonthlyOutput | None) -> tuple[State, MonthlyOutput | None]:
    """:func:`run` through :func:`permaplug.demo.heat_kernel.run_months`; the sub-monthly air
    temperature is made a call's months at a time (no (nt * steps, ncell) array)."""
    from permaplug.demo import heat_kernel as K

    nt, ncell = t2m.shape
    k_snow = snow_conductivity(surface.density) * surface.snow_k_factor  # as the reference
    k_snow = np.ascontiguousarray(np.broadcast_to(np.asarray(k_snow, float), (ncell,)))
    lw = np.ascontiguousarray(heat.layer_weights(col.faces, schema.LAYERS))  # (4, nz)
    p = K.column_props(col)
    T = np.array(state.T, dtype=float, order="C")
    H = np.array(state.H, dtype=float, order="C")
    swe = np.array(state.swe, dtype=float)
    dh = np.zeros_like(H)
    has_dh = np.zeros(1, dtype=np.bool_)
    if out is None:  # not recording: empty arrays of the kernel's types
        out = MonthlyOutput(*(np.zeros((0, 0, 0), np.float32) for _ in range(2)),
                            *(np.zeros((0, 0), np.float32) for _ in range(4)))
    prof = np.zeros((0, 0, 0)) if profile is None else profile
    if profile is not None and profile.shape != (nt, col.faces.size, ncell):
        raise ValueError(f"profile: expected shape {(nt, col.faces.size, ncell)}, "
                         f"not {profile.shape}")
    per_cell = lambda a: np.ascontiguousarray(np.broadcast_to(np.asarray(a, float), (ncell,)))
    args = (np.ascontiguousarray(sf, dtype=float), np.asarray(days, float),
            per_cell(surface.density), k_snow, per_cell(surface.n_thaw), per_cell(surface.ddf),
            int(steps_per_month), float(Q_GEOTHERMAL), *(
                getattr(out, k) for k in MonthlyOutput.__dataclass_fields__), bool(record),
            prof, profile is not None)
    bar = tqdm(total=nt, desc=desc, unit="month", disable=bars.disabled(progress), leave=False)
    for m in range(0, nt, MONTHS_PER_CALL):  # a tile stays in cache through these months
        m1 = min(m + MONTHS_PER_CALL, nt)
        t_sub = np.ascontiguousarray(substep_temperature(t2m, steps_per_month, m, m1),
                                     dtype=float)
        K.run_months(m, m1, T, H, dh, has_dh, swe, p["props"], p["k_frozen"],
                     p["log_k_ratio"], p["f_res"], p["width"], p["dz"], lw, t_sub, *args)
        bar.update(m1 - m)
    bar.close()
    final = State(T, H, swe)
    return final, (out if record else None)
