"""``project_run``: scenario projections, skill against truth and permafrost indicators.

Reads: the historical (reanalysis) table from the run folder (``RUN/inputs``, stored by
``run``), and only the scenarios (and scenario truth) from a catalog -- the run's own, or
``--catalog``, which may hold nothing but the scenario entry. When that catalog also holds the
run's reanalysis entry, its files are compared with the hash stored with the run and a change
is reported in one line (the stored table is used either way).

For one run folder: bias-correct the catalog's scenarios against the run's reanalysis table,
continue the historical table with each corrected scenario (:mod:`.tables`), let every trained
network predict each month from 2024-01 to December ``end`` (windows roll from the last 24
historical months into the scenario; normalisation uses the training statistics stored with the
run), and write into ``RUN_DIR/projections/<corrector>-<end>/``::

    projections.nc          soil_temperature (time, band, layer, scenario, model), CF attributes
    projection_<model>.png  bands x layers panels, one line per scenario (paper Figures 5-9)
    skill.csv               RMSE and bias against the catalog's scenario truth (when it has
                            any): kind model_error (networks on the truth's own forcing, month
                            by month) and end_to_end_climatology (monthly climatologies)
    scenario_difference.csv high - low scenario difference per model and in the truth
    indicators_layers.csv   months above 0 degC and annual maximum per year, band, layer, series
    indicators_years.csv    thaw depth, near-surface permafrost flag (2 consecutive years at or
                            below 0 degC) per year, band, series; a note on the resolution
    thaw_depth_<model>.png  thaw depth against year per scenario (and observed)
    extrapolation.csv       per scenario and input: share outside the training range, largest
                            distance in training SD (:mod:`.extrapolation`)
    scenario_inputs.nc      the model inputs of every projected window per scenario
                            (physical units; :mod:`.scenario_inputs`, read by ``explain``)
    summary.json            data label, corrector, scenarios, models, the scenario pair and
                            its differences under ``<high>_minus_<low>_stl1_degC``
"""
from __future__ import annotations

import datetime as _dt
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from permaplug import __version__
from permaplug.core import progress as bars
from permaplug.core import scenarios as scenario_roles
from permaplug.core import schema
from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.core.errors import ConfigError, DataError
from permaplug.projection import (
    extrapolation,
    figures,
    indicators,
    scenario_inputs,
    sensitivity,
    skill,
)
from permaplug.projection.scenario_sets import scenario_sets, scenario_sets_key
from permaplug.projection.tables import projected_months, projection_table, scenario_variables
from permaplug.projection.truth_forcing import open_truth, truth_continuations


def _as_list(scenarios: list[str] | str | None) -> list[str] | None:
    if scenarios is None:
        return None
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    out = [s.strip() for item in scenarios for s in str(item).split(",") if s.strip()]
    return out or None


def observed_profiles(table: xr.Dataset) -> xr.DataArray:
    """The table's soil temperatures ``stl1..4`` as ``(time, unit, layer)`` degC."""
    missing = [t for t in schema.TARGETS if t not in table]
    if missing:
        raise DataError(f"table has no soil temperature {', '.join(missing)}")
    da = xr.concat([table[t] for t in schema.TARGETS], dim="layer")
    da = da.assign_coords(layer=list(schema.TARGETS)).transpose("time", ..., "layer")
    return da.drop_vars([c for c in da.coords if c not in da.dims and c not in
                         ("lat_min", "lat_max", "lat", "lon", "band")])


