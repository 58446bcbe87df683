"""Value checks every source runs on load: fill values, impossible values, text in numbers.

One module so that each source needs one call per file it reads:

* :func:`numeric_column` -- a table column as numbers: text in it is a :class:`DataError`
  naming the file, the line and the column; the table sentinels :data:`SENTINELS`
  (-999, -9999, 1e20) become missing values, counted for the gap report.
* :func:`check_physical` -- values that are impossible for the quantity in its *declared* units
  are a :class:`DataError` naming the file, the variable and the first bad value (with its
  time and place). The limits (:data:`LIMITS`) are written in one unit each and converted to
  the declared units with pint through xsdba, so ``K``, ``degC`` and ``°C`` are one quantity:
  temperatures in degC labelled K (or the reverse) fall outside 150-350 K and are refused.
  The common spellings of K and degC are converted without importing xsdba (the same
  offset, tested against xsdba's result), which keeps a demo build free of xsdba's import.
  NetCDF ``_FillValue`` / ``missing_value`` are decoded to missing values by xarray before
  this check; an undeclared fill value (e.g. 1e20) is impossible for every quantity.
* :func:`missing_report` -- one warning line for missing values that became gaps, so the gap
  policy that fills them (or refuses them) is visible.

The limits are physical, not climatological: they catch wrong units and fill values, never a
real extreme.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.errors import DataError

SENTINELS: tuple[float, ...] = (-999.0, -9999.0, 1e20)
"""Values that mean "missing" in tables (CSV): they become NaN, never numbers."""
HUGE = 1e15
"""No quantity permaplug reads reaches this magnitude: such a value is an undeclared fill value."""

LIMITS: dict[str, tuple[float | None, float | None, str]] = {
    "temperature": (150.0, 350.0, "K"),
    "non-negative": (0.0, None, ""),
    "fraction": (0.0, 1.0, "1"),
}
"""Physically possible range per kind of quantity: (low, high, units of the limits)."""

TEMPERATURE_NAMES = ("t2m", "skt", "d2m", "stl1", "stl2", "stl3", "stl4", "tas", "ts")
NON_NEGATIVE_NAMES = ("tp", "sf", "strd", "ssrd", "mrso", "mrsos", "pr", "prsn", "rlds", "rsds")
FRACTION_NAMES = ("swvl1", "swvl2", "swvl3", "swvl4")
_TOLERANCE = 1e-4
"""Relative tolerance below 0 (and above 1) for packing noise, e.g. ERA5's -1e-12 m of rain."""


def kind_of(name: str, standard_name: str = "") -> str | None:
    """``temperature``, ``non-negative``, ``fraction`` or None (no check) for a variable."""
    std = standard_name or ""
    if name in TEMPERATURE_NAMES or std.endswith("temperature"):
        return "temperature"
    if name in NON_NEGATIVE_NAMES or std in ("precipitation_amount", "snowfall_amount",
                                             "precipitation_flux", "snowfall_flux"):
        return "non-negative"
    if name in FRACTION_NAMES or std == "volume_fraction_of_condensed_water_in_soil":
        return "fraction"
    return None


def _pint_units(units: str) -> str:
    """Spellings pint does not take as they are: ``deg C`` -> ``degC``, ``m**3 m**-3`` ..."""
    u = units.strip()
    if u.lower().startswith("deg ") and len(u) <= 6:
        u = u.replace(" ", "")
    return u


_SAME_AS_LIMITS: dict[str, tuple[str, ...]] = {
    "K": ("K", "kelvin"), "1": ("1", "m**3 m**-3", "m3 m-3", "m^3 m^-3", "m3/m3")}
"""Spellings of the limits' own units: no conversion needed (volume fractions as ERA5-Land and
the tables write them; tested equal to xsdba's conversion)."""
_CELSIUS = ("degC", "°C", "deg C", "degree_Celsius", "degrees_Celsius", "celsius")
"""Spellings of degC, converted from the K limits by the same offset pint applies (tested
against xsdba's conversion), so reading a file of known units does not import xsdba (~6 s)."""


def _limits_in(units: str, kind: str) -> tuple[float | None, float | None] | None:
    """The kind's limits converted to ``units`` (None when pint does not know them)."""
    low, high, lim_units = LIMITS[kind]
    if not lim_units or units in _SAME_AS_LIMITS.get(lim_units, ()):
        return low, high
    if lim_units == "K" and units in _CELSIUS:
        return (None if low is None else low - 273.15, None if high is None else high - 273.15)
    try:
        from xsdba.units import convert_units_to

        conv = [None if v is None else float(convert_units_to(f"{v} {lim_units}",
                                                              _pint_units(units)))
                for v in (low, high)]
    except Exception:  # noqa: BLE001 - unknown or incompatible units: the converters say so
        return None
    return conv[0], conv[1]


