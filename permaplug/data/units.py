"""Unit conversion to the canonical schema with pint (through xsdba's unit registry).

One entry point, :func:`to_canonical`: "convert this DataArray to the canonical units of
variable X". The units attribute is parsed by pint (``xsdba.units.units2pint``, the cf-xarray
registry: ``K``, ``degC``, ``°C``, ``kg m-2 s-1``, ``m**3 m**-3``, ``W/m2``... are all
understood), so there is no table of accepted spellings here, only a few aliases pint does not
know (``deg C``, ``m of water equivalent``, ``fraction``...). Beyond what pint converts directly:

* **rates -> monthly totals**: a variable whose canonical form is a monthly total (schema
  ``accumulated``, e.g. ``tp`` in mm, ``ssrd`` in J m-2) given as a monthly-mean rate
  (``kg m-2 s-1``, ``mm/day``, ``W m-2``) is multiplied by the length of its month, taken from
  the month-start ``time`` coordinate (proleptic Gregorian month lengths);
* **water mass <-> depth**: ``kg m-2`` and ``mm`` of liquid water are one quantity (density
  1000 kg m-3).

The conversion is the affine map pint gives (factor and offset, e.g. K -> degC is ``x - 273.15``),
applied with xarray arithmetic so NaN, dask arrays and float32 stay as they are. Units that are
not a form of the canonical quantity (a temperature labelled ``mm``) raise
:class:`~permaplug.core.errors.DataError` naming the variable. Signs (CMIP's upward-positive
turbulent fluxes) are the source's business, not a unit conversion.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.core.variables import Variable

WATER_DENSITY = "1000 kg m-3"
"""Liquid water: converts a water mass per area (kg m-2) to a depth (mm) and back."""

ALIASES: dict[str, str] = {
    "deg C": "degC", "Kelvin": "K", "fraction": "1", "m of water equivalent": "m",
    "m of water": "m", "m w.e.": "m",
}
"""Spellings found in the providers' files that pint does not parse."""


def days_in_month(time: xr.DataArray | pd.DatetimeIndex | np.ndarray) -> xr.DataArray | np.ndarray:
    """Days in each month of ``time`` (datetime64 values), same shape (xarray stays xarray)."""
    if isinstance(time, xr.DataArray):
        return time.dt.days_in_month
    return pd.DatetimeIndex(np.asarray(time)).days_in_month.to_numpy()


def _declared(name: str):
    """The variable ``name`` as sources and features declare it (the plugin registry)."""
    from permaplug.core.plugins import get_registry

    try:
        return get_registry().variable(name)
    except KeyError:
        return None


def canonical_units(name: str) -> str:
    """The canonical units of variable ``name`` (as a source or feature plugin declares it)."""
    v = _declared(name)
    if v is None:
        raise DataError(f"variable {name!r} has no canonical units (no source or feature "
                        "declares it)")
    return v.units


def _is_monthly_total(name: str) -> bool:
    v = _declared(name)
    return bool(v is not None and v.accumulated)


@lru_cache(maxsize=256)
def _parse(units: str) -> Any:
    """The pint unit of a units string (aliases resolved); ValueError when pint cannot parse."""
    import tokenize

    import pint
    from xsdba.units import units2pint

    text = ALIASES.get(units.strip(), units.strip())
    try:
        return units2pint(text)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, SyntaxError,
            tokenize.TokenError, ArithmeticError, AssertionError) as exc:  # pint fails many ways
        raise ValueError(str(exc)) from None


def normalise(units: str) -> str:
    """The CF spelling of a units string (``"kg m**-2"`` -> ``"kg m-2"``, ``"°C"`` -> ``"degC"``).

    ValueError when pint cannot parse it.
    """
    from xsdba.units import units2str

    out = units2str(_parse(units))
    return "degC" if out == "°C" else out


KNOWN_AFFINE: dict[tuple[str, str, bool], tuple[float, float]] = {
    ("K", "degC", False): (1.0, -273.15),
    ("degC", "degC", False): (1.0, 0.0),
    ("m", "mm", False): (1000.0, 0.0),
    ("m of water equivalent", "mm", False): (1000.0, 0.0),
    ("mm", "mm", False): (1.0, 0.0),
    ("J m**-2", "J m-2", False): (1.0, 0.0),
    ("J m-2", "J m-2", False): (1.0, 0.0),
    ("m**3 m**-3", "m3 m-3", False): (1.0, 0.0),
    ("m3 m-3", "m3 m-3", False): (1.0, 0.0),
}
"""``(factor, offset)`` of the ERA5-Land spellings (and identities), equal to pint's
(``tests/test_data_units.py``): reading a reanalysis file then does not import xsdba's unit
registry, which imports all of xsdba (2-4 s); other units go through pint."""


