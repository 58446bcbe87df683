"""The emulator checked against reality: Toolik soil temperatures, and a calibration of its
uncertain parameters.

The emulator runs as one column at the Toolik Field Station (68.63 N, 149.60 W, 760 m; band 4),
driven by the real ERA5 monthly forcing of the bundled ``Toolik`` point (68.5 N, 210.5 E; t2m,
dew point, precipitation), with the demo's emulated soil at that place (seed 0 static fields).
Its monthly mean temperatures at the ground surface and at the volume centres are interpolated
linearly in depth to the sensor depths (0, 5, 10, 100 cm) and compared with the observed monthly
means (the station source's reader and coverage rule, :mod:`permaplug.data.station`: a month
counts only where at least 80 % of its expected readings exist).

Scores are per depth, on the **monthly climatology** of the compared years (the mean of each
calendar month over the years where the month was observed, the emulator sampled at the same
months): ``bias`` (mean of emulator minus observed over the calendar months), ``rmse`` and
``max_abs`` (largest calendar-month difference).

The calibration (:func:`calibrate`) searches the parameters of
:data:`permaplug.demo.params.RANGES` inside their published ranges with
``scipy.optimize.differential_evolution`` on 1989-2012 only; each generation runs all its
candidate parameter sets side by side as columns of one emulator run. 2013-2021 is left for
validation. ``permaplug demo calibrate`` runs it on the bundled Toolik record (or ``--obs FILE``)
and prints the before/after table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from permaplug.core.errors import DataError
from permaplug.demo import emulator as E
from permaplug.demo.forcing import CellForcing, read_era5_points
from permaplug.demo.params import RANGES, EmulatorParams
from permaplug.demo.simulate import SPINUP_STEPS_PER_MONTH, surface_for
from permaplug.demo.soil import soil_from_statics, static_fields
from permaplug.demo.surface import snowfall_share

TOOLIK_LAT, TOOLIK_LON = 68.63, -149.60
TOOLIK_POINT = "Toolik"
SENSOR_DEPTHS_CM: tuple[int, ...] = (0, 5, 10, 100)
EDC_COLUMNS = {"soil1_moss": 0, "soil1_5cm": 5, "soil1_10cm": 10, "soil1_100cm": 100}
CALIBRATION_YEARS = (1989, 2012)
VALIDATION_YEARS = (2013, 2021)
MIN_COVERAGE = 0.8
DEPTH_WEIGHTS = {0: 1.0, 5: 1.0, 10: 1.0, 100: 0.5}
"""Weights of the depths in the calibration objective: the 100 cm sensor reads +1 ... +5 degC
every summer (a known caveat of the record), so it counts half."""
CALIBRATED = ("snow_density_tundra", "snow_k_factor", "ddf", "n_thaw_mineral",
              "organic_thickness", "k_organic_thawed", "k_organic_frozen", "organic_theta")


# --- observations ------------------------------------------------------------------------------
def bundled_record() -> Path:
    """The Toolik EDC 3-hour record bundled with permaplug (see resources/real/PROVENANCE.md)."""
    from permaplug.demo.forcing import real_dir

    return real_dir() / "toolik_soil_temperature" / "3-hour_data.csv.gz"


def read_edc_monthly(path: Path, min_coverage: float = MIN_COVERAGE) -> pd.DataFrame:
    """Monthly mean soil temperatures (degC) from a Toolik EDC 3-hour export.

    Read by the station source's own functions (:func:`permaplug.data.station.read_edc` and
    :func:`~permaplug.data.station.monthly_means`: a month's mean only where at least
    ``min_coverage`` of its expected readings hold a value, else NaN). Returns a frame indexed
    by month start with one column per sensor depth in cm (0, 5, 10, 100).
    """
    from permaplug.data.station import monthly_means, read_edc

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the EDC soil-temperature export ({exc})") from exc
    missing = [c for c in EDC_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: not a Toolik EDC soil export (no column {missing[0]!r})")
    ds = monthly_means(read_edc(path, EDC_COLUMNS, site=TOOLIK_POINT), min_coverage)
    out = ds["tsoil"].sel(site=TOOLIK_POINT).to_pandas()
    out.columns = [int(c) for c in out.columns]
    out.index = pd.DatetimeIndex(out.index, name="time")
    return out[list(SENSOR_DEPTHS_CM)]


# --- the emulator at Toolik --------------------------------------------------------------------
def toolik_forcing() -> CellForcing:
    """The real ERA5 monthly forcing of the bundled Toolik point, 1940-2023, as one cell."""
    pts = read_era5_points()
    names = list(pts["name"].values)
    if TOOLIK_POINT not in names:
        raise DataError(f"ERA5 points: no {TOOLIK_POINT!r} point")
    p = pts.isel(point=names.index(TOOLIK_POINT))
    time = pd.DatetimeIndex(p["time"].values)
    return CellForcing(time, p["t2m"].values[:, None], p["d2m"].values[:, None],
                       p["tp"].values[:, None])


def _stack(params: list[EmulatorParams]) -> EmulatorParams:
    """One parameter set whose fields are (n,) arrays, one entry per set."""
    keys = EmulatorParams.__dataclass_fields__
    return EmulatorParams(**{k: np.array([getattr(p, k) for p in params]) for k in keys})


def sensor_weights(faces: np.ndarray, depths_cm=SENSOR_DEPTHS_CM) -> np.ndarray:
    """(ndepth, nz + 1) weights interpolating a profile (surface face, volume centres) linearly in
    depth to the sensor depths."""
    z = np.concatenate([[0.0], 0.5 * (faces[1:] + faces[:-1])])
    eye = np.eye(z.size)
    return np.stack([[np.interp(d / 100.0, z, eye[i]) for i in range(z.size)] for d in depths_cm])


def run_toolik(params: list[EmulatorParams], start: str = "1988-01", end: str = "2021-12",
               steps_per_month: int = E.STEPS_PER_MONTH) -> pd.DataFrame:
    """Monthly emulator temperatures at the sensor depths for each parameter set.

    Spin-up as the demo's (a conductive steady state from the 1940-1969 mean, 1940-1959 cycled
    once, then the real forcing at 2 steps per month up to ``start``), then ``start``..``end`` at
    ``steps_per_month``. All sets run side by side as columns. Returns a frame indexed by
    (time, depth cm) with one column per parameter set.
    """
    forcing = toolik_forcing()
    n = len(params)
    stacked = _stack(params)
    lat = np.full(n, TOOLIK_LAT)
    statics = static_fields(lat, np.full(n, TOOLIK_LON), seed=0)
    soil = soil_from_statics(statics, stacked)
    col = soil.column
    surface = surface_for(lat, soil, stacked)
    tile = lambda a: np.repeat(a, n, axis=1)
    state = E.initial_state(col, np.repeat(forcing.sel("1940-01", "1969-12").t2m.mean(), n))
    before = (pd.Timestamp(start) - pd.DateOffset(months=1)).strftime("%Y-%m")
    for a, b, steps in (("1940-01", "1959-12", SPINUP_STEPS_PER_MONTH),
                        ("1940-01", before, SPINUP_STEPS_PER_MONTH)):
        f = forcing.sel(a, b)
        state, _ = E.run(state, col, surface, tile(f.t2m), tile(f.tp * snowfall_share(f.t2m)),
                         f.time.days_in_month.to_numpy(float), steps, record=False)
    f = forcing.sel(start, end)
    prof = np.zeros((f.time.size, col.faces.size, n))
    E.run(state, col, surface, tile(f.t2m), tile(f.tp * snowfall_share(f.t2m)),
          f.time.days_in_month.to_numpy(float), steps_per_month, record=False, profile=prof)
    at = np.einsum("dz,tzn->tdn", sensor_weights(col.faces), prof)
    index = pd.MultiIndex.from_product([f.time, SENSOR_DEPTHS_CM], names=["time", "depth_cm"])
    return pd.DataFrame(at.reshape(-1, n), index=index)


# --- scores ------------------------------------------------------------------------------------
@dataclass
class DepthScore:
    """Monthly-climatology scores at one depth (K); ``months``: observed months compared."""

    depth_cm: int
    bias: float
    rmse: float
    max_abs: float
    months: int


def climatology_scores(sim: pd.Series, obs: pd.DataFrame, years: tuple[int, int]
                       ) -> list[DepthScore]:
    """Scores of one emulator run ``sim`` ((time, depth) Series) against ``obs`` (monthly means,
    one column per depth) over ``years`` (inclusive), on observed months only."""
    out = []
    for d in obs.columns:
        o = obs[d]
        o = o[(o.index.year >= years[0]) & (o.index.year <= years[1])].dropna()
        if o.empty:
            continue
        s = sim.xs(d, level="depth_cm").reindex(o.index)
        diff = s.groupby(o.index.month).mean() - o.groupby(o.index.month).mean()
        out.append(DepthScore(int(d), float(diff.mean()), float(np.sqrt((diff**2).mean())),
                              float(diff.abs().max()), int(o.size)))
    return out


def objective(sim: pd.DataFrame, obs: pd.DataFrame, years: tuple[int, int]) -> np.ndarray:
    """Weighted mean of squared climatology RMSEs over depths (K2), one per column of ``sim``."""
    out = np.empty(sim.shape[1])
    for j in range(sim.shape[1]):
        scores = climatology_scores(sim.iloc[:, j], obs, years)
        w = np.array([DEPTH_WEIGHTS.get(s.depth_cm, 1.0) for s in scores])
        out[j] = np.sum(w * np.array([s.rmse for s in scores]) ** 2) / w.sum()
    return out


# --- calibration -------------------------------------------------------------------------------
@dataclass
class Calibration:
    """Result of :func:`calibrate`: the parameters before and after, the optimiser's report."""

    before: EmulatorParams
    after: EmulatorParams
    objective_before: float
    objective_after: float
    columns: int
    message: str


