"""``climate-reanalyzer``: ERA5 monthly point series exported from Climate Reanalyzer.

File layout (one file per point and variable, named ``<Point_Name>_<var>.csv``, e.g.
``Fairbanks_temp.csv``; ``var`` is ``temp``, ``precip`` or ``dew``)::

    line 1  =====...
    line 2  ECMWF ERA5 (0.5x0.5 deg)
    line 3  <variable title> (<units>)         e.g. "Total Precipitation (m)"
    line 4  Values averaged across Specify Point (64.86N; 212.28E)   <- coordinates, lon 0..360
    lines 5-8 generator notice, separators
    line 9  Year,Jan,Feb,...,Dec,Ann,DJF,...   (header; only Year and Jan..Dec are read)
    then    one row per year; -999 = missing

Units: ``temp`` 2 m temperature (deg C), ``dew`` 2 m dew point (deg C), ``precip`` total
precipitation (m per month; the ``Ann`` column is the sum of the months).

Output of :func:`read_points`: dims ``(time, point)``; coords ``time`` (first of month),
``point`` (0..n-1), ``name`` (point name), ``lat`` (deg N), ``lon`` (deg E, -180..180);
variables ``t2m`` (degC), ``tp`` (mm per month = m x 1000), ``d2m`` (degC).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.core.source import Source
from permaplug.core.variables import Variable
from permaplug.data import checks
from permaplug.plugins.sources.variables import DEWPOINT, ERA5LAND

HEADER_LINES = 8
MISSING = -999.0
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DATA_LABEL = "ERA5 (real, Climate Reanalyzer point export)"

# file suffix -> (output variable, expected units in line 3, factor to output units, attrs)
VARIABLE_FILES: dict[str, tuple[str, str, float, dict[str, str]]] = {
    "temp": ("t2m", "deg C", 1.0, ERA5LAND["t2m"].cf_attrs()),
    "precip": ("tp", "m", 1000.0, ERA5LAND["tp"].cf_attrs()),
    "dew": ("d2m", "deg C", 1.0, DEWPOINT.cf_attrs()),
}
DECLARED = {"temp": ERA5LAND["t2m"], "precip": ERA5LAND["tp"], "dew": DEWPOINT}
"""What each export file gives (its output variable)."""
_COORD_RE = re.compile(r"\(\s*(-?[\d.]+)\s*([NS])\s*;\s*(-?[\d.]+)\s*([EW])\s*\)")
_UNITS_RE = re.compile(r"\(([^()]*)\)\s*$")


def parse_header(path: Path) -> tuple[str, float, float]:
    """Units (line 3), latitude and longitude (line 4, returned in -180..180) of one export."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = [next(fh, "") for _ in range(HEADER_LINES)]
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    m_units = _UNITS_RE.search(head[2].strip())
    m_coord = _COORD_RE.search(head[3])
    if not m_units or not m_coord:
        raise DataError(f"{path}: not a Climate Reanalyzer export (no units in line 3 or "
                        "coordinates in line 4)")
    lat = float(m_coord.group(1)) * (1 if m_coord.group(2) == "N" else -1)
    lon = float(m_coord.group(3)) * (1 if m_coord.group(4) == "E" else -1)
    lon = ((lon + 180.0) % 360.0) - 180.0
    return m_units.group(1).strip(), lat, lon


def read_series(path: Path) -> pd.Series:
    """Monthly values of one export file as a Series indexed by month start (NaN = missing)."""
    try:
        table = pd.read_csv(path, skiprows=HEADER_LINES, usecols=["Year", *MONTHS])
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse the table after line {HEADER_LINES} "
                        f"({exc})") from exc
    for m in MONTHS:  # text is an error naming line and column; -999 & co. become missing
        table[m] = checks.numeric_column(table[m], path, m, first_line=HEADER_LINES + 2)[0]
    long = table.melt(id_vars="Year", value_vars=list(MONTHS), var_name="month", value_name="v")
    long["month"] = long["month"].map({m: i for i, m in enumerate(MONTHS, 1)})
    index = pd.to_datetime({"year": long["Year"], "month": long["month"], "day": 1})
    values = long["v"].astype(float).where(long["v"] != MISSING)
    return pd.Series(values.to_numpy(), index=index).sort_index()


