"""Projection skill against physics: projected soil temperatures against the scenario truth a
catalog provides (the demo emulator's own soil temperatures under each scenario).

Two measures (``kind`` in ``skill.csv``), per model, scenario, period and layer:

* ``model_error``: the networks fed the very forcing the truth run used
  (:mod:`permaplug.projection.truth_forcing`), compared month by month with the truth -- the
  networks' own error, nothing else.
* ``end_to_end_climatology``: the projections on bias-corrected climate-model forcing compared
  with the truth as monthly climatologies over the period (12 calendar-month means per unit and
  layer; RMSE over those), since the climate model's weather is not the truth's weather.

Plus the difference between the highest and the lowest scenario per model and in the truth
(:func:`difference_table`). They exist only where a ``scenario_truth`` entry exists (the demo
data), since nature provides no future truth.
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
    """``{scenario: (time, unit, layer) truth}`` from the catalog's ``scenario_truth`` entries
    (:func:`permaplug.projection.truth_forcing.open_truth`). Scenarios without truth are left
    out. ``spatial="grid"`` opens them per cell."""
    from permaplug.projection.truth_forcing import open_truth

    return {s: truth_array(ds) for s, ds in open_truth(cat, scenarios, spatial).items()}


KINDS = ("model_error", "end_to_end_climatology")
"""The ``kind`` values of ``skill.csv`` (see the module docstring)."""
SKILL_COLUMNS = ["model", "scenario", "period", "layer", "kind", "rmse_degC", "bias_degC", "n",
                 "data"]
DIFFERENCE_COLUMNS = ["source", "pair", "period", "layer", "value_degC"]


def _periods(da: xr.DataArray, periods: tuple[tuple[int, int], ...]
             ) -> list[tuple[str, xr.DataArray]]:
    """``(label, da over the period)`` for every period fully inside ``da``'s months."""
    years = da["time"].dt.year
    out = []
    for y0, y1 in periods:
        if int(years.min()) > y0 or int(years.max()) < y1:
            continue
        out.append((f"{y0}-{y1}", da.sel(time=(years >= y0) & (years <= y1))))
    return out


def _aligned(tru: xr.DataArray, sel: xr.DataArray) -> xr.DataArray | None:
    """``tru`` at ``sel``'s months, dims ordered as ``sel`` without ``model`` (None when the
    truth misses a month)."""
    if not covers(tru, sel):
        return None
    t = tru.sel(time=sel["time"].values).assign_coords(layer=sel["layer"].values)
    return t.transpose(*[d for d in sel.dims if d != "model"])


def _score_rows(err: xr.DataArray, base: dict) -> list[dict]:
    """RMSE, bias and count of the finite values of ``err`` (dims incl. ``layer``) per layer
    and pooled (``layer = all``), each row extending ``base``."""
    rows = []
    for layer in [*map(str, err["layer"].values), "all"]:
        e = err if layer == "all" else err.sel(layer=layer)
        v = e.values[np.isfinite(e.values)]
        rows.append({**base, "layer": layer,
                     "rmse_degC": float(np.sqrt(np.mean(v ** 2))) if v.size else np.nan,
                     "bias_degC": float(v.mean()) if v.size else np.nan, "n": int(v.size)})
    return rows


def skill_table(projections: xr.DataArray, truth: dict[str, xr.DataArray], data_label: str,
                periods: tuple[tuple[int, int], ...] = PERIODS, kind: str = "model_error"
                ) -> pd.DataFrame:
    """Month-by-month RMSE and bias (degC, projection minus truth) of ``projections`` (time,
    unit, layer, scenario, model) against ``truth`` (``{scenario: (time, unit, layer)}``).

    Meant for projections driven by the truth's own forcing (``kind="model_error"``): with any
    other forcing the weather differs and this mixes weather noise into the error. One row per
    model, scenario, period and layer (``layer == "all"``: every layer); periods not fully
    projected, and scenarios without truth over them, are skipped. Columns:
    :data:`SKILL_COLUMNS`.
    """
    rows = []
    for scen, tru in truth.items():
        if scen not in projections["scenario"].values:
            continue
        for period, sel in _periods(projections.sel(scenario=scen), periods):
            t = _aligned(tru, sel)
            if t is None:
                continue
            for model in sel["model"].values:
                rows += _score_rows(sel.sel(model=model) - t, {
                    "model": str(model), "scenario": scen, "period": period, "kind": kind,
                    "data": data_label})
    return pd.DataFrame(rows, columns=SKILL_COLUMNS)


