"""``cmip``: CMIP5/CMIP6 model output (historical + scenarios) as per-band monthly features.

FILE CONVENTIONS READ
=====================
(a) ``format="drs"``: CMIP NetCDF named by the data reference syntax, several files per
variable allowed (option ``paths``: folder, glob or list)::

    <var>_<table>_<model>_<experiment>_<member>[_<grid>]_<YYYYMM>-<YYYYMM>.nc
    tas_Amon_IPSL-CM5A-MR_rcp85_r1i1p1_200601-210012.nc              (CMIP5)
    tas_Amon_IPSL-CM6A-LR_ssp585_r1i1p1f1_gr_201501-210012.nc        (CMIP6)
    sftlf_fx_IPSL-CM5A-MR_historical_r0i0p0.nc                       (land fraction, %)

* Variables (the NetCDF variable named as in the file name): ``tas ts`` (K), ``pr prsn``
  (kg m-2 s-1), ``rlds rsds hfls hfss`` (W m-2; CMIP hfls/hfss are POSITIVE UPWARD), ``mrso
  mrsos`` (kg m-2); 1-D ``lat``/``lon`` (0..360 or -180..180). Time decoded with cftime in the
  model calendar (``noleap``/``365_day``, ``360_day``, ``gregorian``/``standard``...).
* Experiments: ``historical`` plus scenarios (``rcp26 rcp45 rcp60 rcp85`` or ``ssp126 ...``).
  Each scenario series is the historical run continued by the scenario: months after the last
  historical month come from the scenario file.
* Conversions to ERA5-Land conventions: tas->t2m, ts->skt (K -> degC); pr->tp, prsn->sf
  (kg m-2 s-1 x seconds in month -> mm per month); rlds->strd, rsds->ssrd (W m-2 x seconds ->
  J m-2 per month); hfls->slhf, hfss->sshf (W m-2, SIGN FLIPPED to positive downward, x seconds
  -> J m-2 per month); mrso, mrsos kept (kg m-2). Month lengths are those of the Gregorian month
  the value is stamped on (every model month maps to exactly one calendar month).
* Band means on the model's own grid: cos(lat)-weighted, times the land fraction ``sftlf``/100
  when a ``sftlf_fx_<model>_*.nc`` file is among the paths (or option ``sftlf``), over cells
  whose centre lies inside the mainland-Alaska polygon (``spatial="grid"`` keeps the cells).

(b) ``format="region-table"``: the real Goldenson et al. (2018) tables
``timeSeriesLO_<var>_Alaska_Monthly_<experiment>.csv`` (``resources/real/cmip5_alaska_box``):
three header rows (``model``, ``run``, ``time``), then one row per month; the time column mixes
``1850-01-01 00:00:00`` and ``1900-01-01``. ``tas`` in K, ``pr`` in mm/day; one land-only mean
over lon 193-219 E, lat 58-71 N. Options ``model`` (default IPSL-CM5A-MR), ``run`` (run1),
``historical_run`` (default = ``run``). The single regional value is given to all six bands
(attribute ``spatial_note`` says so) unless ``spatial="region"`` (dims (scenario, time)).

(c) ``format="band-table"``: the seed author's GFDL-ESM2G tables ``RCP26_df.csv[.gz]`` ...
(``resources/real/cmip5_gfdl_esm2g_bands``): columns ``time`` (mid-month), ``band``
(``band_1..band_6``), ERA5-Land column names holding CMIP quantities in CMIP units:
``temperature_2m`` (tas, K), ``skin_temperature`` (ts, K), ``total_precipitation_sum`` (pr),
``snowfall_sum`` (prsn) in kg m-2 s-1, ``surface_thermal_radiation_downwards_sum`` (rlds),
``surface_solar_radiation_downwards_sum`` (rsds), ``surface_latent_heat_flux_sum`` (hfls, up),
``surface_sensible_heat_flux_sum`` (hfss, up) in W m-2, ``avg_volumetric_water_content``
(mrsos, kg m-2). No historical part (attribute ``historical_end`` is the month before the first
month and ``historical_included`` is ``"no"``); the band value is the MAXIMUM over model cells
(the author's reduction), noted in ``provenance``.

OUTPUT
======
dims ``(scenario, time, band)`` (or ``cell``), canonical names and units, monthly first-of-month
``datetime64[ns]``, every month from the first to the last exactly once; missing months are
handled by the gap policy (option ``gap_policy``: seasonal | linear | flag | error, see
:mod:`permaplug.data.calendar`) and reported in attrs ``gap_months``/``gap_filled_months``
and the ``gap_filled`` (scenario, time) coordinate. attrs ``historical_end`` (``YYYY-MM``),
``model``, data label, provenance.
"""
from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.core.source import Source
from permaplug.core.variables import Variable
from permaplug.data import checks
from permaplug.data import units as U
from permaplug.data.bands import band_mean, grid_cells, subset_region
from permaplug.data.calendar import GAP_POLICIES, fill_gaps, to_month_start
from permaplug.plugins.sources.era5land import expand_paths
from permaplug.plugins.sources.variables import CLIMATE_MODEL, ERA5LAND

