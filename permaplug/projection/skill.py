"""Projection skill against physics: RMSE of projected soil temperatures against the scenario
truth a catalog provides (the demo emulator's own soil temperatures under each scenario).

This measures how well networks trained on 2001-2018 extrapolate under warming; it exists only
where a ``scenario_truth`` entry exists (the demo data), since nature provides no future truth.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError

PERIODS: tuple[tuple[int, int], ...] = ((2024, 2030), (2071, 2100))
"""Periods the skill table reports (a period is skipped unless fully projected)."""


def truth_array(truth: xr.Dataset) -> xr.DataArray:
    """A truth dataset's ``stl1..4`` as one ``(time, unit, layer)`` degC array."""
    missing = [t for t in schema.TARGETS if t not in truth]
    if missing:
        raise DataError(f"scenario truth has no soil temperature {', '.join(missing)}")
    da = xr.concat([truth[t] for t in schema.TARGETS], dim="layer")
    return da.assign_coords(layer=list(schema.TARGETS))


def truth_by_scenario(cat, scenarios: list[str], spatial: str = "bands"
                      ) -> dict[str, xr.DataArray]:
    """``{scenario: (time, unit, layer) truth}`` from the catalog's ``scenario_truth`` entries.

    An entry either has a ``scenario`` dim or names its scenario in ``metadata.scenario``.
    Scenarios without truth are left out. ``spatial="grid"`` opens them per cell.
    """
    out: dict[str, xr.DataArray] = {}
    for name in cat.find_all(role="scenario_truth"):
        meta = cat.entry(name).metadata
        ds = cat.open(name, **({"spatial": "grid"} if spatial == "grid" else {}))
        if "scenario" in ds.dims:
            for s in ds["scenario"].values:
                if str(s) in scenarios:
                    out[str(s)] = truth_array(ds.sel(scenario=s, drop=True))
        elif str(meta.get("scenario", "")) in scenarios:
            out[str(meta["scenario"])] = truth_array(ds)
    return out


def skill_table(projections: xr.DataArray, truth: dict[str, xr.DataArray], data_label: str,
                periods: tuple[tuple[int, int], ...] = PERIODS) -> pd.DataFrame:
    """RMSE (degC) of ``projections`` (time, unit, layer, scenario, model) against ``truth``.

    One row per model, scenario, period and layer (``layer == "all"``: every layer). Periods not
    fully inside the projection are skipped. Columns: ``model, scenario, period, layer,
    rmse_degC, bias_degC, n, data``.
    """
    rows = []
    years = projections["time"].dt.year
    for scen, tru in truth.items():
        if scen not in projections["scenario"].values:
            continue
        for (y0, y1) in periods:
            if years.min() > y0 or years.max() < y1:
                continue
            sel = projections.sel(scenario=scen).sel(time=(years >= y0) & (years <= y1))
            t = tru.sel(time=sel["time"].values, method=None) if covers(tru, sel) else None
            if t is None:
                continue
            t = t.assign_coords(layer=sel["layer"].values)
            for model in sel["model"].values:
                err = sel.sel(model=model) - t.transpose(*[d for d in sel.sel(model=model).dims])
                for layer in [*map(str, sel["layer"].values), "all"]:
                    e = err if layer == "all" else err.sel(layer=layer)
                    v = e.values[np.isfinite(e.values)]
                    rows.append({
                        "model": str(model), "scenario": scen, "period": f"{y0}-{y1}",
                        "layer": layer, "rmse_degC": float(np.sqrt(np.mean(v ** 2))) if v.size
                        else np.nan, "bias_degC": float(v.mean()) if v.size else np.nan,
                        "n": int(v.size), "data": data_label,
                    })
    return pd.DataFrame(rows, columns=["model", "scenario", "period", "layer", "rmse_degC",
                                       "bias_degC", "n", "data"])


def covers(truth: xr.DataArray, sel: xr.DataArray) -> bool:
    """True when ``truth`` has every month of ``sel``."""
    have = pd.DatetimeIndex(truth["time"].values)
    return pd.DatetimeIndex(sel["time"].values).isin(have).all()