def project(run, table: xr.Dataset, corrected: xr.Dataset, end: int,
            models: list[str] | None = None, progress: bool = True) -> xr.DataArray:
    """Projected soil temperature ``(time, unit, layer, scenario, model)`` degC.

    ``run``: a :class:`permaplug.training.runs.Run`; ``table``: its historical table;
    ``corrected``: ``(scenario, time, unit)`` corrected features. Months: the month after the
    table's end through December ``end``.
    """
    models = models or run.network_names
    if not models:
        raise ConfigError(f"run {run.path}: no trained network to project (baselines need "
                          "observed soil temperatures, which scenarios do not have)")
    start = pd.DatetimeIndex(table["time"].values)[-1] + pd.offsets.MonthBegin(1)
    months = projected_months(start, end)
    per_scen = []
    scen_names = [str(s) for s in corrected["scenario"].values]
    bar = tqdm(total=len(scen_names) * len(models), desc="projecting",
               disable=bars.disabled(progress), unit="model")
    for scen in scen_names:
        ptable = projection_table(table, corrected.sel(scenario=scen, drop=True), end,
                                  scenario_variables(run.normaliser.dynamic_names))
        per_model = []
        for name in models:
            da = run.predict(name, ptable, months)
            per_model.append(da.drop_attrs() if hasattr(da, "drop_attrs") else da)
            bar.update(1)
        per_scen.append(xr.concat(per_model, dim=pd.Index(models, name="model")))
    bar.close()
    proj = xr.concat(per_scen, dim=pd.Index(scen_names, name="scenario"))
    udim = next(d for d in proj.dims if d not in ("time", "layer", "scenario", "model"))
    return proj.transpose("time", udim, "layer", "scenario", "model")


def cf_dataset(proj: xr.DataArray, data_label: str, corrector: str, run_dir: Path,
               historical_end: str, provenance: str) -> xr.Dataset:
    """The projections as a CF-1.8 dataset (soil_temperature plus depth coordinates)."""
    mids = np.asarray(schema.LAYER_MIDPOINTS_M)
    bnds = np.asarray(schema.LAYERS)
    ds = proj.rename("soil_temperature").to_dataset()
    ds = ds.assign_coords(
        depth=("layer", mids, {"units": "m", "standard_name": "depth", "positive": "down",
                               "long_name": "mid-depth of the soil layer", "bounds": "depth_bnds"}),
    )
    ds["depth_bnds"] = (("layer", "nv"), bnds)
    ds["soil_temperature"].attrs = {
        "units": "degC", "standard_name": "soil_temperature",
        "long_name": "projected monthly mean soil temperature", "coordinates": "depth",
        "cell_methods": "time: mean",
    }
    ds["time"].attrs.update({"standard_name": "time", "long_name": "month (first day)",
                             "axis": "T"})
    ds["layer"].attrs = {"long_name": "ERA5-Land soil layer (stl1 = 0-7 cm ... stl4 = 1-2.89 m)"}
    ds["scenario"].attrs = {"long_name": "scenario of the bias-corrected climate forcing"}
    ds["model"].attrs = {"long_name": "trained network"}
    udim = next(d for d in proj.dims if d not in ("time", "layer", "scenario", "model"))
    if "lat_min" in ds.coords:
        ds["lat_min"].attrs = {"units": "degrees_north", "long_name": "band's southern edge"}
        ds["lat_max"].attrs = {"units": "degrees_north", "long_name": "band's northern edge"}
    ds[udim].attrs.setdefault("long_name", "latitude band" if udim == "band" else "grid cell")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": "permaplug scenario projections of Alaskan active-layer soil temperature",
        "institution": "permaplug",
        "source": f"permaplug {__version__} networks of run {run_dir.name}",
        "history": f"{now}: permaplug project --corrector {corrector}",
        "comment": ("Networks trained on the historical record predict each month from the "
                    "previous 24 months of bias-corrected scenario forcing; the first projected "
                    f"month's window is the last 24 historical months (through {historical_end})."),
        schema.DATA_LABEL_ATTR: data_label,
        "data": data_label,
        "corrector": corrector,
        "historical_end": historical_end,
        "provenance": provenance,
    }
    return ds


def _csv(frame: pd.DataFrame, path: Path, label: str, notes: tuple[str, ...] = ()) -> Path:
    buf = io.StringIO()
    buf.write(f"# data: {label}\n")
    buf.writelines(f"# {note}\n" for note in notes)
    frame.to_csv(buf, index=False, float_format="%.6g")
    return write_text_atomic(path, buf.getvalue())


