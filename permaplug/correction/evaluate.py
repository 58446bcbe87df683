"""What a correction does, in numbers: bias and KS distance over the calibration period, and the
RCP 8.5 minus RCP 2.6 spread of period means, raw and corrected.

Tables are :class:`pandas.DataFrame` with one row per variable and spatial unit (``band`` index,
or ``all`` when the spatial dims hold more than :data:`MAX_UNITS` units, e.g. a grid, which are
then pooled).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import ks_2samp

from permaplug.core.errors import DataError
from permaplug.correction.rules import MULTIPLICATIVE, rule_for

MAX_UNITS = 12
DEFAULT_PERIODS: tuple[tuple[int, int], ...] = ((2024, 2030), (2071, 2100))


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup|F_a - F_b| of the finite values (NaN if empty)."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(ks_2samp(a, b, method="asymp").statistic)  # the statistic, not a p-value


def _units(da: xr.DataArray) -> list[tuple[str, xr.DataArray]]:
    """Split a ``(time, ...)`` array into (unit label, series) pairs."""
    space = [d for d in da.dims if d != "time"]
    if not space:
        return [("all", da)]
    if len(space) == 1 and da.sizes[space[0]] <= MAX_UNITS:
        dim = space[0]
        return [(str(v), da.isel({dim: i})) for i, v in enumerate(da[dim].values)]
    return [("all", da)]


def bias_table(obs: xr.Dataset, model: Mapping[str, xr.Dataset],
               variables: Sequence[str]) -> pd.DataFrame:
    """Mean bias (model - obs) and KS distance over the months both cover.

    ``model`` maps a label (``raw``, ``qm``...) to a ``(time, unit)`` dataset (the calibration
    series). Columns: variable, unit, units, n_months, then ``bias_<label>`` and ``ks_<label>``.
    """
    rows = []
    for var in variables:
        o = obs[var]
        row_sets: dict[str, dict] = {}
        for label, ds in model.items():
            if var not in ds:
                raise DataError(f"bias table: {label!r} series lacks variable {var!r}")
            common = np.intersect1d(ds.time.values, o.time.values)
            if common.size == 0:
                raise DataError(f"bias table: {label!r} and the reanalysis share no month")
            m = ds[var].sel(time=common).transpose("time", ...)
            ob = o.sel(time=common).transpose(*m.dims)
            for (unit, ms), (_, os_) in zip(_units(m), _units(ob)):
                r = row_sets.setdefault(unit, {
                    "variable": var, "unit": unit, "units": o.attrs.get("units", ""),
                    "n_months": int(common.size),
                })
                diff = (ms - os_).values
                r[f"bias_{label}"] = float(np.nanmean(diff)) if np.isfinite(diff).any() else np.nan
                r[f"ks_{label}"] = ks_distance(ms.values, os_.values)
        rows.extend(row_sets.values())
    return pd.DataFrame(rows)


def _period_label(ds: xr.Dataset, years: tuple[int, int]) -> tuple[str, slice]:
    y = ds.time.dt.year.values
    lo, hi = max(years[0], int(y.min())), min(years[1], int(y.max()))
    if lo > hi:
        raise DataError(f"scenario series ({int(y.min())}-{int(y.max())}) do not cover "
                        f"{years[0]}-{years[1]}")
    return f"{lo}-{hi}", slice(f"{lo}-01-01", f"{hi}-12-31")


def spread_table(scenarios: Mapping[str, xr.Dataset], variables: Sequence[str],
                 periods: Sequence[tuple[int, int]] = DEFAULT_PERIODS,
                 pair: tuple[str, str] | None = None) -> pd.DataFrame:
    """Difference ``high - low`` of the period means, per variable and unit.

    ``pair``: ``(low, high)`` scenario names (None: no pair, an empty table with the columns
    variable, unit, units -- e.g. data with a single scenario). ``scenarios`` maps a label (``raw``, ``qm``...) to a ``(scenario, time, unit)`` dataset.
    Columns: variable, unit, units, then ``<first>-<last> <label>`` for every period (the years
    the data actually cover within it) and label. Multiplicative variables (``tp``, ``sf``) get
    extra rows ``<var> (relative)``: ``100 (high / low - 1)`` in percent.
    """
    rows: dict[tuple[str, str], dict] = {}
    if pair is None:
        return pd.DataFrame(columns=["variable", "unit", "units"])
    low, high = pair
    for label, ds in scenarios.items():
        if "scenario" not in ds.dims:
            raise DataError(f"spread table: {label!r} has no 'scenario' dimension")
        have = [str(s) for s in ds.scenario.values]
        for s in (high, low):
            if s not in have:
                raise DataError(f"spread table: scenario {s!r} missing from {label!r} "
                                f"(have {', '.join(have)})")
        for years in periods:
            plabel, sl = _period_label(ds, years)
            for var in variables:
                mean = ds[var].sel(time=sl).mean("time")
                diff = (mean.sel(scenario=high) - mean.sel(scenario=low)).drop_vars(
                    "scenario", errors="ignore")
                for unit, d in _units(diff.expand_dims(time=[0])):
                    r = rows.setdefault((var, unit), {
                        "variable": var, "unit": unit, "units": ds[var].attrs.get("units", ""),
                    })
                    r[f"{plabel} {label}"] = float(d.mean())
                if rule_for(var).kind != MULTIPLICATIVE:
                    continue
                # multiplicative variables: the relative change (%), what QDM preserves
                rel = 100.0 * (mean.sel(scenario=high) / mean.sel(scenario=low) - 1.0)
                rel = rel.drop_vars("scenario", errors="ignore")
                for unit, d in _units(rel.expand_dims(time=[0])):
                    r = rows.setdefault((f"{var} (relative)", unit), {
                        "variable": f"{var} (relative)", "unit": unit, "units": "%",
                    })
                    r[f"{plabel} {label}"] = float(d.mean())
    return pd.DataFrame(list(rows.values()))


def summary(bias: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    """Per variable: mean absolute bias and mean KS over units, and the mean spread over units."""
    num_b = [c for c in bias.columns if c.startswith(("bias_", "ks_"))]
    b = bias.assign(**{c: bias[c].abs() for c in num_b if c.startswith("bias_")})
    b = b.groupby("variable", sort=False)[num_b].mean()
    b.columns = [c.replace("bias_", "abs bias ").replace("ks_", "KS ") for c in b.columns]
    num_s = [c for c in spread.columns if c not in ("variable", "unit", "units")]
    s = spread.groupby("variable", sort=False)[num_s].mean()
    s.columns = [f"spread {c}" for c in s.columns]
    order = list(dict.fromkeys([*bias["variable"], *spread["variable"]]))
    return b.join(s, how="outer").reindex(order).rename_axis("variable").reset_index()
