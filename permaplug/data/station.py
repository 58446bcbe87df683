"""Station soil temperature: sensor records -> monthly means -> the four ERA5-Land layers.

Three steps, each a function, so that other station formats only add a reader:

1. **Readers** turn a file into *readings*: a long :class:`pandas.DataFrame` with columns
   ``site`` (str), ``day`` (datetime64, the reading's calendar day), ``time`` (datetime64, the
   reading's time stamp), ``depth_cm`` (float, positive down) and ``value`` (degC; NaN = a
   reading row without a value). Formats: the Toolik EDC export (:func:`read_edc`), the GTN-P
   database export (:func:`read_gtnp`) and plain long or wide tables (:func:`read_long`,
   :func:`read_wide`).
2. :func:`monthly_means`: a sensor's monthly mean exists only where at least ``min_coverage``
   (default 0.8) of the month's *expected* readings have a value. Expected readings = days in
   the month x readings per day, where readings per day is the most common number of distinct
   time stamps per day among the days of that month that have rows (3-hourly data: 8; the
   hourly 1988 EDC data: 24; daily data: 1), or the ``readings_per_day`` option. Days without
   any row count as missing readings. Months below the threshold are NaN, never filled.
3. :func:`layer_weights` / :func:`to_layers`: the depth-weighted rule below.

**The depth-weighted layer rule.** Among the sensors with a monthly mean in that month, sorted
by depth, each sensor stands for the depth interval between the midpoints to its neighbours;
the shallowest one's interval reaches up to the surface, the deepest one's ends at its own
depth (nothing is extrapolated below the deepest sensor). A layer's value is the mean of the
sensors weighted by the thickness their intervals share with the layer. A layer is missing
(NaN) when no sensor lies in it (top <= depth <= bottom, boundaries included: a sensor on a
boundary is next to both layers) or when no interval overlaps it. At Toolik (0, 5, 10, 100 cm):
0-7 cm = (2.5 x T0 + 4.5 x T5) / 7; 7-28 cm = (0.5 x T5 + 20.5 x T10) / 21; 28-100 cm =
(27 x T10 + 45 x T100) / 72; 100-289 cm is missing (no sensor below 100 cm). In a month
without the 0 and 5 cm readings (2017) the 0-7 cm layer is missing too; before 1998-09, with
the 0 and 100 cm sensors only, 0-7 cm is the 0 cm sensor, 7-28 cm is missing and 28-100 cm =
(22 x T0 + 50 x T100) / 72; with the 0 cm sensor alone (1988) every layer is missing (its
interval has no thickness).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data import checks

MIN_COVERAGE = 0.8
LAYERS_CM: tuple[tuple[float, float], ...] = tuple((a * 100, b * 100) for a, b in schema.LAYERS)
READING_COLUMNS = ("site", "day", "time", "depth_cm", "value")


# --- readers ----------------------------------------------------------------------------------
def _read_csv(path: Path, what: str, **kw) -> pd.DataFrame:
    if not Path(path).is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        frame = pd.read_csv(path, **kw)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: cannot read the {what} table ({first})") from None
    frame.index = frame.index + 2  # the file line of each row (line 1 is the header)
    return frame


def _numeric(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Numbers of one column (:func:`permaplug.data.checks.numeric_column`: text names the
    file, line and column; table sentinels -999, -9999, 1e20 are missing)."""
    return checks.numeric_column(values, path, column, lines=values.index.to_numpy())[0] \
        .to_numpy(float)


def _dates(values: pd.Series, path: Path, column: str, fmt: str | None = None) -> pd.Series:
    try:
        return pd.to_datetime(values, format=fmt)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: column {column!r} is not a date column ({exc})") from None


def _check_depths(depths: Mapping[str, float], path: Path) -> dict[str, float]:
    if not isinstance(depths, Mapping) or not depths:
        raise DataError(f"{path}: option 'depths' must map each sensor column to its depth in cm, "
                        "e.g. {soil1_5cm: 5}")
    out = {}
    for col, d in depths.items():
        try:
            out[str(col)] = float(d)
        except (TypeError, ValueError):
            raise DataError(f"{path}: depth of column {col!r} is {d!r}, not a number of cm") from None
        if out[str(col)] < 0:
            raise DataError(f"{path}: depth of column {col!r} is {d} cm; depths are positive down")
    return out