CMIP_TO_CANONICAL: dict[str, str] = {
    "tas": "t2m", "ts": "skt", "pr": "tp", "prsn": "sf", "rlds": "strd", "rsds": "ssrd",
    "hfls": "slhf", "hfss": "sshf", "mrso": "mrso", "mrsos": "mrsos",
}
UPWARD_POSITIVE = ("hfls", "hfss")
"""CMIP variables whose sign is flipped (CMIP: positive upward; ERA5-Land: positive downward)."""
CANONICAL_ORDER = ("t2m", "skt", "tp", "sf", "strd", "ssrd", "slhf", "sshf", "mrso", "mrsos")
DECLARED: dict[str, Variable] = {v: {**ERA5LAND, **CLIMATE_MODEL}[v] for v in CANONICAL_ORDER}
"""What the source can give, by canonical name (declared in plugins/sources/variables.py)."""
HISTORICAL = "historical"
DEFAULT_MODEL = "IPSL-CM5A-MR"

_DRS_RE = re.compile(
    r"^(?P<var>[A-Za-z0-9]+)_(?P<table>[A-Za-z0-9]+)_(?P<model>[^_]+)_(?P<experiment>[^_]+)_"
    r"(?P<member>r\d+i\d+p\d+(?:f\d+)?)(?:_(?P<grid>g[a-z0-9]+))?"
    r"(?:_(?P<start>\d{4,12})-(?P<end>\d{4,12}))?(?:-clim)?$"
)


@dataclass(frozen=True)
class DRSName:
    """The parts of a CMIP file name."""

    path: Path
    var: str
    table: str
    model: str
    experiment: str
    member: str
    grid: str | None


def parse_drs(path: Path) -> DRSName:
    """Parse a CMIP5/CMIP6 DRS file name (DataError naming the file when it does not match)."""
    m = _DRS_RE.match(path.name[:-3] if path.name.endswith(".nc") else path.stem)
    if not m:
        raise DataError(f"{path}: file name does not follow the CMIP data reference syntax "
                        "(<var>_<table>_<model>_<experiment>_<member>[_<grid>]_<start>-<end>.nc)")
    return DRSName(path, m["var"], m["table"], m["model"], m["experiment"], m["member"], m["grid"])


# --- conversions --------------------------------------------------------------------------------
def convert_variable(cmip_var: str, da: xr.DataArray, what: str) -> xr.DataArray:
    """One CMIP variable (monthly, month-start times) -> canonical name's units and sign.

    Units by pint (:func:`permaplug.data.units.to_canonical`: K -> degC, a monthly-mean rate
    kg m-2 s-1 or W m-2 -> monthly total mm or J m-2); CMIP's upward-positive turbulent heat
    fluxes change sign (ERA5-Land: positive downward).
    """
    name = CMIP_TO_CANONICAL[cmip_var]
    out = U.to_canonical(da, DECLARED[name], f"{what}: {cmip_var}")
    if cmip_var in UPWARD_POSITIVE:
        out = -out
    return out.rename(name).assign_attrs(DECLARED[name].cf_attrs())


def _decode(path: Path, lazy: bool = True) -> xr.Dataset:
    from permaplug.data.netcdf import open_netcdf

    return open_netcdf(path, chunks={} if lazy else None,
                       decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))