def calibrate(obs: pd.DataFrame, start: EmulatorParams | None = None, maxiter: int = 25,
              popsize: int = 8, seed: int = 0, names: tuple[str, ...] = CALIBRATED,
              years: tuple[int, int] = CALIBRATION_YEARS, steps_per_month: int = E.STEPS_PER_MONTH
              ) -> Calibration:
    """Fit ``names`` inside :data:`RANGES` to ``obs`` over ``years`` (differential evolution).

    The budget is ``(maxiter + 1) x popsize x len(names)`` emulator columns, run one generation
    at a time as one vectorised emulator run; no gradient polishing (each would cost more
    emulator runs than the small budget allows).
    """
    from scipy.optimize import differential_evolution

    start = start or EmulatorParams()
    bounds = [RANGES[k][:2] for k in names]
    sim_end = f"{years[1]}-12"

    def sets(x: np.ndarray) -> list[EmulatorParams]:  # x (nparam, S)
        x = np.atleast_2d(np.asarray(x).T)
        return [start.with_values(**dict(zip(names, map(float, row)))) for row in x]

    columns = [0]

    def f(x: np.ndarray) -> np.ndarray:
        cands = sets(x)
        columns[0] += len(cands)
        sim = run_toolik(cands, start=f"{years[0]}-01", end=sim_end,
                         steps_per_month=steps_per_month)
        return objective(sim, obs, years)

    x0 = np.clip([getattr(start, k) for k in names], *np.array(bounds).T)
    res = differential_evolution(f, bounds, maxiter=maxiter, popsize=popsize, seed=seed,
                                 polish=False, vectorized=True, updating="deferred", x0=x0,
                                 tol=1e-3)
    after = sets(res.x[:, None])[0]
    before_obj = float(f(x0[:, None])[0])
    return Calibration(start, after, before_obj, float(res.fun), columns[0], str(res.message))