def monthly_climatology(da: xr.DataArray) -> xr.DataArray:
    """The mean of each calendar month over ``da``'s months: ``time`` becomes ``month`` (1-12)."""
    return da.groupby("time.month").mean("time")


def climatology_table(projections: xr.DataArray, truth: dict[str, xr.DataArray],
                      data_label: str, periods: tuple[tuple[int, int], ...] = PERIODS
                      ) -> pd.DataFrame:
    """RMSE and bias (degC) of the projections' monthly climatology against the truth's, per
    model, scenario, period and layer (``kind = end_to_end_climatology``).

    Over each fully projected period, 12 calendar-month means per unit and layer of the
    projection and of the truth (:func:`monthly_climatology`); the RMSE is over those 12 x
    units (x layers for ``all``) values, ``n`` their count. A projection that differs from the
    truth in its weather but not its climate scores zero. Columns: :data:`SKILL_COLUMNS`.
    """
    rows = []
    for scen, tru in truth.items():
        if scen not in projections["scenario"].values:
            continue
        for period, sel in _periods(projections.sel(scenario=scen), periods):
            t = _aligned(tru, sel)
            if t is None:
                continue
            err = monthly_climatology(sel) - monthly_climatology(t)
            for model in sel["model"].values:
                rows += _score_rows(err.sel(model=model), {
                    "model": str(model), "scenario": scen, "period": period,
                    "kind": "end_to_end_climatology", "data": data_label})
    return pd.DataFrame(rows, columns=SKILL_COLUMNS)


def pair_name(pair: tuple[str, str]) -> str:
    """``high-low`` of a ``(low, high)`` scenario pair, e.g. ``rcp85-rcp26``."""
    low, high = pair
    return f"{high}-{low}"


def difference_table(projections: xr.DataArray, truth: dict[str, xr.DataArray] | None,
                     pair: tuple[str, str] | None,
                     periods: tuple[tuple[int, int], ...] = PERIODS) -> pd.DataFrame:
    """Mean ``high - low`` soil temperature difference (degC) over units and months, per source
    (each model, and ``truth`` when it covers both scenarios), fully projected period and layer
    ``stl1..4``. ``pair``: ``(low, high)``; None or a scenario not projected gives no rows.
    Columns: :data:`DIFFERENCE_COLUMNS` (the order of the ``scenario_difference.csv`` file).
    """
    scen = [str(s) for s in projections["scenario"].values]
    if pair is None or any(s not in scen for s in pair):
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    low, high = pair
    sources = {str(m): projections.sel(scenario=high, model=m) - projections.sel(
        scenario=low, model=m) for m in projections["model"].values}
    if truth and low in truth and high in truth:
        lo, hi = (_aligned(truth[s], projections.sel(scenario=s)) for s in (low, high))
        if lo is not None and hi is not None:
            sources["truth"] = hi - lo
    rows = []
    for source, diff in sources.items():
        for period, sel in _periods(diff, periods):
            for layer in map(str, sel["layer"].values):
                rows.append({"source": source, "pair": pair_name(pair), "period": period,
                             "layer": layer, "value_degC": float(sel.sel(layer=layer).mean())})
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def covers(truth: xr.DataArray, sel: xr.DataArray) -> bool:
    """True when ``truth`` has every month of ``sel``."""
    have = pd.DatetimeIndex(truth["time"].values)
    return pd.DatetimeIndex(sel["time"].values).isin(have).all()


def skill_frames(run, projections: xr.DataArray, truth: dict[str, xr.DataArray] | None,
                 truth_forcing: dict[str, xr.Dataset] | None, pair: tuple[str, str] | None,
                 end: int, data_label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(skill.csv rows, scenario_difference.csv rows)`` of one projection folder.

    ``projections``: the networks on bias-corrected scenario forcing (end-to-end climatology
    rows and the differences); ``truth_forcing``: continuation tables of the truth's own forcing
    (:func:`permaplug.projection.truth_forcing.truth_continuations`): every network predicts on
    them for the model-error rows. Either may be empty.
    """
    from permaplug.projection.truth_forcing import predict_continuations

    frames = []
    if truth and truth_forcing:
        models = [str(m) for m in projections["model"].values]
        forced = predict_continuations(run, truth_forcing, end, models)
        frames.append(skill_table(forced, truth, data_label, kind="model_error"))
    if truth:
        frames.append(climatology_table(projections, truth, data_label))
    rows = [f for f in frames if len(f)]
    skill_rows = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=SKILL_COLUMNS)
    return skill_rows, difference_table(projections, truth, pair)
