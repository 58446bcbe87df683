"""The emulator's own response to warmer air: the demo's physics rerun with ``t2m + dK``.

For a demo catalog (its metadata names ``demo_version``, ``seed``, ``resolution_deg``,
``steps_per_month``) the grid, statics, soil and forcing are rebuilt exactly as
:func:`permaplug.demo.simulate.simulate` builds them (its :func:`~permaplug.demo.simulate.setup`
and :func:`~permaplug.demo.simulate.spin_up`), on every land cell. The base run goes on to the
month ``window`` months before the period's start; from there the base and each perturbed
forcing run side by side as stacked columns (the emulator takes ``(time, n)`` arrays): ``dK``
is added to the air temperature of every month from that month to the period's end. The
emulator's snowfall split follows its air temperature (warmer air: more rain, less snow), as
it does in the demo build. A historical period (``scenario`` None) runs on the 2001-2023
reanalysis forcing; a scenario period on that scenario's truth forcing
(:func:`permaplug.demo.forcing.scenario_forcing`, continuing the end-2023 state like the truth
runs).

The base column reproduces the demo's stored soil temperatures up to the solver's stopping rule
(Newton's tolerance, reached by each cell on its own) and float32 storage:
``permaplug.projection.sensitivity`` measures and reports the largest difference.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data.bands import band_weights
from permaplug.demo import emulator as E
from permaplug.demo.forcing import CellForcing, ipsl_box_series, scenario_forcing
from permaplug.demo.grid import DemoGrid, demo_grid
from permaplug.demo.params import params_for
from permaplug.demo.simulate import TRUTH_YEARS, month_days, setup, snowfall, spin_up

DEMO_KEYS = ("demo_version", "seed", "resolution_deg", "steps_per_month")
"""Catalog metadata a demo catalog carries and the rerun needs."""
FIRST_MONTH = "2001-01"
"""First month after the spin-up: a period's perturbation cannot start earlier."""


@dataclass(frozen=True)
class Period:
    """Years ``start``..``end`` (inclusive); ``scenario`` None = the reanalysis years."""

    start: int
    end: int
    scenario: str | None = None

    @property
    def label(self) -> str:
        return f"{self.start}-{self.end}"


def is_demo(metadata: Mapping) -> bool:
    """True when catalog ``metadata`` describes a demo build the emulator can rerun."""
    return all(k in metadata for k in DEMO_KEYS)


def cell_weights(grid: DemoGrid) -> np.ndarray:
    """Band weights (band, ncell) of the land cells, normalised per band: the area weights
    (cos latitude) the ``era5land`` source uses (:func:`permaplug.data.bands.band_weights`)."""
    rows, cols = grid.index
    w = band_weights(grid.lat, grid.lon)[:, rows, cols]
    return w / w.sum(axis=1, keepdims=True)


