"""Model error alone: the networks fed the very forcing the scenario-truth run used.

A catalog's ``scenario_truth`` entries (the demo's ``truth-<scenario>``, demo data v3 on) hold,
besides the truth soil temperatures ``stl1..4``, every reanalysis variable of the truth run in the
reanalysis entry's layout, read by the same source plugin. Continuing the historical table with
that forcing -- no bias correction, no climate-model weather: it *is* the truth's forcing -- and
letting the networks predict (the path of :func:`permaplug.projection.pipeline.project`) leaves
only the networks' own error when the result is compared month by month with the truth.

A truth entry that lacks a variable the run's networks need (demo v1/v2 truth files hold only
``t2m``, ``tp``, ``stl1..4``; other catalogs) is skipped with one note line, never an error.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.projection.tables import projection_table, scenario_variables


def open_truth(cat, scenarios: list[str] | None = None, spatial: str = "bands"
               ) -> dict[str, xr.Dataset]:
    """``{scenario: dataset}`` of the catalog's ``scenario_truth`` entries, all variables.

    An entry either has a ``scenario`` dim or names its scenario in ``metadata.scenario``;
    ``scenarios`` (None = all) keeps only those. ``spatial="grid"`` opens them per cell. Each
    dataset is ``(time, unit)`` in the canonical units of its source (degC, mm per month...).
    """
    out: dict[str, xr.Dataset] = {}
    for name in cat.find_all(role="scenario_truth"):
        meta = cat.entry(name).metadata
        ds = cat.open(name, **({"spatial": "grid"} if spatial == "grid" else {}))
        if "scenario" in ds.dims:
            for s in ds["scenario"].values:
                if scenarios is None or str(s) in scenarios:
                    out[str(s)] = ds.sel(scenario=s, drop=True)
        elif scenarios is None or str(meta.get("scenario", "")) in scenarios:
            out[str(meta["scenario"])] = ds
    return out


def forcing_gaps(truth: Mapping[str, xr.Dataset], variables: list[str] | tuple[str, ...]
                 ) -> tuple[list[str], list[str]]:
    """The scenarios of ``truth`` that carry every one of ``variables`` (in order), and one note
    line naming the scenarios that do not and what they lack (none when all carry them)."""
    usable, lacking = [], {}
    for scen, ds in truth.items():
        gap = tuple(v for v in variables if v not in ds.data_vars)
        if gap:
            lacking.setdefault(gap, []).append(scen)
        else:
            usable.append(scen)
    parts = [f"{', '.join(scens)} ({', '.join(gap)} missing)" for gap, scens in lacking.items()]
    note = (f"note: model-error skill skipped for {'; '.join(parts)}: the scenario truth lacks "
            "inputs of the networks (demo data v3 on carry the full forcing)")
    notes = [note] if parts else []
    return usable, notes


def truth_continuations(run, table: xr.Dataset, truth: Mapping[str, xr.Dataset], end: int
                        ) -> tuple[dict[str, xr.Dataset], list[str]]:
    """The historical ``table`` continued by each scenario's truth forcing through December
    ``end``: ``({scenario: continuation table}, notes)``.

    ``run``: a :class:`permaplug.training.runs.Run` (its networks' inputs decide the variables
    needed, :func:`permaplug.projection.tables.scenario_variables`); ``table``: its historical
    ``(time, unit)`` table; ``truth``: :func:`open_truth`'s datasets. Each continuation table
    is what :func:`permaplug.projection.tables.projection_table` makes of a corrected scenario,
    here of the truth forcing itself (no bias correction); feed it to ``run.predict``.
    Scenarios whose truth lacks a needed variable are left out with one note line for all; one
    that does not cover the projected months, with a note line of its own.
    """
    needed = scenario_variables(run.normaliser.dynamic_names)
    usable, notes = forcing_gaps(truth, needed)
    start = pd.DatetimeIndex(table["time"].values)[-1] + pd.offsets.MonthBegin(1)
    months = pd.date_range(start, f"{end}-12-01", freq="MS")
    out: dict[str, xr.Dataset] = {}
    for scen in usable:
        ds = truth[scen]
        have = pd.DatetimeIndex(ds["time"].values)
        if not months.isin(have).all():
            notes.append(f"note: model-error skill skipped for {scen}: its scenario truth spans "
                         f"{have[0]:%Y-%m}..{have[-1]:%Y-%m}, not {start:%Y-%m}..{end}-12")
            continue
        forcing = ds[list(needed)]
        forcing.attrs = {**ds.attrs, "bias_correction": "none (scenario truth forcing)"}
        try:
            out[scen] = projection_table(table, forcing, end, needed)
        except DataError as exc:  # e.g. missing values in the truth forcing
            notes.append(f"note: model-error skill skipped for {scen}: {exc}")
    return out, notes


def predict_continuations(run, continuations: Mapping[str, xr.Dataset], end: int,
                          models: list[str] | None = None) -> xr.DataArray | None:
    """Every network's prediction on each continuation table: ``(time, unit, layer, scenario,
    model)`` degC over the projected months (None when ``continuations`` is empty)."""
    if not continuations:
        return None
    models = models or run.network_names
    per_scen = []
    for table in continuations.values():
        end_hist = pd.Timestamp(table.attrs["historical_end"]) + pd.offsets.MonthBegin(1)
        months = pd.date_range(end_hist, f"{end}-12-01", freq="MS")
        per_model = [run.predict(name, table, months) for name in models]
        per_model = [da.drop_attrs() if hasattr(da, "drop_attrs") else da for da in per_model]
        per_scen.append(xr.concat(per_model, dim=pd.Index(models, name="model")))
    proj = xr.concat(per_scen, dim=pd.Index(list(continuations), name="scenario"))
    udim = next(d for d in proj.dims if d not in ("time", "layer", "scenario", "model"))
    return proj.transpose("time", udim, "layer", "scenario", "model")
