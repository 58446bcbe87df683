"""Real forcing for the emulator: ERA5 point series and IPSL-CM5A-MR box means spread over cells.

* Reanalysis side (1940-2023): the 14 real ERA5 points (Climate Reanalyzer exports bundled in
  ``permaplug/resources/real/era5_alaska_points``) cover bands 2-5. A cell in bands 2-5 takes
  the mean of the points in its band, shifted to the cell's latitude with the latitudinal
  gradient measured from all points (per calendar month: a regression of the 1991-2020
  climatology on latitude; precipitation in log space). Cells in bands 0-1 take the mean of
  all points, extrapolated the same way. A smooth, seeded offset field (about +-1 K,
  +-20 % precipitation) adds the spatial variety the 14 points cannot give.
* Model side: the real IPSL-CM5A-MR land-only Alaska box means (``cmip5_alaska_box``,
  historical run1 1850-2005, RCP run1 2006-2099; 2100 extrapolated by the 2080-2099 linear trend
  of each calendar month) spread over model cells with the same gradients.
* Scenario truth forcing (2024-2100): the observed 2001-2023 weather, its trend moved to the
  2023 level, cycled, plus each RCP's change since 2023 (21-year running mean per calendar
  month of the real model series): ``t2m``/``d2m`` additive, precipitation multiplicative.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.demo.soil import smooth_field

IPSL = "IPSL-CM5A-MR"
CLIM_YEARS = (1991, 2020)
OBS_YEARS = (1940, 2023)
MODEL_BASE = (2001, 2023)


def real_dir() -> Path:
    """The package's copies of the real public data (``permaplug/resources/real``)."""
    return Path(str(resources.files("permaplug.resources") / "real"))


@dataclass
class CellForcing:
    """Monthly forcing on cells: ``time`` (nt,) month starts; ``t2m``, ``d2m`` degC and ``tp``
    mm per month, each (nt, ncell)."""

    time: pd.DatetimeIndex
    t2m: np.ndarray
    d2m: np.ndarray
    tp: np.ndarray

    def sel(self, start: str, end: str) -> CellForcing:
        """The months from ``start`` to ``end`` (inclusive, 'YYYY-MM')."""
        keep = (self.time >= pd.Timestamp(start)) & (self.time <= pd.Timestamp(end))
        return CellForcing(self.time[keep], self.t2m[keep], self.d2m[keep], self.tp[keep])

    def cells(self, part: slice) -> CellForcing:
        """The forcing of cells ``part`` (views)."""
        return CellForcing(self.time, self.t2m[:, part], self.d2m[:, part], self.tp[:, part])

    def months(self, part: slice) -> CellForcing:
        """Months ``part`` (positions along time; views)."""
        return CellForcing(self.time[part], self.t2m[part], self.d2m[part], self.tp[part])


@dataclass
class Gradients:
    """Latitudinal gradients per calendar month (12,): ``t2m``/``d2m`` K per degree, ``log_tp``
    per degree; ``lat0`` the mean latitude of the points."""

    t2m: np.ndarray
    d2m: np.ndarray
    log_tp: np.ndarray
    lat0: float


def read_era5_points(folder: Path | None = None):
    """The real ERA5 points (xr.Dataset (time, point): t2m degC, tp mm/month, d2m degC), 1940-2023,
    gaps filled with the point's calendar-month mean.

    The bundled points (``folder`` None) are read once per process (a demo build needs them for
    the forcing and for the model's dew-point depression); each call returns its own copy.
    """
    if folder is None:
        return _bundled_points().copy(deep=True)
    return _read_points(Path(folder))


@lru_cache(maxsize=1)
def _bundled_points():
    """The package's ERA5 points, read once (callers get copies: :func:`read_era5_points`)."""
    return _read_points(real_dir() / "era5_alaska_points")


def _read_points(folder: Path):
    """:func:`read_era5_points` of ``folder``, uncached."""
    from permaplug.plugins.sources.climate_reanalyzer import read_points

    ds = read_points(folder)
    ds = ds.sel(time=slice(f"{OBS_YEARS[0]}-01-01", f"{OBS_YEARS[1]}-12-01"))
    if ds.sizes["time"] != 12 * (OBS_YEARS[1] - OBS_YEARS[0] + 1):
        raise DataError("ERA5 points: expected every month of 1940-2023")
    clim = ds.groupby("time.month").mean("time")
    return ds.groupby("time.month").fillna(clim).drop_vars("month", errors="ignore")