def _melt(frame: pd.DataFrame, depths: dict[str, float], path: Path, site: str) -> pd.DataFrame:
    missing = [c for c in depths if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} (declared in 'depths'); columns: "
                        f"{', '.join(map(str, frame.columns))}")
    parts = []
    for col, depth in depths.items():
        value = _numeric(frame[col], path, col)
        checks.check_physical(xr.DataArray(value, dims="line", name=col,
                                           coords={"line": frame.index.to_numpy()},
                                           attrs={"standard_name": "soil_temperature"}),
                              str(path), units="degC")  # soil temperatures, degC by contract
        parts.append(pd.DataFrame({"site": site, "day": frame["day"].to_numpy(),
                                   "time": frame["time"].to_numpy(), "depth_cm": depth,
                                   "value": value}))
    return pd.concat(parts, ignore_index=True)


def read_edc(path: Path, depths: Mapping[str, float], site: str = "site") -> pd.DataFrame:
    """Toolik Field Station EDC export: ``date`` (YYYY-MM-DD), ``hour`` (HHMM local, 100..2400,
    2400 = the end of the day), one column per sensor (degC); an empty field is missing.

    ``depths`` maps the sensor columns to read onto their depth in cm (the file's column names,
    e.g. ``soil1_5cm``, are not parsed: the catalog declares the depths). The reading belongs
    to the day of its ``date`` (an ``hour`` of 2400 stays on that day). Rows without an hour
    and without any value (two in the Toolik file) are dropped."""
    path = Path(path)
    depths = _check_depths(depths, path)
    frame = _read_csv(path, "EDC export", dtype={"date": str, "hour": str})
    for col in ("date", "hour"):
        if col not in frame.columns:
            raise DataError(f"{path}: no {col!r} column (an EDC export has date, hour and one "
                            "column per sensor)")
    missing = [c for c in depths if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} (declared in 'depths'); columns: "
                        f"{', '.join(map(str, frame.columns))}")
    no_hour = frame["hour"].isna()
    if no_hour.any():  # rows without an hour: dropped when they hold no value either
        if frame.loc[no_hour, list(depths)].notna().any().any():
            row = int(np.flatnonzero(no_hour & frame[list(depths)].notna().any(axis=1))[0]) + 2
            raise DataError(f"{path}: row {row} has values but no 'hour'")
        frame = frame[~no_hour].copy()  # the index keeps each row's file line
    frame["day"] = _dates(frame["date"], path, "date", "%Y-%m-%d")
    hour = _numeric(frame["hour"], path, "hour")
    if ((hour < 0) | (hour > 2400)).any():
        raise DataError(f"{path}: column 'hour' must be HHMM between 0 and 2400")
    minutes = (hour // 100) * 60 + hour % 100
    frame["time"] = frame["day"] + pd.to_timedelta(minutes, unit="min")
    return _melt(frame, depths, path, site)


def read_wide(path: Path, depths: Mapping[str, float], site: str = "site",
              time_column: str = "time", na_values: Sequence[float] = ()) -> pd.DataFrame:
    """A plain wide table: a time (or date) column and one column per sensor, depths in cm
    declared in ``depths``; ``na_values`` are missing (as are empty fields)."""
    path = Path(path)
    depths = _check_depths(depths, path)
    frame = _read_csv(path, "wide soil temperature", na_values=list(na_values))
    if time_column not in frame.columns:
        raise DataError(f"{path}: no time column {time_column!r} (option 'time_column')")
    frame["time"] = _dates(frame[time_column], path, time_column)
    frame["day"] = frame["time"].dt.floor("D")
    return _melt(frame, depths, path, site)


def read_long(path: Path, site: str = "site", time_column: str = "time",
              depth_column: str = "depth", value_column: str = "temperature",
              depth_units: str = "cm", na_values: Sequence[float] = (),
              site_column: str | None = None) -> pd.DataFrame:
    """A plain long table: one row per reading with a time (or date), a depth and a
    temperature column (degC); optional ``site_column`` for several sites in one file."""
    path = Path(path)
    frame = _read_csv(path, "long soil temperature", na_values=list(na_values))
    for col in (time_column, depth_column, value_column) + ((site_column,) if site_column else ()):
        if col not in frame.columns:
            raise DataError(f"{path}: no column {col!r}; columns: {', '.join(map(str, frame.columns))}")
    factor = {"cm": 1.0, "m": 100.0, "mm": 0.1}.get(depth_units)
    if factor is None:
        raise DataError(f"{path}: depth_units {depth_units!r}; use cm, m or mm")
    time = _dates(frame[time_column], path, time_column)
    depth = _numeric(frame[depth_column], path, depth_column) * factor
    if np.isnan(depth).any():
        raise DataError(f"{path}: column {depth_column!r} has empty depths")
    if (depth < 0).any():
        raise DataError(f"{path}: negative depth in column {depth_column!r}; depths are positive "
                        "down (below the ground surface)")
    return pd.DataFrame({
        "site": frame[site_column].astype(str).to_numpy() if site_column else site,
        "day": time.dt.floor("D").to_numpy(), "time": time.to_numpy(), "depth_cm": depth,
        "value": _numeric(frame[value_column], path, value_column),
    })


def read_gtnp(path: Path, metadata_file: Path | None = None,
              na_values: Sequence[float] = (-999.0,)) -> tuple[pd.DataFrame, dict[str, dict]]:
    """GTN-P database export (the long layout): columns ``dataset_id``, ``date`` (YYYY-MM-DD)
    or ``utc_time`` (YYYY-MM-DD HH:MM:SS), ``depth`` (m, positive down) and ``temperature``
    (degC), one row per reading. ``metadata_file``: the export's JSON, a list of records with
    ``id`` (the dataset_id) and ``borehole: {site_id, location: {latitude, longitude,
    elevation}}``. Returns the readings (site = site_id, else the dataset_id) and each site's
    position ``{site: {lat, lon, elevation}}`` (empty without metadata)."""
    path = Path(path)
    frame = _read_csv(path, "GTN-P export", na_values=list(na_values))
    time_col = "utc_time" if "utc_time" in frame.columns else "date"
    for col in ("dataset_id", time_col, "depth", "temperature"):
        if col not in frame.columns:
            raise DataError(f"{path}: no column {col!r}; a GTN-P export has dataset_id, date or "
                            "utc_time, depth, temperature")
    names = {str(i): str(i) for i in frame["dataset_id"].unique()}
    positions: dict[str, dict] = {}
    if metadata_file is not None:
        try:
            meta = json.loads(Path(metadata_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{metadata_file}: cannot read the GTN-P metadata JSON ({exc})") from None
        records = meta if isinstance(meta, list) else [meta]
        by_id = {str(r.get("id")): r for r in records if isinstance(r, dict)}
        for ds_id in names:
            rec = by_id.get(ds_id)
            if rec is None:
                raise DataError(f"{metadata_file}: no metadata record with id {ds_id!r} "
                                f"(dataset_id in {path})")
            hole = rec.get("borehole") or {}
            loc = hole.get("location") or {}
            try:
                lat, lon = float(loc["latitude"]), float(loc["longitude"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{metadata_file}: record {ds_id!r} has no borehole.location "
                                "latitude/longitude") from None
            name = str(hole.get("site_id") or ds_id)
            names[ds_id] = name
            elev = loc.get("elevation")
            positions[name] = {"lat": lat, "lon": lon,
                               "elevation": float(elev) if elev is not None else float("nan")}
    fmt = "%Y-%m-%d %H:%M:%S" if time_col == "utc_time" else "%Y-%m-%d"
    time = _dates(frame[time_col], path, time_col, fmt)
    depth = _numeric(frame["depth"], path, "depth") * 100.0
    if np.isnan(depth).any() or (depth < 0).any():
        raise DataError(f"{path}: column 'depth' must hold depths in m, positive down")
    readings = pd.DataFrame({
        "site": frame["dataset_id"].astype(str).map(names).to_numpy(),
        "day": time.dt.floor("D").to_numpy(), "time": time.to_numpy(), "depth_cm": depth,
        "value": _numeric(frame["temperature"], path, "temperature"),
    })
    return readings, positions


# --- monthly means ----------------------------------------------------------------------------
def monthly_means(readings: pd.DataFrame, min_coverage: float = MIN_COVERAGE,
                  readings_per_day: float | None = None) -> xr.Dataset:
    """Monthly sensor means with the coverage rule (module docstring).

    Returns dims ``(time, site, depth)``: ``tsoil`` (degC, NaN below the threshold),
    ``coverage`` (valid readings / expected readings, 0..1), ``n_valid``; ``depth`` in cm.
    """
    if not 0.0 < float(min_coverage) <= 1.0:
        raise DataError(f"min_coverage {min_coverage!r}: must be in (0, 1]")
    if readings.empty:
        raise DataError("the station file holds no readings")
    r = readings.copy()
    r["month"] = r["day"].dt.to_period("M")
    # readings per day: the modal number of distinct stamps per day in each site-month
    per_day = r.groupby(["site", "month", "day"])["time"].nunique().rename("n").reset_index()
    if readings_per_day is None:
        rpd = per_day.groupby(["site", "month"])["n"].agg(lambda s: s.mode().max())
    else:
        if float(readings_per_day) <= 0:
            raise DataError(f"readings_per_day {readings_per_day!r}: must be > 0")
        rpd = per_day.groupby(["site", "month"])["n"].size() * 0 + float(readings_per_day)
    valid = r[np.isfinite(r["value"])]
    grouped = valid.groupby(["site", "month", "depth_cm"])["value"]
    stats = pd.DataFrame({"mean": grouped.mean(), "n_valid": grouped.size()}).reset_index()
    stats = stats.merge(rpd.rename("rpd").reset_index(), on=["site", "month"], how="left")
    days = stats["month"].dt.days_in_month.to_numpy()
    stats["coverage"] = stats["n_valid"] / (days * stats["rpd"])
    stats["tsoil"] = stats["mean"].where(stats["coverage"] >= float(min_coverage))
    months = pd.period_range(r["month"].min(), r["month"].max(), freq="M")
    sites = sorted(r["site"].unique())
    depths = np.sort(r["depth_cm"].unique())
    stats["time"] = stats["month"].dt.to_timestamp()
    index = pd.MultiIndex.from_product([months.to_timestamp(), sites, depths],
                                       names=["time", "site", "depth"])
    full = stats.rename(columns={"depth_cm": "depth"}).set_index(["time", "site", "depth"])
    full = full[["tsoil", "coverage", "n_valid"]].reindex(index)
    full["coverage"] = full["coverage"].fillna(0.0)
    full["n_valid"] = full["n_valid"].fillna(0).astype(np.int64)
    ds = xr.Dataset.from_dataframe(full)
    ds = ds.assign_coords(time=ds["time"].values.astype("datetime64[ns]"))
    ds["tsoil"].attrs = {"units": "degC", "standard_name": "soil_temperature",
                         "long_name": "monthly mean sensor soil temperature "
                                      f"(NaN below {float(min_coverage):g} coverage)"}
    ds["coverage"].attrs = {"units": "1", "long_name": "valid readings / expected readings"}
    ds["depth"].attrs = {"units": "cm", "positive": "down", "long_name": "sensor depth"}
    ds.attrs["min_coverage"] = float(min_coverage)
    return ds


# --- depth-weighted layers --------------------------------------------------------------------
def layer_weights(depths_cm: Sequence[float],
                  layers_cm: Sequence[tuple[float, float]] = LAYERS_CM) -> np.ndarray:
    """Weights ``[D, L]`` of sensors at ``depths_cm`` for each layer (columns sum to 1; an
    all-zero column = the layer is missing). The rule is in the module docstring."""
    d = np.asarray(depths_cm, float)
    order = np.argsort(d)
    ds = d[order]
    mids = (ds[1:] + ds[:-1]) / 2
    lo = np.concatenate([[min(0.0, ds[0]) if ds.size else 0.0], mids])
    hi = np.concatenate([mids, ds[-1:]])
    w = np.zeros((len(d), len(layers_cm)))
    for j, (a, b) in enumerate(layers_cm):
        if not ((ds >= a) & (ds <= b)).any():
            continue
        overlap = np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
        if overlap.sum() > 0:
            w[order, j] = overlap / overlap.sum()
    return w


SENSOR_SETS = ("available", "complete")


def to_layers(tsoil: xr.DataArray, layers_cm: Sequence[tuple[float, float]] = LAYERS_CM,
              sensor_set: str = "available") -> xr.DataArray:
    """Sensor means ``(..., depth)`` -> layer values ``(..., layer)`` (degC); ``layer`` =
    stl1..stl4. ``sensor_set="available"``: the rule applied each month to the sensors that
    have a value then (module docstring); ``"complete"``: the weights of the full sensor set
    every month, and a layer is missing in a month when any sensor it weighs is missing (a
    series of constant composition, shorter where sensors started late)."""
    if sensor_set not in SENSOR_SETS:
        raise DataError(f"sensor_set {sensor_set!r}: use one of {', '.join(SENSOR_SETS)}")
    depth = np.asarray(tsoil["depth"].values, float)
    vals = np.moveaxis(np.asarray(tsoil.values, float), tsoil.get_axis_num("depth"), -1)
    flat = vals.reshape(-1, len(depth))
    out = np.full((flat.shape[0], len(layers_cm)), np.nan)
    if sensor_set == "complete":
        w = layer_weights(depth, layers_cm)
        res = np.nan_to_num(flat) @ w
        needed_missing = (~np.isfinite(flat)).astype(float) @ (w > 0).astype(float)
        res[(needed_missing > 0) | (w.sum(axis=0) == 0)[None, :]] = np.nan
        out = res
        avail = np.zeros((0, len(depth)), bool)
    else:
        avail = np.isfinite(flat)
    patterns, inverse = (np.unique(avail, axis=0, return_inverse=True) if len(avail)
                         else (avail, np.zeros(0, np.int64)))
    for p, pattern in enumerate(patterns):
        if not pattern.any():
            continue
        rows = np.flatnonzero(inverse.ravel() == p)
        w = layer_weights(depth[pattern], layers_cm)  # [d, L]
        res = flat[np.ix_(rows, np.flatnonzero(pattern))] @ w
        res[:, w.sum(axis=0) == 0] = np.nan
        out[rows] = res
    dims = [dm for dm in tsoil.dims if dm != "depth"] + ["layer"]
    shape = [tsoil.sizes[dm] for dm in dims[:-1]] + [len(layers_cm)]
    names = list(schema.TARGETS[: len(layers_cm)])
    coords = {k: v for k, v in tsoil.coords.items() if "depth" not in v.dims}
    return xr.DataArray(out.reshape(shape), dims=dims, coords={**coords, "layer": names},
                        attrs={"units": "degC"})


def rule_description(depths_cm: Sequence[float]) -> str:
    """One line giving each layer's weights for the full sensor set, for provenance."""
    w = layer_weights(depths_cm)
    parts = []
    for j, (a, b) in enumerate(LAYERS_CM):
        if w[:, j].sum() == 0:
            parts.append(f"{a:g}-{b:g} cm: missing (no sensor in or next to it)")
        else:
            terms = " + ".join(f"{w[i, j]:.3f} x {d:g} cm" for i, d in enumerate(depths_cm)
                               if w[i, j] > 0)
            parts.append(f"{a:g}-{b:g} cm = {terms}")
    return "; ".join(parts)