def indicator_frames(observed: xr.DataArray, proj: xr.DataArray, data_label: str
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Indicator tables of the observed record and of every (scenario, model) projection.

    Rows carry ``series`` (``observed`` or the scenario) and ``model`` (``observed`` for the
    record itself).
    """
    layers, years = [], []
    lay, yr = indicators.indicator_tables(observed, data_label)
    lay.insert(0, "series", "observed")
    yr.insert(0, "series", "observed")
    lay.insert(1, "model", "observed")
    yr.insert(1, "model", "observed")
    layers.append(lay)
    years.append(yr)
    for model in proj["model"].values:
        for scen in proj["scenario"].values:
            sub = proj.sel(model=model, scenario=scen, drop=True)
            try:
                lay, yr = indicators.indicator_tables(sub, data_label)
            except DataError:  # no complete projected year (e.g. --end in the first year)
                continue
            for frame in (lay, yr):
                frame.insert(0, "series", str(scen))
                frame.insert(1, "model", str(model))
            layers.append(lay)
            years.append(yr)
    return pd.concat(layers, ignore_index=True), pd.concat(years, ignore_index=True)


def scenario_difference(proj: xr.DataArray, pair: tuple[str, str] | None,
                        layer: str = "stl1") -> dict[str, dict[str, float]]:
    """Mean ``high - low`` difference of projected ``layer`` temperature (degC) per model and
    period (2024-2030, 2071-2100 and the whole horizon), over all units and months.

    ``pair``: ``(low, high)`` scenario names; None or a name not projected gives ``{}``."""
    out: dict[str, dict[str, float]] = {}
    scen = [str(s) for s in proj["scenario"].values]
    if pair is None or any(s not in scen for s in pair):
        return out
    b, a = pair
    diff = (proj.sel(scenario=a) - proj.sel(scenario=b)).sel(layer=layer)
    years = diff["time"].dt.year
    for model in diff["model"].values:
        d = diff.sel(model=model)
        res = {"all": float(d.mean())}
        for y0, y1 in skill.PERIODS:
            if int(years.min()) <= y0 and int(years.max()) >= y1:
                res[f"{y0}-{y1}"] = float(d.sel(time=(years >= y0) & (years <= y1)).mean())
        out[str(model)] = res
    return out


def project_run(run_dir: Path, catalog_path: str | None = None,
                scenarios: list[str] | None = None, corrector: str = "qm", end: int = 2030,
                progress: bool = True, corrector_options: dict | None = None,
                echo: Callable[[str], None] = print, continuation: str | None = None,
                scenario_pair: str | tuple[str, str] | None = None,
                prefetched: Callable[[tuple], tuple | None] | None = None,
                on_inputs: Callable[[Path, tuple[str, str] | None], None] | None = None
                ) -> Path:
    """Project every trained network of ``run_dir`` under the catalog's scenarios.

    ``continuation`` (the scenario continuing the historical run over the calibration period)
    and ``scenario_pair`` (``(low, high)`` for the differences in ``summary.json``): None = the
    scenario entry's metadata, else derived from the scenario names
    (:mod:`permaplug.core.scenarios`).

    ``catalog_path``: where the scenarios are read; None = the catalog the run was trained from
    (the bundled demo data when that was None). The historical table is the one stored in the
    run folder. ``corrector``: a registered corrector name or ``"none"``;
    ``corrector_options``: its options (they extend the output folder's name, e.g.
    ``qm+preserve_order=True-2030``). ``echo`` receives what is read from where, and the line
    about a changed reanalysis. ``prefetched``: ``key -> (corrected, truth) or None``, the
    corrected scenarios and scenario truth of a band table computed beforehand
    (:mod:`permaplug.projection.scenario_sets`; ``permaplug run`` computes them while the
    networks train), taken when their key equals this projection's. ``on_inputs(folder,
    pair)`` is called once the scenario inputs are stored in the output folder, before the
    figures, skill tables and sensitivity test (``permaplug run`` explains the scenario
    windows alongside). Returns the path of ``projections.nc`` (see the module docstring for
    everything written next to it).
    """
    from permaplug.core.catalog import load_catalog
    from permaplug.core.errors import CatalogError
    from permaplug.training.inputs import reanalysis_change, stored_table_path
    from permaplug.training.loop import configure_threads
    from permaplug.training.runs import load_run

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    configure_threads(run.config.threads)  # one thread unless the run says otherwise
    if end < 2024 or end > 2100:
        raise ConfigError(f"--end {end}: choose a year in 2024-2100")
    from permaplug.core.plugins import get_corrector

    options = dict(corrector_options or {})
    get_corrector(corrector)(**options)  # an unknown name or option fails before any data is read
    label = corrector + "".join(f"+{k}={v}" for k, v in options.items())
    stored = stored_table_path(run_dir)
    own = catalog_path is None
    catalog_path = run.config.catalog if own else catalog_path
    try:
        cat = load_catalog(catalog_path)
    except CatalogError as exc:
        if not own or stored is None:
            raise
        raise CatalogError(f"{exc}; the run's catalog is only needed for the scenarios (the "
                           f"historical table is {stored}): give --catalog with the scenario "
                           "entries") from None
    if stored is not None:
        note = reanalysis_change(run_dir, cat)
        if note:
            echo(note)
    table = run.table()
    echo(f"historical table: {stored or 'assembled again from ' + str(cat.path)}; "
         f"scenarios: {cat.path}")
    sources = {"historical_table": str(stored) if stored else str(cat.path),
               "scenarios_catalog": str(cat.path)}
    years = pd.DatetimeIndex(table["time"].values).year
    calibration = (int(years.min()), int(years.max()))
    needed = scenario_variables(run.normaliser.dynamic_names)  # only what the networks use
    if "cell" in table.dims:  # gridded mode: per-cell correction, chunked along cells (issue 8)
        from permaplug.scale.correction import corrected_scenarios_grid

        table = table.load()
        corrected, _fitted = corrected_scenarios_grid(
            cat, table, corrector, calibration, _as_list(scenarios),
            options={**options, **({"continuation": continuation} if continuation else {})},
            end=end, variables=needed)
        names = [str(x) for x in corrected["scenario"].values]
        truth_sets = open_truth(cat, names, "grid")
    else:
        args = (cat.path, table, corrector, calibration, _as_list(scenarios), options,
                continuation, needed)
        got = prefetched(scenario_sets_key(*args)) if prefetched is not None else None
        corrected, truth_sets = got if got is not None else scenario_sets(cat, *args[1:])
        names = [str(x) for x in corrected["scenario"].values]
    truth = {s: skill.truth_array(ds) for s, ds in truth_sets.items()}
    forced, notes = truth_continuations(run, table, truth_sets, end)  # model error alone
    for note in notes:
        echo(note)
    pair = scenario_pair_for(names, scenario_pair, corrected.attrs)
    nc = write_projections(run, table, corrected, label, end, truth, progress, sources, pair,
                           metadata=dict(cat.metadata), truth_forcing=forced,
                           on_inputs=on_inputs)
    warning = extrapolation.warning_line(nc.parent)
    if warning:
        echo(warning)
    return nc


def scenario_pair_for(names: list[str], given: str | tuple[str, str] | None,
                      attrs: dict) -> tuple[str, str] | None:
    """The (low, high) pair among the projected scenarios ``names``: ``given`` (an error if
    not projected), else the catalog metadata's pair when both are projected, else the lowest
    and highest forcing of ``names`` (:mod:`permaplug.core.scenarios`)."""
    if given:
        return scenario_roles.resolve(names, names[0], given).pair
    meta = scenario_roles.parse_pair(attrs.get(scenario_roles.PAIR_ATTR) or None,
                                     "metadata.scenario_pair")
    if meta is not None and all(s in names for s in meta):
        return meta
    return scenario_roles.resolve(names, names[0]).pair


def write_projections(run, table: xr.Dataset, corrected: xr.Dataset, corrector: str, end: int,
                      truth: dict[str, xr.DataArray] | None = None,
                      progress: bool = True, sources: dict[str, str] | None = None,
                      pair: tuple[str, str] | None | str = "default",
                      metadata: dict | None = None,
                      truth_forcing: dict[str, xr.Dataset] | None = None,
                      on_inputs: Callable[[Path, tuple[str, str] | None], None] | None = None
                      ) -> Path:
    """Project, then write every output into ``RUN/projections/<corrector>-<end>/``.

    ``truth``: ``{scenario: (time, unit, layer) degC}`` scenario truth for the skill tables.
    ``truth_forcing``: ``{scenario: historical table continued by the truth's own forcing}``
    (:func:`permaplug.projection.truth_forcing.truth_continuations`) for the model-error rows.
    ``sources``: where the inputs were read (kept in ``summary.json``). ``pair``: ``(low,
    high)`` scenarios of the differences in ``summary.json`` (``"default"``: from the projected
    names, :func:`scenario_pair_for`). ``metadata``: the scenario catalog's (a demo build's
    gets the emulator rerun of the sensitivity test). ``on_inputs(folder, pair)``: called once
    the scenario inputs are stored (see :func:`project_run`). Returns the path of
    ``projections.nc``.
    """
    run_dir = Path(run.path)
    label = schema.data_label(table)
    scen_label = schema.data_label(corrected)
    data_label = label if scen_label in (label, "unknown data") else f"{label} + {scen_label}"
    out_dir = run_dir / "projections" / f"{corrector}-{end}"
    proj = project(run, table, corrected, end, progress=progress)
    hist_end = f"{pd.DatetimeIndex(table['time'].values)[-1]:%Y-%m}"
    provenance = "; ".join(p for p in (str(table.attrs.get("provenance", "")),
                                       str(corrected.attrs.get("provenance", ""))) if p)
    ds = cf_dataset(proj, data_label, corrector, run_dir, hist_end, provenance)
    nc = out_dir / "projections.nc"
    with atomic_path(nc) as tmp:
        ds.to_netcdf(tmp)
    inputs = scenario_inputs.scenario_arrays(run, table, corrected, end)
    scenario_inputs.save(inputs, table, end, out_dir)
    names = [str(s) for s in proj["scenario"].values]
    if pair == "default":
        pair = scenario_pair_for(names, None, dict(corrected.attrs))
    if on_inputs is not None:
        on_inputs(out_dir, pair)
    guard = extrapolation.guard(run, table, inputs, out_dir, data_label)

    observed = observed_profiles(table)
    for model in proj["model"].values:
        figures.scenario_panels(proj, str(model), data_label,
                                out_dir / f"projection_{model}.png", observed=observed)
    skill_rows, diff_rows = skill.skill_frames(run, proj, truth, truth_forcing, pair, end,
                                               data_label)
    has_skill = bool(len(skill_rows))
    if has_skill:
        _csv(skill_rows, out_dir / "skill.csv", data_label)
    if len(diff_rows):
        _csv(diff_rows, out_dir / "scenario_difference.csv", data_label)
    per_layer, per_year = indicator_frames(observed, proj, data_label)
    _csv(per_layer, out_dir / "indicators_layers.csv", data_label)
    _csv(per_year, out_dir / "indicators_years.csv", data_label, (indicators.RESOLUTION_NOTE,))
    for model in proj["model"].values:
        rows = per_year[per_year["model"].isin([str(model), "observed"])]
        figures.thaw_depth_figure(rows, str(model), data_label,
                                  out_dir / f"thaw_depth_{model}.png")
    roles = scenario_roles.ScenarioRoles(
        str(corrected.attrs.get("bias_correction_continuation", "")), pair)
    key = roles.difference_key()
    summary = {
        "data": data_label, "corrector": corrector, "end": end,
        "scenarios": names,
        "models": [str(m) for m in proj["model"].values],
        "historical_end": hist_end,
        "continuation": roles.continuation,
        "scenario_pair": list(pair) if pair else None,
        "difference_key": key,
        "skill_against_truth": has_skill,
        "skill_kinds": sorted(set(skill_rows["kind"])),
        "scenario_difference": bool(len(diff_rows)),
        "inputs": dict(sources or {}),
        "extrapolation": guard,
    }
    summary["sensitivity"] = sensitivity.sensitivity_outputs(
        run, table, corrected, end, out_dir, data_label, metadata, truth,
        truth_forcing=truth_forcing, progress=progress)
    if key is not None:
        summary[key] = scenario_difference(proj, pair)
    if pair and truth and set(pair) <= set(truth) and all(
            skill.covers(truth[k], proj) for k in pair):
        tru = xr.concat([truth[k].sel(time=proj["time"].values) for k in pair],
                        dim=pd.Index(list(pair), name="scenario"))
        tru = tru.assign_coords(layer=proj["layer"].values).expand_dims(model=["truth"])
        summary[f"truth_{key}"] = scenario_difference(tru, pair)["truth"]
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=1))
    return nc
