"""``era5land``: ERA5-Land (and ERA5) from the Climate Data Store or Earth Engine.

FILE CONVENTIONS READ (what a file must look like to load)
==========================================================

(a) NetCDF as the Climate Data Store (CDS) delivers it -- ``format="cds"`` (``*.nc``)
-------------------------------------------------------------------------------------
* Time coordinate, any one of:
  - ``time`` (older CDS, datetime64), possibly with an ``expver`` *dimension* (ERA5 vs ERA5T;
    values are merged, the first non-missing along ``expver`` wins);
  - ``valid_time`` (CDS since 2024, datetime64) with ``expver`` (string per time) and
    ``number`` (scalar) coordinates, which are dropped;
  - ``date`` (integer ``YYYYMMDD``, cfgrib conversion as in the real Healy file).
* Space: ``latitude``/``longitude`` (or ``lat``/``lon``), 1-D, degrees; longitude -180..180 or
  0..360; latitude ascending or descending.
* Variables, by CDS short name, with their units attribute:
  ``t2m skt stl1 stl2 stl3 stl4`` K (degC accepted); ``tp sf`` m of water; ``strd ssrd slhf
  sshf`` J m-2 (ECMWF sign: slhf/sshf positive downward, kept); ``swvl1..4`` m3 m-3.
  Other variables (e.g. ``sd``, ``rsn``) are ignored. Several files are concatenated along time.
* Product (option ``product``; default ``auto`` = from the time step):
  - ``monthly-means`` (``reanalysis-era5-land-monthly-means``, ``monthly_averaged_reanalysis``):
    state variables are monthly means; ACCUMULATED variables (tp sf strd ssrd slhf sshf) are
    stored as the mean DAILY accumulation -> monthly total = value x days in the month.
  - ``hourly`` (``reanalysis-era5-land``): state variables -> monthly mean of all hours;
    accumulated variables are accumulated from 00 UTC, so the value stamped 00 UTC is the
    previous day's total -> monthly total = sum of the 00-UTC values, each credited to the
    previous day. A month without all its days is NaN (never a partial total).
  - ``daily`` (daily statistics / Earth Engine DAILY_AGGR NetCDF): state variables daily
    means -> monthly mean; accumulated variables daily totals -> monthly sum (NaN if a day is
    missing).
* Optional land-sea mask variable ``lsm`` (0..1) is used as land fraction.

(b) Earth Engine exports -- ``format="ee-csv"`` (``*.csv``) and ``format="ee-netcdf"``
--------------------------------------------------------------------------------------
* Band names of ``ECMWF/ERA5_LAND/DAILY_AGGR`` / ``MONTHLY_AGGR``: ``temperature_2m``,
  ``skin_temperature``, ``soil_temperature_level_1..4`` (K); ``total_precipitation_sum``,
  ``snowfall_sum`` (m); ``surface_thermal_radiation_downwards_sum``,
  ``surface_solar_radiation_downwards_sum``, ``surface_latent_heat_flux_sum``,
  ``surface_sensible_heat_flux_sum`` (J m-2, positive downward);
  ``volumetric_soil_water_layer_1..4`` (m3 m-3). ``_sum`` bands are totals over the image's
  period (a day for DAILY_AGGR, a month for MONTHLY_AGGR). Other columns are ignored.
* CSV (one row per date and latitude band, as a band-reduced table export): a time column
  ``date`` (ISO date or ``YYYYMMDD``), ``time`` (ISO) or ``system:time_start`` (ms since
  1970); a band column ``band`` holding ``band_1..band_6`` (1-based, the seed's naming) or
  integers 0..5. Units as above (no units row). Daily rows are aggregated to months as in
  (a) ``daily``; monthly rows are taken as monthly totals/means.
* NetCDF written from ``xee`` (``xarray.open_dataset(ic, engine="ee")``): dims
  ``time, lon, lat`` (or ``longitude/latitude``), variables named as the bands above, units as
  above; aggregated like CDS files by time step, then to bands.

OUTPUT
======
Monthly (first of month, datetime64[ns]); canonical names ``t2m skt tp sf strd ssrd slhf sshf
swvl1..4 stl1..4`` (those present) in degC, mm per month, J m-2 per month, m3 m-3, with CF
attributes. ``spatial="bands"`` (default): dims ``(time, band)``, each band the
cos(latitude)-weighted mean over the land cells inside both the band and the mainland-Alaska
polygon (:mod:`permaplug.data.bands`; the seed's Earth Engine export used one pixel per band,
``ee.Reducer.first()``; we take the mean). ``spatial="grid"``: dims ``(time, cell)``, land cells
inside the polygon and the bands, coords ``lat lon band`` per cell (lazy with dask).
``attrs``: ``permaplug_data`` (default ``"ERA5-Land (real)"``, or option ``data_label``),
``provenance`` (files, product, aggregation).
"""
from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import ConfigError, DataError
from permaplug.core.source import Source
from permaplug.core.variables import Variable
from permaplug.data import checks
from permaplug.data import units as U
from permaplug.data.bands import (
    band_mean,
    canonical_order,
    find_latlon,
    grid_cells,
    subset_region,
)
from permaplug.data.calendar import to_month_start
from permaplug.data.netcdf import open_netcdf
from permaplug.plugins.sources.variables import ERA5LAND