def measure_gradients(points) -> Gradients:
    """Per-calendar-month regression of the points' 1991-2020 climatology on latitude."""
    sub = points.sel(time=slice(f"{CLIM_YEARS[0]}-01-01", f"{CLIM_YEARS[1]}-12-01"))
    clim = sub.groupby("time.month").mean("time")
    lat = points["lat"].values
    x = lat - lat.mean()

    def slope(values: np.ndarray) -> np.ndarray:  # values (12, npoint)
        return (values * x).sum(axis=1) / (x**2).sum()

    return Gradients(t2m=slope(clim["t2m"].values), d2m=slope(clim["d2m"].values),
                     log_tp=slope(np.log(np.maximum(clim["tp"].values, 1.0))),
                     lat0=float(lat.mean()))


def reanalysis_forcing(lat: np.ndarray, lon: np.ndarray, seed: int, points=None
                       ) -> tuple[CellForcing, Gradients]:
    """Monthly t2m, d2m, tp on cells at ``lat``/``lon`` (n,) for 1940-2023 from the real points."""
    pts = read_era5_points() if points is None else points
    grad = measure_gradients(pts)
    time = pd.DatetimeIndex(pts["time"].values)
    month = time.month.values - 1
    p_band = schema.band_of_latitude(pts["lat"].values)
    c_band = schema.band_of_latitude(lat)
    ncell = lat.size
    t2m = np.empty((time.size, ncell))
    d2m = np.empty((time.size, ncell))
    tp = np.empty((time.size, ncell))
    groups = {b: np.flatnonzero(p_band == b) for b in range(schema.N_BANDS)}
    for b in range(schema.N_BANDS):
        cells = np.flatnonzero(c_band == b)
        if not cells.size:
            continue
        members = groups[b] if groups[b].size else np.arange(pts.sizes["point"])
        ref_lat = pts["lat"].values[members].mean()
        dlat = lat[cells] - ref_lat  # (nc,)
        mean = pts.isel(point=members).mean("point")
        t2m[:, cells] = mean["t2m"].values[:, None] + grad.t2m[month][:, None] * dlat
        d2m[:, cells] = mean["d2m"].values[:, None] + grad.d2m[month][:, None] * dlat
        tp[:, cells] = mean["tp"].values[:, None] * np.exp(grad.log_tp[month][:, None] * dlat)
    rng = np.random.default_rng([seed, 1])
    dt = 0.8 * smooth_field(lat, lon, rng)
    t2m += dt
    d2m += dt
    tp *= np.exp(0.18 * smooth_field(lat, lon, rng))
    d2m = np.minimum(d2m, t2m)  # the two gradients differ: never let the dew point pass the air
    return CellForcing(time, t2m, d2m, tp), grad


# --- IPSL-CM5A-MR box means --------------------------------------------------------------------
def _read_box(path: Path, run: str = "run1") -> pd.Series:
    """One ``timeSeriesLO_*`` file: the IPSL-CM5A-MR column of ``run`` as a monthly Series."""
    try:
        head = pd.read_csv(path, nrows=2, header=None)
        table = pd.read_csv(path, skiprows=3, header=None)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read CMIP5 box series ({exc})") from exc
    cols = [i for i in range(1, head.shape[1])
            if head.iloc[0, i] == IPSL and head.iloc[1, i] == run]
    if not cols:
        raise DataError(f"{path}: no {IPSL} {run} column")
    time = pd.to_datetime(table[0].astype(str).str.slice(0, 10))
    return pd.Series(table[cols[0]].astype(float).to_numpy(), index=time)


def _extend_to_2100(s: pd.Series) -> pd.Series:
    """Append the months up to 2100-12 by each calendar month's 2080-2099 linear trend."""
    last = s.index[-1].year
    if last >= 2100:
        return s
    extra = {}
    for m in range(1, 13):
        sub = s[(s.index.month == m) & (s.index.year >= 2080)]
        coef = np.polyfit(sub.index.year, sub.values, 1)
        for y in range(last + 1, 2101):
            extra[pd.Timestamp(year=y, month=m, day=1)] = np.polyval(coef, y)
    return pd.concat([s, pd.Series(extra)]).sort_index()


BOX_PREFIX = "timeSeriesLO_tas_Alaska_Monthly_"


def box_scenarios(folder: Path | None = None) -> list[str]:
    """The scenario experiments of the real box tables (file names
    ``timeSeriesLO_tas_Alaska_Monthly_<experiment>.csv`` other than ``historical``), in forcing
    order (:func:`permaplug.core.scenarios.ordered`). The demo's scenarios are these."""
    from permaplug.core.scenarios import ordered

    folder = folder or real_dir() / "cmip5_alaska_box"
    found = [p.name[len(BOX_PREFIX):-len(".csv")] for p in folder.glob(f"{BOX_PREFIX}*.csv")]
    return ordered(e for e in found if e != "historical")