def read_drs_variable(files: Sequence[DRSName], what: str, lazy: bool = True) -> xr.DataArray:
    """Concatenate the files of one variable/experiment along time (month-start stamps).

    ``lazy``: dask arrays (gridded mode); otherwise read per file (band means are small).
    """
    parts = []
    for f in sorted(files, key=lambda d: d.path.name):
        ds = _decode(f.path, lazy)
        if f.var not in ds.data_vars:
            raise DataError(f"{f.path}: no variable {f.var!r} inside (file name says so)")
        da = subset_region(ds[f.var], what=str(f.path))
        drop = [c for c in da.coords if c not in da.dims and c not in ("lat", "lon")]
        da = da.drop_vars(drop)
        da = to_month_start(da.to_dataset(), what=str(f.path))[f.var]
        checks.check_physical(da, str(f.path), f.var)
        parts.append(da)
    da = xr.concat(parts, dim="time", join="exact") if len(parts) > 1 else parts[0]
    if pd.Index(da["time"].values).duplicated().any():
        dup = pd.Index(da["time"].values)[pd.Index(da["time"].values).duplicated()]
        raise DataError(f"{what}: overlapping files (month {str(dup[0])[:7]} appears twice)")
    return da.sortby("time")


def _land_fraction(sftlf: str | Path | None, fx_files: list[DRSName]) -> xr.DataArray | None:
    path = Path(sftlf) if sftlf else (fx_files[0].path if fx_files else None)
    if path is None:
        return None
    ds = _decode(path)
    if "sftlf" not in ds:
        raise DataError(f"{path}: no variable 'sftlf'")
    lf = subset_region(ds["sftlf"].squeeze(drop=True)).load()
    units = str(lf.attrs.get("units", "%")).strip()
    return lf / 100.0 if units in ("%", "percent") or float(lf.max()) > 1.5 else lf


def _spatial(ds: xr.Dataset, spatial: str, land: xr.DataArray | None, region: str | None,
             what: str, empty_bands: str = "nearest") -> xr.Dataset:
    if spatial == "bands":  # small: computed once here instead of at every later access
        return band_mean(ds, land_fraction=land, region=region, what=what,
                         empty=empty_bands).load()
    if spatial == "grid":
        mask = None if land is None else (land > 0.5)
        return grid_cells(ds, land=mask, region=region, what=what)
    raise DataError(f"cmip: spatial={spatial!r}; use 'bands' or 'grid'")


def _finish(per_scenario: dict[str, xr.Dataset], historical_end: str, gap_policy: str,
            what: str) -> xr.Dataset:
    """Fill gaps per scenario, stack on a ``scenario`` dim, collect the gap report."""
    filled, gaps, fills = [], [], []
    for scen, ds in per_scenario.items():
        f = fill_gaps(ds, policy=gap_policy, what=f"{what} {scen}")
        if f.attrs.get("gap_months"):
            gaps.append(f"{scen}: {f.attrs['gap_months']}")
        if f.attrs.get("gap_filled_months"):
            fills.append(f"{scen}: {f.attrs['gap_filled_months']}")
        filled.append(f.expand_dims(scenario=[scen]))
    if fills or gaps:
        how = (f"filled with the {gap_policy!r} gap policy" if gap_policy != "flag" else
               "left missing (gap policy 'flag')")
        warnings.warn(f"{what}: missing month(s) {how}: {'; '.join(fills or gaps)}",
                      stacklevel=2)
    out = xr.concat(filled, dim="scenario", join="outer", combine_attrs="override")
    out = out.assign_coords(gap_filled=out["gap_filled"].fillna(False).astype(bool))
    out.attrs = {"historical_end": historical_end, "gap_policy": gap_policy,
                 "gap_months": "; ".join(gaps), "gap_filled_months": "; ".join(fills)}
    order = [v for v in CANONICAL_ORDER if v in out.data_vars]
    return out[order + [v for v in out.data_vars if v not in order]]