CANONICAL: tuple[str, ...] = tuple(ERA5LAND)
"""The variables this source gives, in order (declared in plugins/sources/variables.py)."""
ACCUMULATED = ("tp", "sf", "strd", "ssrd", "slhf", "sshf")
TEMPERATURES = ("t2m", "skt", "stl1", "stl2", "stl3", "stl4")
WATER = ("tp", "sf")
ENERGY = ("strd", "ssrd", "slhf", "sshf")
SOIL_WATER = ("swvl1", "swvl2", "swvl3", "swvl4")

EE_BANDS: dict[str, str] = {
    "temperature_2m": "t2m", "skin_temperature": "skt",
    "total_precipitation_sum": "tp", "snowfall_sum": "sf",
    "surface_thermal_radiation_downwards_sum": "strd",
    "surface_solar_radiation_downwards_sum": "ssrd",
    "surface_latent_heat_flux_sum": "slhf", "surface_sensible_heat_flux_sum": "sshf",
    **{f"soil_temperature_level_{i}": f"stl{i}" for i in range(1, 5)},
    **{f"volumetric_soil_water_layer_{i}": f"swvl{i}" for i in range(1, 5)},
}
"""Earth Engine ERA5-Land band name -> canonical short name."""
EE_UNITS: dict[str, str] = {
    **{v: "K" for v in TEMPERATURES}, **{v: "m" for v in WATER},
    **{v: "J m-2" for v in ENERGY}, **{v: "m3 m-3" for v in SOIL_WATER},
}
"""Units of the Earth Engine bands (they carry no units in a CSV)."""
DEFAULT_LABEL = "ERA5-Land (real)"
PRODUCTS = ("auto", "monthly-means", "hourly", "daily", "monthly-totals")
FORMATS = ("auto", "cds", "ee-csv", "ee-netcdf")


# --- files ------------------------------------------------------------------------------------
DATA_SUFFIXES = (".nc", ".csv", ".gz")