def band_means(stl: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Band means (nt, band, layer) of cell values ``stl`` (nt, layer, ncell)."""
    return np.einsum("tlc,bc->tbl", stl.astype(float), weights)


def _stacked(state: E.State, col, surface: E.Surface, f: CellForcing, deltas: Sequence[float],
             steps: int, engine: str, progress: bool, desc: str) -> list[np.ndarray]:
    """Soil temperature (nt, layer, ncell) of the base run and each ``t2m + dK`` run."""
    n = len(deltas)
    t2m = [f.t2m + d for d in deltas]
    sf = [snowfall(CellForcing(f.time, t, f.d2m, f.tp)) for t in t2m]
    _, out = E.run(state.tile(n), col.tile(n), surface.tile(n), np.concatenate(t2m, axis=1),
                   np.concatenate(sf, axis=1), month_days(f), steps, record=True,
                   progress=progress, desc=desc, engine=engine)
    return np.split(out.stl, n, axis=-1)


def rerun(metadata: Mapping, periods: Sequence[Period | tuple[int, int, str | None]], window: int,
          deltas: Sequence[float] = (1.0, 3.0, 5.0), progress: bool = True,
          engine: str = "compiled") -> dict[str, xr.DataArray]:
    """Band-mean soil temperature of the emulator, base and perturbed, for each period.

    ``metadata``: the demo catalog's (:data:`DEMO_KEYS`); ``periods``: :class:`Period` or
    ``(start, end, scenario)`` tuples; ``window``: months perturbed before
    each period's start; ``deltas``: K added to the air temperature. Returns ``{period label:
    DataArray (delta_K, time, band, layer) degC}``, ``delta_K`` 0 (the base run) then
    ``deltas``. DataError for a non-demo catalog, a grid that does not match the catalog, or a
    period that starts (less ``window`` months) before 2001.
    """
    if not is_demo(metadata):
        raise DataError("catalog metadata lacks " + ", ".join(
            k for k in DEMO_KEYS if k not in metadata) + ": not a demo build to rerun")
    params = params_for(str(metadata["demo_version"]))
    grid = demo_grid(float(metadata["resolution_deg"]))
    if "land_cells" in metadata and int(metadata["land_cells"]) != grid.ncell:
        raise DataError(f"demo grid at {metadata['resolution_deg']} deg has {grid.ncell} land "
                        f"cells, the catalog says {metadata['land_cells']}")
    steps = int(metadata["steps_per_month"])
    inputs = setup(grid, int(metadata["seed"]), params)
    col, surface = inputs.soil.column, inputs.surface
    weights = cell_weights(grid)
    all_deltas = [0.0, *map(float, deltas)]
    state0 = spin_up(inputs, steps, progress, engine)
    obs = inputs.forcing.sel(FIRST_MONTH, f"{TRUTH_YEARS[0] - 1}-12")
    end_2023 = None
    box = None
    out: dict[str, xr.DataArray] = {}
    for p in (q if isinstance(q, Period) else Period(*q) for q in periods):
        first = pd.Timestamp(f"{p.start}-01-01") - pd.DateOffset(months=window)
        if first < pd.Timestamp(FIRST_MONTH):
            raise DataError(f"period {p.label}: its first window starts {first:%Y-%m}, before "
                            f"the emulator's first output month {FIRST_MONTH}")
        if p.scenario is None:
            state, forcing = state0, obs
        else:
            if end_2023 is None:  # the truth runs' starting state, as simulate() reaches it
                end_2023, _ = E.run(state0, col, surface, obs.t2m, snowfall(obs),
                                    month_days(obs), steps, record=False, progress=progress,
                                    desc="2001-2023", engine=engine)
                box = ipsl_box_series()
            if p.scenario not in box:
                raise DataError(f"scenario {p.scenario!r}: the demo has "
                                f"{', '.join(s for s in box if s != 'historical')}")
            state, forcing = end_2023, scenario_forcing(inputs.forcing, box, p.scenario,
                                                        *TRUTH_YEARS)
        t0 = pd.Timestamp(forcing.time[0])
        if first > t0:
            before = forcing.sel(f"{t0:%Y-%m}", f"{first - pd.DateOffset(months=1):%Y-%m}")
            state, _ = E.run(state, col, surface, before.t2m, snowfall(before),
                             month_days(before), steps, record=False, progress=progress,
                             desc=f"base to {first:%Y-%m}", engine=engine)
        f = forcing.sel(f"{first:%Y-%m}", f"{p.end}-12")
        runs = _stacked(state, col, surface, f, all_deltas, steps, engine, progress,
                        f"{p.label} +{'/'.join(f'{d:g}' for d in deltas)} K")
        keep = f.time >= pd.Timestamp(f"{p.start}-01-01")
        means = np.stack([band_means(r[keep], weights) for r in runs])
        out[p.label] = xr.DataArray(
            means, dims=("delta_K", "time", "band", "layer"),
            coords={"delta_K": all_deltas, "time": f.time[keep].values,
                    "band": np.arange(schema.N_BANDS), "layer": list(schema.TARGETS)},
            name="soil_temperature",
            attrs={"units": "degC", "long_name": "emulator band-mean soil temperature",
                   "forcing": "reanalysis" if p.scenario is None else
                   f"{p.scenario} truth forcing"})
    return out