def open_drs(paths: Any, *, model: str | None = None, member: str | None = None,
             historical_member: str | None = None, scenarios: Sequence[str] | None = None,
             variables: Sequence[str] | None = None, sftlf: str | None = None,
             spatial: str = "bands", region: str | None = None, gap_policy: str = "seasonal",
             start: str | None = None, end: str | None = None,
             empty_bands: str = "nearest") -> tuple[xr.Dataset, str]:
    """DRS NetCDF files -> (scenario, time, band) dataset and a provenance string.

    ``empty_bands``: a band without a model grid-cell centre takes the nearest grid row
    (``nearest``, stated in a warning and the provenance), is refused (``error``) or left
    missing (``missing``); see :mod:`permaplug.data.bands`."""
    files = [p for p in expand_paths(paths, "cmip") if p.suffix == ".nc"]
    names = [parse_drs(p) for p in files]
    models = sorted({n.model for n in names if n.table != "fx"})
    if model is None:
        if len(models) != 1:
            raise DataError(f"cmip: files of several models {models}; set option 'model'")
        model = models[0]
    names = [n for n in names if n.model == model]
    fx = [n for n in names if n.var == "sftlf"]
    data = [n for n in names if n.table != "fx" and n.var in CMIP_TO_CANONICAL]
    if not data:
        raise DataError(f"cmip: no {model} files of variables {', '.join(CMIP_TO_CANONICAL)}")
    exps = sorted({n.experiment for n in data})
    if HISTORICAL not in exps:
        raise DataError(f"cmip: no '{HISTORICAL}' files for {model} (experiments found: {exps})")
    scen_found = [e for e in exps if e != HISTORICAL]
    scenarios = list(scenarios) if scenarios else scen_found
    missing = [s for s in scenarios if s not in scen_found]
    if missing:
        raise DataError(f"cmip: no {model} files for scenario(s) {missing} (found {scen_found})")
    if not scenarios:
        raise DataError(f"cmip: only historical files for {model}; no scenario to continue it")
    members = sorted({n.member for n in data if n.experiment in scenarios})
    member = member or members[0]
    hist_members = sorted({n.member for n in data if n.experiment == HISTORICAL})
    historical_member = historical_member or (member if member in hist_members else None)
    if historical_member is None:
        raise DataError(f"cmip: no historical run of member {member} (have {hist_members}); "
                        "set option historical_member")
    groups: dict[tuple[str, str], list[DRSName]] = defaultdict(list)
    for n in data:
        want = historical_member if n.experiment == HISTORICAL else member
        if n.member == want:
            groups[(n.var, n.experiment)].append(n)
    cmip_vars = sorted({v for v, _ in groups})
    if variables:
        unknown = [v for v in variables if v not in cmip_vars]
        if unknown:
            raise DataError(f"cmip: variable(s) {unknown} not in the {model} files "
                            f"(have {cmip_vars})")
        cmip_vars = list(variables)
    land = _land_fraction(sftlf, fx)
    what = f"cmip {model}"
    hist_vars = {}
    for v in cmip_vars:
        if (v, HISTORICAL) not in groups:
            raise DataError(f"cmip: {model} has {v} for scenarios but not for historical")
        da = read_drs_variable(groups[(v, HISTORICAL)], f"{what} {v} historical",
                               lazy=spatial != "bands")
        hist_vars[CMIP_TO_CANONICAL[v]] = convert_variable(v, da, f"{what} historical")
    hist = _spatial(xr.Dataset(hist_vars), spatial, land, region, what, empty_bands).drop_vars(
        ["n_cells"], errors="ignore")
    nearest = hist.attrs.get("bands_from_nearest_row", "")
    historical_end = str(hist["time"].values.max())[:7]
    per_scen = {}
    for s in scenarios:
        svars = {}
        for v in cmip_vars:
            if (v, s) not in groups:
                raise DataError(f"cmip: {model} {s} has no {v} files")
            da = read_drs_variable(groups[(v, s)], f"{what} {v} {s}", lazy=spatial != "bands")
            svars[CMIP_TO_CANONICAL[v]] = convert_variable(v, da, f"{what} {s}")
        with warnings.catch_warnings():  # the same grid: stated once, for the historical run
            warnings.simplefilter("ignore")
            sc = _spatial(xr.Dataset(svars), spatial, land, region, what, empty_bands).drop_vars(
                ["n_cells"], errors="ignore")
        sc = sc.sel(time=sc["time"] > np.datetime64(f"{historical_end}-01"))
        joined = xr.concat([hist, sc], dim="time", join="outer")
        if start or end:
            joined = joined.sel(time=slice(start, end))
        per_scen[s] = joined
    out = _finish(per_scen, historical_end, gap_policy, what)
    if nearest:
        out.attrs["bands_from_nearest_row"] = nearest
    out.attrs["model"] = model
    out.attrs["member"] = member if member == historical_member else \
        f"{member} (historical {historical_member})"
    prov = (f"cmip source: {len(files)} DRS file(s) of {model} {member}, "
            f"experiments historical+{'+'.join(scenarios)}; "
            + ("band means (cos lat" + (" x sftlf" if land is not None else "")
               + ") on the model grid inside the region polygon" if spatial == "bands"
               else "grid cells inside the region polygon")
            + (f"; nearest-row rule: {nearest}" if nearest else ""))
    return out, prov