def expand_paths(paths: str | Path | Sequence[str | Path], what: str) -> list[Path]:
    """Files named by a path, a folder (its .nc/.csv/.gz files), a glob, or a list of those."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[Path] = []
    for item in items:
        s = str(item)
        p = Path(s)
        if any(c in s for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(s))
        elif p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in DATA_SUFFIXES)
        else:
            found = [p] if p.exists() else []
        if not found:
            raise DataError(f"{what}: no files at {s}")
        out.extend(found)
    return out


def _open_nc(path: Path) -> xr.Dataset:
    """Open one file lazily; DataError naming it when truncated, corrupt or not NetCDF."""
    return open_netcdf(path, chunks={}, decode_timedelta=False)


def normalise_cds_time(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """Bring any of the three CDS time layouts to a ``time`` dim of datetime64; merge expver."""
    if "valid_time" in ds.dims or "valid_time" in ds.coords:
        if "time" in ds.coords and "time" not in ds.dims:
            ds = ds.drop_vars("time")
        ds = ds.rename({"valid_time": "time"})
    elif "date" in ds.dims and "time" not in ds.dims:
        dates = pd.to_datetime(ds["date"].values.astype("int64").astype(str), format="%Y%m%d")
        ds = ds.rename({"date": "time"}).assign_coords(time=dates.values)
    if "time" not in ds.dims:
        raise DataError(f"{path}: no time dimension (looked for time, valid_time, date)")
    if "expver" in ds.dims:
        merged = ds.isel(expver=0)
        for i in range(1, ds.sizes["expver"]):
            merged = merged.combine_first(ds.isel(expver=i))
        ds = merged
    drop = [c for c in ("expver", "number", "step", "surface", "depthBelowLandLayer")
            if c in ds.coords and c not in ds.dims]
    return ds.drop_vars(drop)


PERSIST_BYTES = 1 << 30
"""A file's region up to this size (bytes, decompressed) is read into memory once, keeping its
dask chunks (``persist``): :func:`permaplug.data.checks.check_dataset` and the later band means
then use the same values instead of decompressing the file twice. Larger regions (big grids)
stay lazy and are read twice rather than held in memory."""


def read_cds(paths: Sequence[Path], rename: dict[str, str] | None = None) -> xr.Dataset:
    """CDS (or xee) NetCDF files -> one dataset with canonical names, native units, time dim."""
    parts = []
    files: dict[int, Path] = {}
    for p in paths:
        ds = normalise_cds_time(_open_nc(p), p)
        check_time_axis(ds, p)
        if rename:
            ds = ds.rename({k: v for k, v in rename.items() if k in ds.data_vars})
            for v in rename.values():
                if v in ds.data_vars and not ds[v].attrs.get("units"):
                    ds[v].attrs["units"] = EE_UNITS[v]
            if "lon" in ds.dims and "lat" in ds.dims:
                ds = ds.rename({"lon": "longitude", "lat": "latitude"})
        keep = [v for v in ds.data_vars if v in CANONICAL or v == "lsm"]
        if not [v for v in keep if v != "lsm"]:
            raise DataError(f"{p}: no ERA5-Land variable (expected some of {', '.join(CANONICAL)}"
                            + (" or Earth Engine band names" if rename else "") + ")")
        part = subset_region(ds[keep], what=str(p))
        if part.nbytes <= PERSIST_BYTES:  # decompressed once, for the check and for the use
            part = part.persist()
        parts.append(part)
        checks.check_dataset(part, str(p))  # impossible values, undeclared fill values
        files[id(parts[-1])] = p
    # files with the same times but different variables (the CDS splits a request by step
    # type into several files) are merged; then periods are concatenated
    by_times: dict[bytes, list[xr.Dataset]] = {}
    for part in parts:
        by_times.setdefault(np.asarray(part["time"].values).tobytes(), []).append(part)
    periods = [xr.merge(group, compat="override", join="outer") if len(group) > 1 else group[0]
               for group in by_times.values()]
    owners = [files[id(group[0])] for group in by_times.values()]
    check_overlap(periods, owners)
    ds = xr.concat(periods, dim="time", data_vars="all", coords="minimal", compat="override",
                   join="outer") if len(periods) > 1 else periods[0]
    return ds.sortby("time")


STANDARD_CALENDARS = ("standard", "gregorian", "proleptic_gregorian")


def _months(values: np.ndarray, n: int = 3) -> str:
    shown = [str(v)[:10] for v in values[:n]]
    return ", ".join(shown) + (", ..." if len(values) > n else "")


def check_time_axis(ds: xr.Dataset, path: Path) -> None:
    """DataError naming ``path`` for a non-standard calendar, duplicated or unsorted times.

    ERA5(-Land) is on the proleptic Gregorian calendar; a ``360_day`` or ``noleap`` time axis
    means climate-model output (read it with the ``cmip`` source, which re-stamps model months).
    """
    time = ds["time"]
    calendar = str(time.encoding.get("calendar", "standard")).lower()
    if time.dtype == object and len(time) and hasattr(time.values[0], "calendar"):
        calendar = str(time.values[0].calendar or calendar).lower()
    if calendar not in STANDARD_CALENDARS:
        raise DataError(f"{path}: time uses the {calendar!r} calendar; ERA5-Land files use the "
                        "standard (Gregorian) calendar (read climate-model output with the "
                        "'cmip' source)")
    t = pd.Index(np.asarray(time.values))
    dup = t.duplicated()
    if dup.any():
        raise DataError(f"{path}: duplicated time stamps ({_months(np.unique(t[dup]))}); "
                        "each time must appear once")
    if not t.is_monotonic_increasing:
        i = int(np.flatnonzero(np.diff(t.values.astype("datetime64[ns]").astype("int64")) < 0)[0])
        raise DataError(f"{path}: time stamps are not in increasing order ({str(t[i + 1])[:10]} "
                        f"follows {str(t[i])[:10]}); write the file sorted by time")


def check_overlap(periods: Sequence[xr.Dataset], owners: Sequence[Path]) -> None:
    """DataError naming both files when two periods hold the same time stamp."""
    seen: dict[np.datetime64, Path] = {}
    for part, owner in zip(periods, owners):
        for t in np.asarray(part["time"].values):
            other = seen.setdefault(t, owner)
            if other != owner:
                raise DataError(f"{owner}: time {str(t)[:10]} is also in {other} (duplicated "
                                "time stamps across files; remove the overlap)")


def read_ee_csv(paths: Sequence[Path], band_base: int | None = None) -> xr.Dataset:
    """Earth Engine band-reduced CSV tables -> dataset (time, band) with canonical names."""
    frames = []
    for p in paths:
        try:
            df = pd.read_csv(p)
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: cannot read CSV ({exc})") from exc
        tcol = next((c for c in ("date", "time", "system:time_start") if c in df.columns), None)
        if tcol is None:
            raise DataError(f"{p}: no time column (date, time or system:time_start)")
        if "band" not in df.columns:
            raise DataError(f"{p}: no 'band' column")
        if tcol == "system:time_start":
            time = pd.to_datetime(df[tcol], unit="ms")
        elif pd.api.types.is_integer_dtype(df[tcol]):
            time = pd.to_datetime(df[tcol].astype(str), format="%Y%m%d")
        else:
            time = pd.to_datetime(df[tcol], format="mixed")
        band = df["band"]
        if not pd.api.types.is_numeric_dtype(band):
            parsed = band.astype(str).str.extract(r"(\d+)$")[0]
            if parsed.isna().any():
                raise DataError(f"{p}: band values like {band.iloc[0]!r}; expected band_1..band_6 "
                                "or integers 0..5")
            idx = parsed.astype(int) - (1 if band_base is None else band_base)
        else:
            idx = band.astype(int) - (0 if band_base is None else band_base)
        if idx.min() < 0 or idx.max() >= schema.N_BANDS:
            raise DataError(f"{p}: band indices outside 0..{schema.N_BANDS - 1} after conversion")
        cols = {c: EE_BANDS[c] for c in df.columns if c in EE_BANDS}
        if not cols:
            raise DataError(f"{p}: no ERA5-Land band column (e.g. temperature_2m, "
                            "soil_temperature_level_1)")
        counts = {}
        for c in cols:  # text is an error naming the line; sentinels become gaps
            df[c], counts[c] = checks.numeric_column(df[c], p, c, first_line=2)
            checks.check_physical(xr.DataArray(df[c].to_numpy(), dims="line",
                                               coords={"line": np.arange(len(df)) + 2}),
                                  str(p), EE_BANDS[c], EE_UNITS[EE_BANDS[c]])
        checks.warn_missing(str(p), counts, "the table's gap policy")
        out = df[list(cols)].rename(columns=cols)
        out["time"] = time.dt.tz_localize(None) if time.dt.tz is not None else time
        out["band"] = idx.to_numpy()
        frames.append(out)
    df = pd.concat(frames)
    dup = df.duplicated(subset=["time", "band"])
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(f"{', '.join(str(p) for p in paths)}: duplicated rows for "
                        f"{str(first['time'])[:10]} band {int(first['band'])} (each date and "
                        "band must appear once)")
    ds = df.set_index(["time", "band"]).to_xarray()
    ds["time"] = ds["time"].values.astype("datetime64[ns]")
    for v in ds.data_vars:
        ds[v].attrs["units"] = EE_UNITS[v]
    full = ds.reindex(band=np.arange(schema.N_BANDS))
    return full.assign_coords(schema.band_coords())


# --- time aggregation -------------------------------------------------------------------------
def infer_product(time: np.ndarray, what: str) -> str:
    """``monthly-means``, ``daily`` or ``hourly`` from the median time step."""
    if len(time) < 2:
        return "monthly-means"
    step = np.median(np.diff(np.asarray(time, dtype="datetime64[ns]")).astype("timedelta64[h]")
                     .astype(float))
    if step >= 24 * 27:
        return "monthly-means"
    if step >= 23:
        return "daily"
    if step >= 0.9:
        return "hourly"
    raise DataError(f"{what}: time step of {step:g} h is not hourly, daily or monthly")


def _monthly(da: xr.DataArray, how: str, need_complete: bool) -> xr.DataArray:
    grouped = da.resample(time="MS")
    out = grouped.sum(skipna=False) if how == "sum" else grouped.mean()
    if need_complete:
        days = da["time"].dt.floor("D")
        ndays = xr.DataArray(pd.Series(1, index=pd.DatetimeIndex(days.values))
                             .groupby(level=0).size().resample("MS").size()
                             .reindex(pd.DatetimeIndex(out["time"].values), fill_value=0).values,
                             dims="time", coords={"time": out["time"]})
        out = out.where(ndays >= out["time"].dt.days_in_month)
    return out


def to_monthly(ds: xr.Dataset, product: str, what: str) -> xr.Dataset:
    """Aggregate to calendar months (see the module docstring for each product's convention)."""
    if product == "auto":
        product = infer_product(ds["time"].values, what)
    if product not in PRODUCTS:
        raise DataError(f"{what}: product {product!r}; use one of {', '.join(PRODUCTS)}")
    out = {}
    for v, da in ds.data_vars.items():
        acc = v in ACCUMULATED
        if product == "monthly-means":
            m = to_month_start(da.to_dataset(), what=what)[v]
            if acc:
                m = (m * m["time"].dt.days_in_month).assign_attrs(da.attrs)
        elif product == "monthly-totals":
            m = to_month_start(da.to_dataset(), what=what)[v]
        elif product == "daily":
            m = _monthly(da, "sum" if acc else "mean", need_complete=acc)
        else:  # hourly
            if acc:
                at0 = da.where(da["time"].dt.hour == 0, drop=True)
                daily = at0.assign_coords(time=at0["time"] - np.timedelta64(1, "D"))
                m = _monthly(daily, "sum", need_complete=True)
            else:
                m = _monthly(da, "mean", need_complete=False)
        out[v] = m.assign_attrs(da.attrs)
    res = xr.Dataset(out)
    res["time"] = res["time"].values.astype("datetime64[ns]")
    res.attrs["permaplug_product"] = product
    return res


# --- units ------------------------------------------------------------------------------------
def to_canonical_units(ds: xr.Dataset, what: str) -> xr.Dataset:
    """degC, mm, J m-2, m3 m-3 with CF attributes (monthly totals already formed)."""
    out = {}
    for v, da in ds.data_vars.items():
        if v not in CANONICAL:
            continue
        da = U.to_canonical(da, ERA5LAND[v], f"{what}: {v}")  # pint: K -> degC, m -> mm...
        out[v] = da.assign_attrs(ERA5LAND[v].cf_attrs())
    res = xr.Dataset(out, attrs=ds.attrs)
    return canonical_order(res, CANONICAL)


# --- the source -------------------------------------------------------------------------------
def _format_of(paths: Sequence[Path]) -> str:
    return "ee-csv" if all(p.suffix.lower() == ".csv" for p in paths) else "cds"


def open_era5land(paths: str | Path | Sequence[str | Path], *, format: str = "auto",
                  product: str = "auto", spatial: str = "bands", variables: Sequence[str] | None
                  = None, region: str | None = None, band_base: int | None = None,
                  start: str | None = None, end: str | None = None,
                  data_label: str = DEFAULT_LABEL) -> xr.Dataset:
    """Read ERA5-Land files into the canonical monthly schema; see the module docstring.

    Returns dims (time, band) for ``spatial="bands"`` or (time, cell) for ``"grid"``.
    """
    what = f"era5land ({paths if isinstance(paths, (str, Path)) else len(paths)} paths)"
    files = [f for f in expand_paths(paths, "era5land") if f.suffix in (".nc", ".csv")]
    if not files:
        raise DataError(f"era5land: no .nc or .csv files at {paths}")
    fmt = _format_of(files) if format == "auto" else format
    if fmt not in FORMATS:
        raise DataError(f"era5land: format {format!r}; use one of {', '.join(FORMATS)}")
    if spatial not in ("bands", "grid"):
        raise DataError(f"era5land: spatial={spatial!r}; use 'bands' or 'grid'")
    if fmt == "ee-csv":
        if spatial == "grid":
            raise DataError("era5land: an Earth Engine CSV table is already per band; "
                            "spatial='grid' needs gridded NetCDF")
        raw = read_ee_csv(files, band_base)
    else:
        raw = read_cds(files, rename=EE_BANDS if fmt == "ee-netcdf" else None)
    if variables is not None:
        missing = [v for v in variables if v not in raw.data_vars]
        if missing:
            raise DataError(f"era5land: variable(s) {missing} not in the files "
                            f"(have {', '.join(v for v in raw.data_vars if v != 'lsm')})")
        raw = raw[[*variables, *(["lsm"] if "lsm" in raw.data_vars else [])]]
    if start or end:
        raw = raw.sel(time=slice(start, end))
    land = None
    if "lsm" in raw.data_vars:
        lsm = raw["lsm"]
        land = lsm.isel(time=0) if "time" in lsm.dims else lsm
        raw = raw.drop_vars("lsm")
    if fmt == "ee-csv" and product == "auto":
        product = infer_product(raw["time"].values, what)
        product = "monthly-totals" if product == "monthly-means" else product
    monthly = to_canonical_units(to_monthly(raw, product, what), what)
    prod = monthly.attrs.pop("permaplug_product", product)
    if fmt != "ee-csv":
        find_latlon(monthly, what)  # a clear error before aggregating
        if land is not None:
            land = land.load()
        if spatial == "bands":
            monthly = band_mean(monthly, land_fraction=land, region=region, what=what).load()
            how = "cos(lat)-weighted mean of land cells inside the region polygon per band"
        else:
            monthly = grid_cells(monthly, land=None if land is None else land > 0.5,
                                 region=region, what=what)
            how = "land cells inside the region polygon (stacked 'cell' dim)"
    else:
        how = "per-band values as exported from Earth Engine"
    monthly.attrs = {
        schema.DATA_LABEL_ATTR: data_label,
        "provenance": (f"era5land source: {len(files)} {fmt} file(s) "
                       f"({', '.join(str(f) for f in files[:3])}"
                       f"{', ...' if len(files) > 3 else ''});"
                       f" product {prod}; {how}"),
        "Conventions": "CF-1.8",
    }
    return monthly


class ERA5LandSource(Source):
    """ERA5-Land monthly fields (CDS NetCDF, Earth Engine CSV/NetCDF) -> (time, band).

    Options: ``paths`` (file, folder, glob or list), ``format`` (auto|cds|ee-csv|ee-netcdf),
    ``product`` (auto|monthly-means|hourly|daily|monthly-totals), ``spatial`` (bands|grid),
    ``variables``, ``region`` (GeoJSON path), ``band_base``, ``start``, ``end``, ``data_label``.
    """

    name: ClassVar[str] = "era5land"
    role: ClassVar[str] = "reanalysis"
    description: ClassVar[str] = "ERA5-Land monthly fields from CDS NetCDF or Earth Engine exports"
    variables: ClassVar[tuple[Variable, ...]] = tuple(ERA5LAND.values())

    def provides(self) -> tuple[Variable, ...]:
        wanted = self.options.get("variables")
        if wanted is None:
            return self.variables
        return tuple(v for v in self.variables if v.name in wanted)

    def open(self) -> xr.Dataset:
        opts: dict[str, Any] = dict(self.options)
        paths = opts.pop("paths", opts.pop("path", None))
        if paths is None:
            raise DataError("era5land: option 'paths' (files, folder or glob) is required")
        try:
            return open_era5land(paths, **opts)
        except TypeError as exc:
            raise DataError(f"era5land: bad option ({exc})") from exc

    @classmethod
    def fetch(
        cls, out: Path, *,
        backend: Annotated[Literal["cds", "gee"],
                           "Climate Data Store (cdsapi) or Earth Engine (earthengine-api)."] = "cds",
        start: Annotated[int, "First year."] = schema.TRAIN_YEARS[0],
        end: Annotated[int, "Last year."] = schema.TEST_YEARS[1],
        variables: Annotated[list[str] | None,
                             "Comma-separated canonical names (cds only; default: all 16)."] = None,
        collection: Annotated[Literal["monthly", "daily"],
                              "Earth Engine collection (gee only)."] = "monthly",
        project: Annotated[str | None, "Google Cloud project for Earth Engine (gee)."] = None,
        client: Any = None, progress: bool = True,
    ) -> list[Path]:
        """Download ERA5-Land monthly data for mainland Alaska.

        ``cds``: one NetCDF per year ``era5land_monthly_<year>.nc``; ``gee``: one CSV of band
        means per year ``era5land_ee_<collection>_<year>.csv`` (see
        :mod:`permaplug.plugins.sources.era5land_fetch`). ``client`` replaces the provider's
        client (tests). Files already in ``out`` are kept.
        """
        from permaplug.plugins.sources import era5land_fetch

        if backend == "cds":
            return era5land_fetch.fetch_era5land_cds(out, start, end, variables=variables,
                                                     client=client, progress=progress)
        if backend == "gee":
            return era5land_fetch.fetch_era5land_gee(out, start, end, collection=collection,
                                                     bands=tuple(EE_BANDS), client=client,
                                                     project=project, progress=progress)
        raise ConfigError(f"--backend {backend!r}: use 'cds' or 'gee'")