def read_points(folder: Path, variables: Sequence[str] = ("temp", "precip", "dew")) -> xr.Dataset:
    """Read every ``<name>_<var>.csv`` in ``folder`` into one dataset with dims (time, point).

    Variables: ``t2m`` degC, ``tp`` mm per month, ``d2m`` degC (only those requested).
    Points are sorted by name; a point lacking one of the requested variables is an error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: Climate Reanalyzer folder not found")
    unknown = [v for v in variables if v not in VARIABLE_FILES]
    if unknown:
        raise DataError(f"unknown Climate Reanalyzer variable(s) {unknown}; "
                        f"known: {', '.join(VARIABLE_FILES)}")
    names = sorted({p.stem.rsplit("_", 1)[0] for v in variables for p in folder.glob(f"*_{v}.csv")})
    if not names:
        raise DataError(f"{folder}: no Climate Reanalyzer files (*_{variables[0]}.csv)")
    coords: dict[str, tuple[float, float]] = {}
    series: dict[str, list[pd.Series]] = {v: [] for v in variables}
    files: list[str] = []
    for name in names:
        for var in variables:
            path = folder / f"{name}_{var}.csv"
            if not path.exists():
                raise DataError(f"{path}: missing (point {name!r} has no {var!r} file)")
            out_name, want_units, factor, _ = VARIABLE_FILES[var]
            units, lat, lon = parse_header(path)
            if units != want_units:
                raise DataError(f"{path}: units {units!r}, expected {want_units!r} for {out_name}")
            prev = coords.setdefault(name, (lat, lon))
            if abs(prev[0] - lat) > 1e-6 or abs(prev[1] - lon) > 1e-6:
                raise DataError(f"{path}: coordinates ({lat}, {lon}) differ from the point's "
                                f"other files {prev}")
            values = read_series(path)
            checks.check_physical(xr.DataArray(values.to_numpy(), dims="time",
                                               coords={"time": values.index.values}),
                                  str(path), out_name, units)
            series[var].append(values * factor)
            files.append(str(path))
    data_vars = {}
    for var in variables:
        out_name, _, _, attrs = VARIABLE_FILES[var]
        frame = pd.concat(series[var], axis=1)
        time = frame.index.values.astype("datetime64[ns]")
        data_vars[out_name] = xr.DataArray(frame.to_numpy(), dims=("time", "point"),
                                           coords={"time": time}, attrs=dict(attrs))
    ds = xr.Dataset(data_vars)
    ds = ds.assign_coords(
        point=np.arange(len(names)),
        name=("point", np.array(names, dtype=object)),
        lat=("point", np.array([coords[n][0] for n in names])),
        lon=("point", np.array([coords[n][1] for n in names])),
    )
    ds["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude"}
    ds["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude"}
    ds.attrs[schema.DATA_LABEL_ATTR] = DATA_LABEL
    ds.attrs["provenance"] = (f"Climate Reanalyzer ERA5 point exports: {len(files)} files "
                              f"in {folder}")
    return ds


def points_to_bands(ds: xr.Dataset) -> xr.Dataset:
    """Mean over the points in each latitude band -> dims (time, band); NaN where a band has none.

    Adds ``n_points`` (band,) counting the points averaged.
    """
    band = schema.band_of_latitude(ds["lat"].values)
    data_vars = {}
    for v in ds.data_vars:
        values = np.full((ds.sizes["time"], schema.N_BANDS), np.nan)
        for b in range(schema.N_BANDS):
            sel = np.flatnonzero(band == b)
            if sel.size:
                values[:, b] = ds[v].isel(point=sel).mean("point").values
        data_vars[v] = (("time", "band"), values, dict(ds[v].attrs))
    data_vars["n_points"] = ("band", np.bincount(band[band >= 0], minlength=schema.N_BANDS),
                             {"long_name": "number of points averaged in the band"})
    res = xr.Dataset(data_vars, coords={"time": ds["time"].values, **schema.band_coords()})
    res.attrs = dict(ds.attrs)
    res.attrs["provenance"] += "; band value = mean of the points inside the band"
    return res


class ClimateReanalyzerSource(Source):
    """ERA5 monthly point series from Climate Reanalyzer CSV exports (t2m, tp, d2m).

    Options: ``path`` (folder), ``variables`` (subset of temp, precip, dew),
    ``spatial`` ("points": dims (time, point); "bands": mean of the points in each band).
    """

    name: ClassVar[str] = "climate-reanalyzer"
    role: ClassVar[str] = "reanalysis"
    description: ClassVar[str] = "ERA5 monthly point series exported from Climate Reanalyzer (CSV)"
    variables: ClassVar[tuple[Variable, ...]] = tuple(DECLARED.values())

    def provides(self) -> tuple[Variable, ...]:
        wanted = self.options.get("variables") or tuple(DECLARED)
        return tuple(DECLARED[v] for v in wanted if v in DECLARED)

    def open(self) -> xr.Dataset:
        opts = dict(self.options)
        path = opts.pop("path", None)
        if path is None:
            raise DataError("climate-reanalyzer: option 'path' (folder of CSV exports) is required")
        variables = tuple(opts.pop("variables", ("temp", "precip", "dew")))
        spatial = opts.pop("spatial", "points")
        label = opts.pop("data_label", None)
        if opts:
            raise DataError(f"climate-reanalyzer: unknown option(s) {sorted(opts)}")
        ds = read_points(Path(path), variables)
        if spatial == "bands":
            ds = points_to_bands(ds)
        elif spatial != "points":
            raise DataError(f"climate-reanalyzer: option spatial={spatial!r}; "
                            "use 'points' or 'bands'")
        if label:
            ds.attrs[schema.DATA_LABEL_ATTR] = label
        return ds