# --- the two real table layouts -------------------------------------------------------------
_REGION_RE = re.compile(r"^timeSeriesLO_(?P<var>[a-z]+)_Alaska_Monthly_(?P<exp>[a-z0-9]+)\.csv$")


def read_region_table(path: Path, model: str, run: str) -> pd.Series:
    """One column (model, run) of a Goldenson et al. table as a monthly Series (month start)."""
    try:
        table = pd.read_csv(path, header=[0, 1], skiprows=[2], index_col=0)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read region table ({exc})") from exc
    if (model, run) not in table.columns:
        have = sorted({f"{m} {r}" for m, r in table.columns})
        raise DataError(f"{path}: no column for model {model!r} run {run!r} (have {have})")
    col, _ = checks.numeric_column(table[(model, run)], path, f"{model} {run}",
                                   first_line=4)  # 2 header lines + an empty "time" row
    m = _REGION_RE.match(path.name)
    if m:
        checks.check_physical(xr.DataArray(col.to_numpy(), dims="time", name=m["var"],
                                           coords={"time": col.index.astype(str)}),
                              str(path), units="K" if m["var"] == "tas" else "mm/day")
    try:
        index = pd.to_datetime(pd.Series(col.index.astype(str)), format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: unreadable time column ({exc})") from exc
    col.index = month_index = pd.DatetimeIndex(index.dt.to_period("M").dt.to_timestamp())
    if month_index.duplicated().any():
        raise DataError(f"{path}: month {month_index[month_index.duplicated()][0]:%Y-%m} "
                        "appears twice")
    empty = int(col.isna().sum())
    if empty:  # sentinels and empty cells: months absent from the series, the gap policy's
        checks.warn_missing(str(path), {f"{model} {run}": empty}, "the source's gap_policy")
    return col.dropna()


def open_region_table(paths: Any, *, model: str = DEFAULT_MODEL, run: str = "run1",
                      historical_run: str | None = None, scenarios: Sequence[str] | None = None,
                      variables: Sequence[str] | None = None, spatial: str = "bands",
                      gap_policy: str = "seasonal", start: str | None = None,
                      end: str | None = None) -> tuple[xr.Dataset, str]:
    """The cmip5_alaska_box tables -> (scenario, time, band) (or (scenario, time) for region)."""
    files = [p for p in expand_paths(paths, "cmip") if _REGION_RE.match(p.name)]
    if not files:
        raise DataError(f"cmip: no timeSeriesLO_<var>_Alaska_Monthly_<experiment>.csv at {paths}")
    by = {(m["var"], m["exp"]): p for p in files if (m := _REGION_RE.match(p.name))}
    all_vars = sorted({v for v, _ in by})
    cmip_vars = list(variables) if variables else all_vars
    scen_found = sorted({e for _, e in by if e != HISTORICAL})
    scenarios = list(scenarios) if scenarios else scen_found
    historical_run = historical_run or run
    hist: dict[str, pd.Series] = {}
    scen: dict[str, dict[str, pd.Series]] = {s: {} for s in scenarios}
    for v in cmip_vars:
        if v not in ("tas", "pr"):
            raise DataError(f"cmip: region tables hold tas and pr, not {v!r}")
        for key in [(v, HISTORICAL), *[(v, s) for s in scenarios]]:
            if key not in by:
                raise DataError(f"cmip: no region table for {key[0]} {key[1]} at {paths}")
        hist[v] = read_region_table(by[(v, HISTORICAL)], model, historical_run)
        for s in scenarios:
            scen[s][v] = read_region_table(by[(v, s)], model, run)
    historical_end = max(s.index.max() for s in hist.values()).strftime("%Y-%m")

    def convert(series: dict[str, pd.Series]) -> xr.Dataset:
        out = {}
        for v, s in series.items():
            da = xr.DataArray(s.to_numpy(), dims="time",
                              coords={"time": s.index.values.astype("datetime64[ns]")},
                              attrs={"units": "K" if v == "tas" else "mm/day"})
            out[v] = convert_variable(v, da, f"cmip region table {model}")
        return xr.Dataset({CMIP_TO_CANONICAL[k]: v for k, v in out.items()})

    h = convert(hist)
    per_scen = {}
    for s in scenarios:
        sc = convert(scen[s])
        sc = sc.sel(time=sc["time"] > np.datetime64(f"{historical_end}-01"))
        joined = xr.concat([h, sc], dim="time", join="outer")
        if start or end:
            joined = joined.sel(time=slice(start, end))
        per_scen[s] = joined
    out = _finish(per_scen, historical_end, gap_policy, f"cmip region table {model}")
    note = "one land-only mean over lon 193-219 E, lat 58-71 N (Goldenson et al. 2018)"
    if spatial == "bands":
        out = out.expand_dims(band=np.arange(schema.N_BANDS), axis=-1)
        out = out.assign_coords(schema.band_coords())
        out.attrs["spatial_note"] = note + ", the same value given to all six bands"
    elif spatial == "region":
        out.attrs["spatial_note"] = note
    else:
        raise DataError(f"cmip: spatial={spatial!r} for region tables; use 'bands' or 'region'")
    out.attrs["model"] = model
    out.attrs["member"] = run if run == historical_run else f"{run} (historical {historical_run})"
    used = sorted(by[(v, e)].name for v in cmip_vars for e in [HISTORICAL, *scenarios])
    prov = (f"cmip source: region tables {', '.join(used)} "
            f"(Goldenson et al. 2018, github thenaomig/regionalVariance); {note}")
    return out, prov


BAND_TABLE_COLUMNS: dict[str, str] = {
    "temperature_2m": "tas", "skin_temperature": "ts", "total_precipitation_sum": "pr",
    "snowfall_sum": "prsn", "surface_thermal_radiation_downwards_sum": "rlds",
    "surface_solar_radiation_downwards_sum": "rsds", "surface_latent_heat_flux_sum": "hfls",
    "surface_sensible_heat_flux_sum": "hfss", "avg_volumetric_water_content": "mrsos",
}
BAND_TABLE_UNITS: dict[str, str] = {
    "tas": "K", "ts": "K", "pr": "kg m-2 s-1", "prsn": "kg m-2 s-1", "rlds": "W m-2",
    "rsds": "W m-2", "hfls": "W m-2", "hfss": "W m-2", "mrsos": "kg m-2",
}
_BAND_FILE_RE = re.compile(r"^(?P<scen>[A-Za-z]+\d+)_df\.csv(?:\.gz)?$")


def open_band_table(paths: Any, *, scenarios: Sequence[str] | None = None,
                    variables: Sequence[str] | None = None, model: str = "GFDL-ESM2G",
                    gap_policy: str = "seasonal", start: str | None = None,
                    end: str | None = None) -> tuple[xr.Dataset, str]:
    """The seed author's per-band scenario tables -> (scenario, time, band)."""
    files = [p for p in expand_paths(paths, "cmip") if _BAND_FILE_RE.match(p.name)]
    if not files:
        raise DataError(f"cmip: no band tables (<SCENARIO>_df.csv[.gz]) at {paths}")
    per_scen = {}
    used = []
    for p in files:
        scen = _BAND_FILE_RE.match(p.name)["scen"].lower()
        if scenarios and scen not in scenarios:
            continue
        used.append(p.name)
        try:
            df = pd.read_csv(p)
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: cannot read band table ({exc})") from exc
        for col in ("time", "band"):
            if col not in df.columns:
                raise DataError(f"{p}: no {col!r} column")
        band = df["band"].astype(str).str.extract(r"(\d+)$")[0].astype(int) - 1
        time = pd.to_datetime(df["time"], format="mixed").dt.to_period("M").dt.to_timestamp()
        cols = {c: BAND_TABLE_COLUMNS[c] for c in df.columns if c in BAND_TABLE_COLUMNS}
        if variables:
            cols = {c: v for c, v in cols.items() if v in variables}
        counts = {}
        for c in cols:  # text is an error naming the line; sentinels become gaps
            df[c], counts[c] = checks.numeric_column(df[c], p, c, first_line=2)
        checks.warn_missing(str(p), counts, "the source's gap_policy")
        frame = df[list(cols)].rename(columns=cols).assign(time=time.values, band=band.values)
        if frame.duplicated(["time", "band"]).any():
            raise DataError(f"{p}: a (month, band) pair appears twice")
        ds = frame.set_index(["time", "band"]).to_xarray()
        ds["time"] = ds["time"].values.astype("datetime64[ns]")
        conv = {}
        for v in ds.data_vars:
            checks.check_physical(ds[v], str(p), v, BAND_TABLE_UNITS[v])
            conv[CMIP_TO_CANONICAL[v]] = convert_variable(
                v, ds[v].assign_attrs(units=BAND_TABLE_UNITS[v]), f"{p}")
        out = xr.Dataset(conv).assign_coords(schema.band_coords())
        if start or end:
            out = out.sel(time=slice(start, end))
        per_scen[scen] = out
    if not per_scen:
        raise DataError(f"cmip: none of scenarios {list(scenarios or [])} in the band tables")
    first = min(ds["time"].values.min() for ds in per_scen.values())
    historical_end = (pd.Timestamp(first) - pd.offsets.MonthBegin(1)).strftime("%Y-%m")
    out = _finish(per_scen, historical_end, gap_policy, f"cmip band table {model}")
    out.attrs["historical_included"] = "no"
    out.attrs["model"] = model
    prov = (f"cmip source: band tables {', '.join(used)} (github "
            "addinar/permafrost-modeling-convlstm); band value = maximum over model cells")
    return out, prov


# --- the source ---------------------------------------------------------------------------------
def _format_of(paths: Any) -> str:
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    names: list[str] = []
    for item in items:
        p = Path(str(item))
        names += [q.name for q in p.iterdir()] if p.is_dir() else [p.name]
    if any(_REGION_RE.match(n) for n in names):
        return "region-table"
    if any(_BAND_FILE_RE.match(n) for n in names):
        return "band-table"
    return "drs"


def open_cmip(paths: Any, *, format: str = "auto", data_label: str | None = None,
              **options: Any) -> xr.Dataset:
    """Read CMIP data in any of the three layouts; see the module docstring."""
    if options.get("gap_policy", "seasonal") not in GAP_POLICIES:
        raise DataError(f"cmip: gap_policy {options['gap_policy']!r}; use one of "
                        f"{', '.join(GAP_POLICIES)}")
    fmt = _format_of(paths) if format == "auto" else format
    readers = {"drs": open_drs, "region-table": open_region_table, "band-table": open_band_table}
    if fmt not in readers:
        raise DataError(f"cmip: format {format!r}; use auto, {', '.join(readers)}")
    try:
        ds, prov = readers[fmt](paths, **options)
    except TypeError as exc:
        raise DataError(f"cmip: option not accepted by format {fmt!r} ({exc})") from exc
    model = ds.attrs.get("model", "CMIP")
    ds.attrs[schema.DATA_LABEL_ATTR] = data_label or f"CMIP {model} (real)"
    ds.attrs["provenance"] = prov + (f"; gap policy {ds.attrs['gap_policy']}: filled "
                                     f"{ds.attrs['gap_filled_months']}"
                                     if ds.attrs.get("gap_filled_months") else
                                     f"; gap policy {ds.attrs['gap_policy']}: no gaps"
                                     if not ds.attrs.get("gap_months") else
                                     f"; gaps left: {ds.attrs['gap_months']}")
    return ds


class CMIPSource(Source):
    """CMIP5/CMIP6 historical + scenario runs -> (scenario, time, band), ERA5-Land conventions.

    Options: ``paths``; ``format`` (auto|drs|region-table|band-table); ``model``, ``member``,
    ``historical_member``, ``run``, ``historical_run``, ``scenarios``, ``variables`` (CMIP
    names), ``sftlf``, ``spatial``, ``region``, ``gap_policy``, ``start``, ``end``,
    ``empty_bands`` (nearest|error|missing), ``data_label``.
    """

    name: ClassVar[str] = "cmip"
    role: ClassVar[str] = "scenario"
    description: ClassVar[str] = "CMIP5/CMIP6 model runs (DRS NetCDF or the real tables) per band"
    variables: ClassVar[tuple[Variable, ...]] = tuple(DECLARED.values())
    scenario_notes: ClassVar[dict[str, str]] = {
        **{canon: f"CMIP {cmip_name}, in ERA5-Land units and signs, bias-corrected against the "
                  "reanalysis" for cmip_name, canon in CMIP_TO_CANONICAL.items()},
        **{f"swvl{i}": "CMIP mrso (and mrsos) split into the four layers with the reanalysis' "
                       "layer fractions (data/soilwater.py), bias-corrected"
           for i in range(1, 5)},
    }
    differs: ClassVar[dict[str, str]] = {
        f"swvl{i}": ("the scenario's swvl is TOTAL soil water (liquid + ice) split from the "
                     "model's mrso, while the reanalysis swvl is the LIQUID part only (it drops "
                     "as the soil freezes: correlation 0.82-0.87 with soil temperature on the "
                     "demo), so a network reads 'frozen' in a thawed future")
        for i in range(1, 5)}

    def provides(self) -> tuple[Variable, ...]:
        """The canonical variables this entry gives, from its options and file names only.

        ``variables`` (CMIP names) narrows the list; region tables hold ``tas``/``pr`` only,
        band tables no ``mrso``; DRS files give the variables named in their file names.
        """
        return tuple(DECLARED[n] for n in self._provided_names())

    def _provided_names(self) -> list[str]:
        opts = self.options
        cmip_vars = list(CMIP_TO_CANONICAL)
        if opts.get("variables"):
            cmip_vars = [v for v in cmip_vars if v in opts["variables"]]
        paths = opts.get("paths", opts.get("path"))
        fmt = opts.get("format", "auto")
        if paths is not None and fmt == "auto":
            try:
                fmt = _format_of(paths)
            except OSError:
                fmt = "drs"
        if fmt == "region-table":
            cmip_vars = [v for v in cmip_vars if v in ("tas", "pr")]
        elif fmt == "band-table":
            cmip_vars = [v for v in cmip_vars if v in BAND_TABLE_COLUMNS.values()]
        elif fmt == "drs" and paths is not None:
            try:  # the variables named in the file names (no file is opened)
                found = {parse_drs(p).var for p in expand_paths(paths, "cmip")
                         if p.suffix == ".nc"}
            except DataError:
                found = set(cmip_vars)
            cmip_vars = [v for v in cmip_vars if v in found]
        names = {CMIP_TO_CANONICAL[v] for v in cmip_vars}
        return [n for n in CANONICAL_ORDER if n in names]

    def open(self) -> xr.Dataset:
        opts = dict(self.options)
        paths = opts.pop("paths", opts.pop("path", None))
        if paths is None:
            raise DataError("cmip: option 'paths' (files, folder or glob) is required")
        return open_cmip(paths, **opts)

    @classmethod
    def fetch(
        cls, out: Path, *,
        project: Annotated[Literal["CMIP5", "CMIP6"], "CMIP phase (ESGF project)."] = "CMIP5",
        model: Annotated[str, "Climate model (CMIP5 model / CMIP6 source_id)."] = DEFAULT_MODEL,
        experiments: Annotated[Sequence[str], "Comma-separated experiments: historical and the "
                               "scenarios (see docs/data-sources.md)."] = (),
        variables: Annotated[Sequence[str], "Comma-separated CMIP variables."] = tuple(
            CMIP_TO_CANONICAL),
        member: Annotated[str, "Ensemble member (CMIP6: with forcing index, r1i1p1f1)."] = "r1i1p1",
        client: Any = None, progress: bool = True,
    ) -> list[Path]:
        """Search ESGF and download CMIP monthly files (plus sftlf).

        One copy per file name in ``out`` (see :mod:`permaplug.plugins.sources.cmip_fetch`);
        ``client`` replaces the HTTPS client (tests). Files already in ``out`` are kept.
        """
        from permaplug.plugins.sources.cmip_fetch import fetch_esgf

        return fetch_esgf(out, project=project, model=model, experiments=experiments,
                          variables=variables, member=member, client=client, progress=progress)