def _where(da: xr.DataArray, flat: int) -> str:
    """``time 2001-03, band 2`` for the flat index of a value of ``da``."""
    idx = np.unravel_index(flat, da.shape)
    parts = []
    for dim, i in zip(da.dims, idx):
        if dim in da.coords:
            v = da[dim].values[i]
            text = str(v)[:7] if np.issubdtype(np.asarray(v).dtype, np.datetime64) or \
                hasattr(v, "calendar") else f"{v:g}" if isinstance(v, (float, np.floating)) \
                else str(v)
        else:
            text = str(i)
        parts.append(f"{dim} {text}")
    return ", ".join(parts)


def check_physical(da: xr.DataArray, what: str, name: str | None = None,
                   units: str | None = None) -> None:
    """DataError naming ``what`` (the file), the variable and the first impossible value.

    ``da``: values in their declared ``units`` (default ``da.attrs['units']``); ``name``: the
    variable's name (default ``da.name``), which with its ``standard_name`` attribute selects
    the limits (:func:`kind_of`). Units pint does not know are left to the unit converters.
    """
    name = str(name or da.name)
    units = str(units if units is not None else da.attrs.get("units", "")).strip()
    values = np.asarray(da.values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    huge = np.abs(values) >= HUGE
    if huge.any():
        flat = int(np.flatnonzero(huge.ravel())[0])
        raise DataError(f"{what}: variable {name!r}: value {values.ravel()[flat]:g} at "
                        f"{_where(da, flat)} is an undeclared fill value (no quantity reaches "
                        f"{HUGE:g}); declare it as _FillValue or missing_value")
    kind = kind_of(name, str(da.attrs.get("standard_name", "")))
    if kind is None:
        return
    limits = _limits_in(units, kind)
    if limits is None:
        return
    low, high = limits
    span = float(np.max(np.abs(finite))) or 1.0
    bad = np.zeros(values.shape, dtype=bool)
    if low is not None:
        bad |= values < low - (_TOLERANCE * span if kind != "temperature" else 0.0)
    if high is not None:
        bad |= values > high + (_TOLERANCE * span if kind != "temperature" else 0.0)
    if not bad.any():
        return
    flat = int(np.flatnonzero(bad.ravel())[0])
    lo, hi, lim_units = LIMITS[kind]
    rng = (f"{lo:g}-{hi:g} {lim_units}" if hi is not None else f">= {lo:g}").strip()
    hint = ("check the units attribute (degC labelled K, or K labelled degC?)"
            if kind == "temperature" else "check the units attribute and the fill values")
    raise DataError(f"{what}: variable {name!r}: value {values.ravel()[flat]:g} {units} at "
                    f"{_where(da, flat)} is impossible for a {kind.replace('-', ' ')} quantity "
                    f"({rng}); {hint} ({int(bad.sum())} such value(s))")


def check_dataset(ds: xr.Dataset, what: str, names: Mapping[str, str] | None = None) -> None:
    """:func:`check_physical` on every data variable of ``ds`` (``names``: variable -> the
    name that selects its limits, e.g. a provider's column name -> canonical name)."""
    for v in ds.data_vars:
        check_physical(ds[v], what, (names or {}).get(str(v), str(v)))


def numeric_column(values: pd.Series, path: Path | str, column: str,
                   first_line: int = 2, lines: np.ndarray | None = None
                   ) -> tuple[pd.Series, int]:
    """``values`` (one column of a table read from ``path``) as floats, sentinels as NaN.

    ``first_line``: the file line (1-based) of the column's first value, so that text in the
    column is reported as ``<path>: line N, column 'C': 'abc' is not a number``; ``lines``
    (the file line of each value) replaces it when rows were dropped. Returns the floats and
    the number of sentinel values turned into NaN.
    """
    num = pd.to_numeric(values, errors="coerce")
    text = num.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if text.any():
        pos = int(np.flatnonzero(text.to_numpy())[0])
        line = int(lines[pos]) if lines is not None else first_line + pos
        raise DataError(f"{path}: line {line}, column {column!r}: "
                        f"{str(values.iloc[pos])!r} is not a number")
    num = num.astype(float)
    sentinel = num.isin(SENTINELS)
    return num.mask(sentinel), int(sentinel.sum())


def missing_report(what: str, counts: Mapping[str, int], policy: str) -> str | None:
    """One line for the missing values found on load (sentinels, empty cells), or None."""
    shown = {k: n for k, n in counts.items() if n}
    if not shown:
        return None
    parts = ", ".join(f"{n} in {k!r}" for k, n in shown.items())
    return (f"{what}: {sum(shown.values())} missing value(s) (fill values {', '.join(f'{s:g}' for s in SENTINELS)}"
            f" or empty cells: {parts}) treated as gaps ({policy})")


def warn_missing(what: str, counts: Mapping[str, int], policy: str) -> None:
    """:func:`missing_report` as a warning (the CLI prints it as one ``Warning:`` line)."""
    line = missing_report(what, counts, policy)
    if line:
        warnings.warn(line, stacklevel=3)
