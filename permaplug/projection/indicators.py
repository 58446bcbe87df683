"""Permafrost indicators from monthly soil-temperature profiles.

Pure functions on an :class:`xarray.DataArray` of soil temperature (degC) with dims ``time``
and ``layer`` (the four ERA5-Land layers, top first) plus any other dims (``band``, ``cell``,
``scenario``, ``model``...), which are carried through unchanged. Only complete calendar years
(12 monthly values) enter annual indicators.

* :func:`months_above_zero` -- months per year with a layer above 0 degC, ``(year, ..., layer)``;
* :func:`annual_max` -- warmest month per year and layer (degC);
* :func:`thaw_depth` -- depth (m) where the annual-maximum profile crosses 0 degC, interpolated
  linearly between layer mid-depths (``schema.LAYER_MIDPOINTS_M``); ``inf`` when every layer's
  maximum is above 0 degC (reported as ``"> 1.945 m"``: below the deepest mid-depth, where the
  four layers cannot say), ``0`` when the top layer does not thaw (``"< 0.035 m"``);
* :func:`near_surface_permafrost` -- the standard definition: a layer at or below 0 degC all
  year (annual maximum of the monthly means <= 0) for at least two consecutive years.

Resolution (:data:`RESOLUTION_NOTE`): four layers (0-7, 7-28, 28-100, 100-289 cm) give four
points of the profile, at the mid-depths 0.035, 0.175, 0.64 and 1.945 m; between two of them
the crossing is a straight-line guess, above 0.035 m and below 1.945 m it is not resolved at
all, and monthly means smooth the warmest days, so the thaw depth is underestimated where the
crossing lies inside a layer that thaws for less than a month.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.core.schema import LAYER_MIDPOINTS_M, LAYERS, N_LAYERS

COLUMN_BOTTOM_M = LAYERS[-1][1]
"""Bottom of the deepest layer (2.89 m)."""
DEEPEST_MID_M = LAYER_MIDPOINTS_M[-1]
"""Mid-depth of the deepest layer (1.945 m): a crossing below it is reported as ``"> 1.945 m"``
(the interpolation has no point below it, whatever the column's 2.89 m bottom)."""
PERMAFROST_YEARS = 2
"""Consecutive years at or below 0 degC that make a layer permafrost (the standard definition)."""
RESOLUTION_NOTE = (
    "thaw depth: first 0 degC crossing of the annual maximum of monthly mean layer "
    "temperatures, interpolated linearly between the layer mid-depths 0.035/0.175/0.64/1.945 m; "
    "not resolved above 0.035 m ('< 0.035 m') or below 1.945 m ('> 1.945 m'); monthly means "
    "smooth the warmest days (depths are lower bounds within a layer); near-surface permafrost: "
    "a layer at or below 0 degC all year for at least 2 consecutive years"
)
"""One-line note written into the indicator CSV and the thaw-depth figures."""


def _check(temps: xr.DataArray) -> None:
    for dim in ("time", "layer"):
        if dim not in temps.dims:
            raise DataError(f"soil temperature array has no {dim!r} dimension (dims: {temps.dims})")
    if temps.sizes["layer"] != N_LAYERS:
        raise DataError(f"soil temperature array has {temps.sizes['layer']} layers, "
                        f"expected {N_LAYERS} (ERA5-Land layers)")


def complete_years(temps: xr.DataArray) -> xr.DataArray:
    """``temps`` restricted to calendar years that hold all 12 months."""
    _check(temps)
    years = temps["time"].dt.year
    counts = years.groupby(years).count()
    full = counts["year"].values[counts.values == 12]
    return temps.sel(time=np.isin(years.values, full))


def _by_year(temps: xr.DataArray) -> xr.core.groupby.DataArrayGroupBy:
    t = complete_years(temps)
    if t.sizes["time"] == 0:
        raise DataError("soil temperature array holds no complete calendar year")
    return t.groupby(t["time"].dt.year)


def months_above_zero(temps: xr.DataArray, threshold: float = 0.0) -> xr.DataArray:
    """Months per year in which each layer is above ``threshold`` degC: ``(year, ..., layer)``."""
    out = _by_year(temps).map(lambda g: (g > threshold).sum("time"))
    out.name = "months_above_0"
    out.attrs = {"units": "month", "long_name": f"months per year above {threshold:g} degC"}
    return out


def annual_max(temps: xr.DataArray) -> xr.DataArray:
    """Warmest monthly temperature per year and layer (degC): ``(year, ..., layer)``."""
    out = _by_year(temps).max("time")
    out.name = "annual_max"
    out.attrs = {"units": "degC", "long_name": "annual maximum of monthly soil temperature"}
    return out


def _thaw_depth_profile(profile: np.ndarray) -> float:
    """Zero crossing (m) of one annual-maximum profile ``[layer]`` (top first)."""
    if np.isnan(profile).any():
        return float("nan")
    if profile[0] <= 0.0:
        return 0.0
    mids = LAYER_MIDPOINTS_M
    for i in range(len(profile) - 1):
        upper, lower = profile[i], profile[i + 1]
        if lower <= 0.0:  # upper > 0 here: the first crossing below the surface
            return float(mids[i] + (mids[i + 1] - mids[i]) * upper / (upper - lower))
    return float("inf")


def thaw_depth(annual_maximum: xr.DataArray) -> xr.DataArray:
    """Thaw depth (m) from an annual-maximum profile ``(..., layer)``; drops ``layer``.

    The first 0 degC crossing from the surface down, interpolated linearly between layer
    mid-depths. ``inf`` when all four layers thaw (the crossing lies below the deepest
    mid-depth, 1.945 m, where four layers cannot place it), ``0`` when the top layer stays at
    or below 0 degC. NaN where the profile has gaps.
    """
    if "layer" not in annual_maximum.dims or annual_maximum.sizes["layer"] != N_LAYERS:
        raise DataError(f"annual maximum needs a 'layer' dimension of size {N_LAYERS}")
    out = xr.apply_ufunc(
        lambda a: np.apply_along_axis(_thaw_depth_profile, -1, a),
        annual_maximum, input_core_dims=[["layer"]], output_dtypes=[float],
    )
    out.name = "thaw_depth"
    out.attrs = {"units": "m", "long_name": "depth of the 0 degC crossing of the annual-maximum "
                 "profile (inf: below the deepest mid-depth 1.945 m; 0: top layer does not "
                 "thaw)"}
    return out


def format_thaw_depth(depth: float) -> str:
    """Human label of a thaw depth: ``'0.52 m'``, ``'> 1.945 m'``, ``'< 0.035 m'``."""
    if np.isnan(depth):
        return "n/a"
    if np.isinf(depth):
        return f"> {DEEPEST_MID_M:g} m"
    if depth <= 0.0:
        return f"< {LAYER_MIDPOINTS_M[0]:g} m"
    return f"{depth:.2f} m"


def _in_frozen_run(frozen: np.ndarray, years: np.ndarray, min_years: int) -> np.ndarray:
    """``frozen`` ``[..., year]`` -> True where the year belongs to a run of at least
    ``min_years`` consecutive (calendar-adjacent) frozen years."""
    out = np.zeros(frozen.shape, dtype=bool)
    flat, res = frozen.reshape(-1, frozen.shape[-1]), out.reshape(-1, frozen.shape[-1])
    for row, dst in zip(flat, res, strict=True):
        start = 0
        for i in range(1, len(years) + 1):
            broken = i == len(years) or not row[i] or not row[i - 1] or years[i] != years[i - 1] + 1
            if broken:
                if row[start] and i - start >= min_years:
                    dst[start:i] = True
                start = i
    return out


def frozen_layers(annual_maximum: xr.DataArray, min_years: int = PERMAFROST_YEARS
                  ) -> xr.DataArray:
    """True where a layer is permafrost in a year: ``(year, ..., layer)``.

    A layer is permafrost in year ``y`` when its annual maximum is at or below 0 degC in ``y``
    and ``y`` belongs to a run of at least ``min_years`` consecutive such years (2: the
    standard definition; the first and last years of the record count only when the
    neighbouring year inside the record confirms them).
    """
    if min_years < 1:
        raise DataError(f"min_years must be >= 1, got {min_years}")
    if "year" not in annual_maximum.dims:
        raise DataError("annual maximum needs a 'year' dimension")
    frozen = annual_maximum <= 0.0
    years = np.asarray(annual_maximum["year"].values, dtype=int)
    return xr.apply_ufunc(
        lambda a: _in_frozen_run(a, years, min_years), frozen,
        input_core_dims=[["year"]], output_core_dims=[["year"]],
    ).transpose(*annual_maximum.dims)


def near_surface_permafrost(annual_maximum: xr.DataArray,
                            min_years: int = PERMAFROST_YEARS) -> xr.DataArray:
    """True where some layer is permafrost (:func:`frozen_layers`): ``(year, ...)``.

    Default: the standard definition, a layer at or below 0 degC all year for at least two
    consecutive years; one cold year between warm ones is not permafrost. ``min_years=1``
    flags every year with a layer whose annual maximum is at or below 0 degC.
    """
    out = frozen_layers(annual_maximum, min_years).any("layer")
    out.name = "near_surface_permafrost"
    out.attrs = {"long_name": "a layer at or below 0 degC all year"
                 + (f" for at least {min_years} consecutive years" if min_years > 1 else "")}
    return out


def permafrost_table_top(annual_maximum: xr.DataArray,
                         min_years: int = PERMAFROST_YEARS) -> xr.DataArray:
    """Mid-depth (m) of the shallowest permafrost layer (:func:`frozen_layers`; NaN: none)."""
    mids = xr.DataArray(np.asarray(LAYER_MIDPOINTS_M), dims="layer")
    masked = xr.where(frozen_layers(annual_maximum, min_years),
                      mids.assign_coords(layer=annual_maximum["layer"]), np.nan)
    out = masked.min("layer", skipna=True)
    out.name = "permafrost_top"
    out.attrs = {"units": "m", "long_name": "mid-depth of the shallowest layer at or below "
                 f"0 degC for at least {min_years} consecutive years"}
    return out


def indicator_tables(temps: xr.DataArray, data_label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Indicator tables of ``temps`` (degC, dims ``time``, ``layer`` and others).

    Returns ``(per_layer, per_year)``: ``per_layer`` has one row per year, other dims and layer
    with ``months_above_0`` and ``annual_max_degC``; ``per_year`` has one row per year and other
    dims with ``thaw_depth_m`` (inf = below 1.945 m), ``thaw_depth`` (label),
    ``near_surface_permafrost`` and ``permafrost_top_m``. Both carry a ``data`` column.
    """
    amax = annual_max(temps)
    months = months_above_zero(temps)
    layer_names = {int(i): f"stl{i + 1}" for i in range(N_LAYERS)}
    per_layer = xr.Dataset({"months_above_0": months, "annual_max_degC": amax})
    per_layer = per_layer.assign_coords(layer=[layer_names[i] for i in range(N_LAYERS)])
    per_layer_df = per_layer.to_dataframe().reset_index()
    depth = thaw_depth(amax)
    per_year = xr.Dataset({
        "thaw_depth_m": depth,
        "near_surface_permafrost": near_surface_permafrost(amax),
        "permafrost_top_m": permafrost_table_top(amax),
    })
    per_year_df = per_year.to_dataframe().reset_index()
    per_year_df.insert(per_year_df.columns.get_loc("thaw_depth_m") + 1, "thaw_depth",
                       [format_thaw_depth(d) for d in per_year_df["thaw_depth_m"]])
    drop = [c for c in ("lat_min", "lat_max") if c in per_layer_df]
    per_layer_df = per_layer_df.drop(columns=drop)
    per_year_df = per_year_df.drop(columns=[c for c in drop if c in per_year_df])
    per_layer_df["data"] = data_label
    per_year_df["data"] = data_label
    return per_layer_df, per_year_df