@lru_cache(maxsize=256)
def _affine(src: str, dst: str, per_month: bool) -> tuple[float, float]:
    """``(factor, offset)`` with ``dst = src * factor + offset`` (ValueError if not convertible).

    ``per_month``: ``src`` is a rate whose product with one second is a ``dst`` quantity (the
    month length in seconds is applied separately). Water mass and depth convert via
    :data:`WATER_DENSITY`. :data:`KNOWN_AFFINE` first, else pint (:func:`_pint_affine`).
    """
    known = KNOWN_AFFINE.get((src.strip(), dst.strip(), bool(per_month)))
    return known if known is not None else _pint_affine(src, dst, per_month)


def _pint_affine(src: str, dst: str, per_month: bool) -> tuple[float, float]:
    """:func:`_affine` computed by pint (xsdba's unit registry)."""
    from xsdba.units import str2pint, units

    s, d = _parse(src), _parse(dst)
    if per_month:
        s = s * units.second
    q = units.Quantity(1.0, s)
    density = str2pint(WATER_DENSITY)
    for candidate in (q, q / density, q * density):
        if candidate.dimensionality == units.Quantity(1.0, d).dimensionality:
            q = candidate
            break
    else:
        raise ValueError(f"{src!r} is not convertible to {dst!r}")
    if q.dimensionality == {"[temperature]": 1}:  # offset units: factor from the differences
        offset = float(units.Quantity(0.0, s).to(d).magnitude)
        delta_s = (units.Quantity(1.0, s) - units.Quantity(0.0, s)).units
        delta_d = (units.Quantity(1.0, d) - units.Quantity(0.0, d)).units
        factor = float(units.Quantity(1.0, delta_s).to(delta_d).magnitude)
        return factor, offset
    return float(q.to(d).magnitude), 0.0


def _is_rate(units_text: str, canonical: str) -> bool:
    """Whether ``units_text`` times a duration is the quantity of ``canonical``."""
    try:
        _affine(units_text, canonical, True)
    except ValueError:
        return False
    return True


def convert(da: xr.DataArray, target: str, what: str = "data",
            per_month: bool = False) -> xr.DataArray:
    """``da`` (units attribute) converted to the units ``target``; attrs kept, units replaced.

    ``per_month``: ``da`` is a monthly-mean rate to be turned into a monthly total, its month
    lengths taken from ``da["time"]`` (month-start datetime64). ``what`` names the file and
    variable in errors.
    """
    units_text = str(da.attrs.get("units", "")).strip()
    if not units_text:
        raise DataError(f"{what}: units '' (no units attribute); expected a form of {target}")
    try:
        factor, offset = _affine(units_text, target, per_month)
    except ValueError:
        kind = "rate of " if per_month else ""
        raise DataError(f"{what}: units {units_text!r} are not a {kind}{target!r} quantity") \
            from None
    out = da
    if per_month:
        seconds = days_in_month(da["time"]) * 86400.0
        out = out * seconds
    if factor != 1.0:
        out = out * factor
    if offset != 0.0:
        out = out + offset
    return out.assign_attrs({**da.attrs, "units": target})


def to_canonical(da: xr.DataArray, name: str | Variable, what: str | None = None) -> xr.DataArray:
    """``da`` converted to the canonical units of variable ``name``, attrs kept.

    ``name``: a declared variable's name (looked up in the plugin registry), or the
    :class:`~permaplug.core.variables.Variable` itself (a source converting to what it declares).

    Accepts any pint-parsable form of the canonical quantity (K or degC for a temperature, m or
    kg m-2 for a water depth...) and, for a monthly-total variable, a monthly-mean rate
    (W m-2, kg m-2 s-1, mm/day; month lengths from ``da["time"]``). Anything else, including
    a missing units attribute, is a :class:`~permaplug.core.errors.DataError` naming ``what``
    (default: the variable name). Shapes and dtype are kept (float32 stays float32).
    """
    if isinstance(name, Variable):
        variable, name = name, name.name
        target, total = variable.units, variable.accumulated
    else:
        target, total = canonical_units(name), _is_monthly_total(name)
    what = what or name
    units_text = str(da.attrs.get("units", "")).strip()
    if not units_text:
        raise DataError(f"{what}: units '' (no units attribute); expected {target}")
    try:
        _affine(units_text, target, False)
        per_month = False
    except ValueError:
        per_month = total and _is_rate(units_text, target)
        if not per_month:
            detail = " or a monthly-mean rate of it" if total else ""
            raise DataError(f"{what}: units {units_text!r} cannot be converted to {target} "
                            f"(the canonical units of {name}{detail})") from None
    return convert(da, target, what, per_month=per_month)