def ipsl_box_series(folder: Path | None = None) -> dict[str, pd.DataFrame]:
    """Real IPSL-CM5A-MR box means per experiment: columns ``tas`` (degC), ``pr`` (mm/day).

    Keys ``historical`` (1850-2005) and each scenario of :func:`box_scenarios` (2006-2100;
    2100 extrapolated).
    """
    folder = folder or real_dir() / "cmip5_alaska_box"
    out = {}
    for exp in ("historical", *box_scenarios(folder)):
        tas = _read_box(folder / f"timeSeriesLO_tas_Alaska_Monthly_{exp}.csv") - 273.15
        pr = _read_box(folder / f"timeSeriesLO_pr_Alaska_Monthly_{exp}.csv")
        frame = pd.DataFrame({"tas": tas, "pr": pr})
        if exp != "historical":
            frame = pd.DataFrame({k: _extend_to_2100(frame[k]) for k in frame})
        out[exp] = frame
    return out


def model_cell_fields(box: pd.DataFrame, lat: np.ndarray, grad: Gradients, box_lat: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Spread box means over model cells: (tas degC, pr mm/day), each (nt, ncell)."""
    month = box.index.month.values - 1
    dlat = np.asarray(lat, float)[None, :] - box_lat
    tas = box["tas"].values[:, None] + grad.t2m[month][:, None] * dlat
    pr = box["pr"].values[:, None] * np.exp(grad.log_tp[month][:, None] * dlat)
    return tas, pr


def scenario_change(box: dict[str, pd.DataFrame], scenario: str, years: range,
                    base_year: int = MODEL_BASE[1]) -> tuple[np.ndarray, np.ndarray]:
    """The model's change for ``years`` under ``scenario``: (dT K, precipitation ratio), (n, 12).

    21-year centred running mean (shorter at the ends) of each calendar month of the model series
    (historical run1 then the scenario), relative to that running mean in ``base_year``.
    """
    full = pd.concat([box["historical"], box[scenario]]).sort_index()
    annual = {v: full[v].groupby([full.index.year, full.index.month]).mean().unstack()
              for v in full}
    smooth = {v: annual[v].rolling(21, center=True, min_periods=11).mean() for v in annual}
    dT = (smooth["tas"] - smooth["tas"].loc[base_year]).loc[list(years)].to_numpy()
    ratio = (smooth["pr"] / smooth["pr"].loc[base_year]).loc[list(years)].to_numpy()
    return dT, ratio


def scenario_forcing(obs: CellForcing, box: dict[str, pd.DataFrame], scenario: str,
                     start_year: int = 2024, end_year: int = 2100) -> CellForcing:
    """Forcing for ``start_year``..``end_year`` under ``scenario`` as seen by the reanalysis.

    The observed 2001-2023 weather of each cell, with its linear trend (per calendar month) moved
    to the trend line's 2023 level, cycled; plus the model's smoothed change since 2023
    (:func:`scenario_change`), so the scenario continues from the observed climate of 2023.
    """
    base = obs.sel(f"{MODEL_BASE[0]}-01", f"{MODEL_BASE[1]}-12")
    years = np.arange(MODEL_BASE[0], MODEL_BASE[1] + 1)
    nyear = years.size

    def to_end_level(a: np.ndarray) -> np.ndarray:  # (nyear*12, ncell): trend removed, at 2023
        a = a.reshape(nyear, 12, -1)
        x = years - years.mean()
        slope = np.einsum("y,ymc->mc", x, a - a.mean(axis=0)) / (x**2).sum()
        return (a + (x[-1] - x)[:, None, None] * slope[None]).reshape(nyear * 12, -1)

    t_d = to_end_level(base.t2m)
    d_d = np.minimum(to_end_level(base.d2m), t_d)
    p_log = to_end_level(np.log(np.maximum(base.tp, 0.01)))
    out_years = range(start_year, end_year + 1)
    idx = np.concatenate([((y - years[0]) % nyear) * 12 + np.arange(12) for y in out_years])
    dT, ratio = scenario_change(box, scenario, out_years)
    dT = dT.reshape(-1)[:, None]
    ratio = ratio.reshape(-1)[:, None]
    time = pd.date_range(f"{start_year}-01-01", f"{end_year}-12-01", freq="MS")
    t2m, d2m, tp = t_d[idx], d_d[idx], p_log[idx]  # each (nt, ncell), then changed in place
    t2m += dT
    d2m += dT
    np.exp(tp, out=tp)
    tp *= ratio
    return CellForcing(time, t2m, d2m, tp)
