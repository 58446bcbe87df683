"""Climate sensitivity test: how much each layer warms when the air is warmer.

For every trained network, ``dK`` (1, 3 and 5 K) is added to the air and skin temperature
inputs (``t2m``, ``skt``; whichever the table has) of every month of a period and of the
``window`` months before it, so every window that predicts a period month sees the warmer air
throughout. Everything derived from them (degree-days, snowpack, running means...) is
recomputed by the run's feature plugins. The response of a layer is the mean over the period's
months and units of (perturbed - unperturbed prediction), degC.

Periods: the run's test years on the historical table, and 2071-2100 on a continuation table
(the truth forcing of the highest scenario where the catalog has it, else the bias-corrected
highest scenario; the ``base`` column says which). For a demo catalog the emulator itself is
rerun with the same perturbation of its air temperature (:mod:`permaplug.demo.sensitivity`,
handed down by the command line through
:func:`permaplug.projection.rerun.set_emulator_rerun`, since this layer does not
import the demo); its base run is checked against the demo's stored band means. Real catalogs
get no emulator rows and a note: nature has no rerun.

Writes (from :func:`write_sensitivity`) ``sensitivity.csv``: ``source`` (model name or
``emulator``), ``period``, ``base``, ``delta_K``, ``layer``, ``unit`` (a band/cell, or ``all``:
the mean over units), ``response_degC``, ``data``; ``# data:`` and ``# note:`` lines first. And
``sensitivity.png``: per period and layer, the pooled response against dK.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from permaplug.core import progress as bars
from permaplug.core.atomic import write_text_atomic
from permaplug.core.errors import DataError
from permaplug.data.features import derived_names
from permaplug.projection.rerun import emulator_rerun
from permaplug.projection.sensitivity_figure import EMULATOR, sensitivity_figure
from permaplug.projection.skill import truth_array
from permaplug.training.windows import unit_dim

DELTAS_K: tuple[float, ...] = (1.0, 3.0, 5.0)
"""Warming steps added to the temperature inputs (K)."""
TEMPERATURE_INPUTS: tuple[str, ...] = ("t2m", "skt")
"""The inputs the perturbation is added to (air and skin temperature, degC)."""
FUTURE: tuple[int, int] = (2071, 2100)
"""The late-century period."""
COLUMNS = ["source", "period", "base", "delta_K", "layer", "unit", "response_degC"]

_DEMO_KEYS = ("demo_version", "seed", "resolution_deg", "steps_per_month")


def is_demo_catalog(metadata: Mapping) -> bool:
    """True when a catalog's ``metadata`` is a demo build's (it gets an emulator rerun)."""
    return all(k in metadata for k in _DEMO_KEYS)


@dataclass
class Sensitivity:
    """The table, the notes that go with it (CSV comment lines, report) and the emulator's
    base-run check (largest |base - stored| per period, degC)."""

    rows: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    emulator_check_degC: dict[str, float] = field(default_factory=dict)


def strip_derived(table: xr.Dataset) -> xr.Dataset:
    """``table`` without its time-varying derived features (the run's plugins recompute them
    from the base variables, so a perturbed ``t2m`` reaches every feature built on it)."""
    drop = [n for n in derived_names(table.data_vars) if "time" in table[n].dims]
    return table.drop_vars(drop)


def perturb(table: xr.Dataset, delta: float, first: pd.Timestamp, last: pd.Timestamp
            ) -> xr.Dataset:
    """``table`` with ``delta`` K added to :data:`TEMPERATURE_INPUTS` from ``first`` to
    ``last`` (month stamps, inclusive); derived features are dropped (:func:`strip_derived`)."""
    out = strip_derived(table)
    names = [n for n in TEMPERATURE_INPUTS if n in out]
    if not names:
        raise DataError("the table has none of " + ", ".join(TEMPERATURE_INPUTS)
                        + " to perturb")
    time = pd.DatetimeIndex(out["time"].values)
    inside = xr.DataArray((time >= first) & (time <= last), dims="time",
                          coords={"time": out["time"]})
    for n in names:
        out[n] = (out[n] + delta * inside).assign_attrs(out[n].attrs)
    return out


def period_months(table: xr.Dataset, start: int, end: int, window: int) -> pd.DatetimeIndex:
    """The months of years ``start``..``end`` that ``table`` can predict (each needs the
    ``window`` months before it); DataError when the period is not covered."""
    time = pd.DatetimeIndex(table["time"].values)
    months = pd.date_range(f"{start}-01-01", f"{end}-12-01", freq="MS")
    first = months[0] - pd.DateOffset(months=window)
    if first < time[0] or months[-1] > time[-1]:
        raise DataError(f"sensitivity period {start}-{end}: the table spans {time[0]:%Y-%m}.."
                        f"{time[-1]:%Y-%m}, the period needs {first:%Y-%m}..{months[-1]:%Y-%m}")
    return months


def network_responses(run, table: xr.Dataset, start: int, end: int,
                      deltas: Sequence[float] = DELTAS_K, models: Sequence[str] | None = None,
                      bar=None) -> xr.DataArray:
    """Mean response (model, delta_K, unit, layer) degC of each network to ``t2m``/``skt`` +
    dK over the months of ``start``..``end`` (and the window before them)."""
    models = list(models or run.network_names)
    window = run.normaliser.window
    months = period_months(table, start, end, window)
    first = months[0] - pd.DateOffset(months=window)
    base = strip_derived(table)
    per_model = []
    for name in models:
        ref = run.predict(name, base, months)
        per_delta = []
        for d in deltas:
            warm = run.predict(name, perturb(table, float(d), first, months[-1]), months)
            per_delta.append((warm - ref).mean("time"))
            if bar is not None:
                bar.update(1)
        per_model.append(xr.concat(per_delta, dim=pd.Index([float(d) for d in deltas],
                                                            name="delta_K")))
    out = xr.concat(per_model, dim=pd.Index(models, name="source"))
    udim = unit_dim(table)
    return out.transpose("source", "delta_K", udim, "layer")


def emulator_responses(runs: xr.DataArray) -> xr.DataArray:
    """Mean response (source=emulator, delta_K, band, layer) of an emulator rerun (delta_K,
    time, band, layer) whose ``delta_K`` 0 is the base run."""
    base = runs.sel(delta_K=0.0)
    warm = runs.sel(delta_K=runs["delta_K"].values[runs["delta_K"].values != 0.0])
    return (warm - base).mean("time").expand_dims(source=[EMULATOR])


def response_rows(resp: xr.DataArray, period: str, base: str) -> pd.DataFrame:
    """Rows of :data:`COLUMNS` from responses (source, delta_K, unit, layer), plus the mean
    over units (``unit == "all"``)."""
    udim = next(d for d in resp.dims if d not in ("source", "delta_K", "layer"))
    rows = []
    for src in resp["source"].values:
        for d in resp["delta_K"].values:
            sub = resp.sel(source=src, delta_K=d)
            for layer in sub["layer"].values:
                vals = sub.sel(layer=layer)
                for u, v in zip(vals[udim].values, vals.values, strict=True):
                    rows.append((str(src), period, base, float(d), str(layer), str(u), float(v)))
                rows.append((str(src), period, base, float(d), str(layer), "all",
                             float(np.nanmean(vals.values))))
    return pd.DataFrame(rows, columns=COLUMNS)


def base_check(runs: xr.DataArray, stored: xr.DataArray | None) -> float | None:
    """Largest |emulator base run - stored band mean| (degC) over the period's months, or None
    when ``stored`` (time, band, layer) is missing or not per band."""
    if stored is None or "band" not in stored.dims:
        return None
    base = runs.sel(delta_K=0.0)
    have = pd.DatetimeIndex(stored["time"].values)
    if not pd.DatetimeIndex(base["time"].values).isin(have).all():
        return None
    s = stored.sel(time=base["time"].values).assign_coords(layer=base["layer"].values)
    s = s.sel(band=base["band"].values).transpose(*base.dims)
    return float(np.nanmax(np.abs(base.values - s.values)))


def sensitivity(run, table: xr.Dataset, future: xr.Dataset | None = None,
                future_base: str = "", scenario: str | None = None,
                metadata: Mapping | None = None, stored_future: xr.DataArray | None = None,
                deltas: Sequence[float] = DELTAS_K, progress: bool = True,
                test_years: tuple[int, int] | None = None) -> Sensitivity:
    """The sensitivity table of ``run``'s networks, and of the emulator for a demo catalog.

    ``table``: the historical table (test period: ``test_years``, default the run's);
    ``future``: a continuation table covering 2071-2100 and its ``future_base`` description
    (None: no late-century rows); ``scenario``: the scenario whose truth forcing the emulator
    runs for 2071-2100; ``metadata``: the catalog's (demo builds get an emulator rerun);
    ``stored_future``: the scenario truth (time, band, layer) the emulator base run must
    reproduce (the test period is checked against ``table``'s soil temperatures).
    """
    test = tuple(test_years or run.config.test_years)
    candidates: list[tuple[int, int, str | None, xr.Dataset, str]] = [
        (int(test[0]), int(test[1]), None, table, "reanalysis (test years)")]
    if future is not None:
        candidates.append((*FUTURE, scenario, future, future_base))
    notes: list[str] = []
    periods = []
    for cand in candidates:
        try:
            period_months(cand[3], cand[0], cand[1], run.normaliser.window)
        except DataError as exc:
            notes.append(f"{exc}: skipped")
            continue
        if not any(n in cand[3] for n in TEMPERATURE_INPUTS):
            notes.append(f"sensitivity period {cand[0]}-{cand[1]}: the table has none of "
                         f"{', '.join(TEMPERATURE_INPUTS)} to warm: skipped")
            continue
        periods.append(cand)
    models = run.network_names
    bar = tqdm(total=len(periods) * len(models) * len(deltas), desc="sensitivity",
               unit="run", disable=bars.disabled(progress))
    frames = []
    for y0, y1, _scen, tab, base in periods:
        resp = network_responses(run, tab, y0, y1, deltas, models, bar)
        frames.append(response_rows(resp, f"{y0}-{y1}", base))
    bar.close()
    check: dict[str, float] = {}
    metadata = metadata or {}
    if not periods:
        return Sensitivity(pd.DataFrame(columns=COLUMNS), notes, check)
    if not is_demo_catalog(metadata):
        notes.append("no emulator rows: the catalog is not a demo build, and nature has no "
                     "rerun")
    elif emulator_rerun() is None:
        notes.append("no emulator rows: no emulator rerun was handed down (the permaplug "
                     "command line sets it)")
    else:
        try:
            frames += _emulator_frames(metadata, periods, run.normaliser.window, deltas, table,
                                       stored_future, test, notes, check, progress)
        except DataError as exc:  # e.g. a demo folder that does not match its catalog
            notes.append(f"no emulator rows: {exc}")
    return Sensitivity(pd.concat(frames, ignore_index=True), notes, check)


def _emulator_frames(metadata: Mapping, periods: list, window: int, deltas: Sequence[float],
                     table: xr.Dataset, stored_future: xr.DataArray | None,
                     test: tuple, notes: list[str], check: dict[str, float],
                     progress: bool) -> list[pd.DataFrame]:
    """The emulator rerun's rows for ``periods``; its base-run check goes into ``check`` and
    ``notes``."""
    wanted = [(y0, y1, scen) for y0, y1, scen, _t, _b in periods]
    runs = emulator_rerun()(metadata, wanted, window, deltas, progress=progress)
    stored = {f"{test[0]}-{test[1]}": _band_profiles(truth_array(table)),
              f"{FUTURE[0]}-{FUTURE[1]}": stored_future}
    frames = []
    for y0, y1, scen, _t, _b in periods:
        label = f"{y0}-{y1}"
        what = "reanalysis (test years)" if scen is None else f"{scen} truth forcing"
        frames.append(response_rows(emulator_responses(runs[label]), label, what))
        diff = base_check(runs[label], stored.get(label))
        if diff is None:
            notes.append(f"emulator base run {label}: no stored band means to check")
        else:
            check[label] = diff
            notes.append(f"emulator base run {label} reproduces the stored band means "
                         f"within {diff:.2g} degC")
    return frames


def highest_scenario(names: Sequence[str]) -> str:
    """The scenario of highest forcing among ``names`` (:mod:`permaplug.core.scenarios`)."""
    from permaplug.core.scenarios import ordered

    return ordered([str(n) for n in names])[-1]


def future_base_table(run, table: xr.Dataset, corrected: xr.Dataset, end: int,
                      truth_forcing: Mapping[str, xr.Dataset] | None = None
                      ) -> tuple[xr.Dataset | None, str, str | None]:
    """The continuation table the 2071-2100 response is measured on, its description and the
    highest scenario: the truth forcing table of the highest scenario when
    ``truth_forcing`` (``{scenario: continuation table}``) has it, else the historical table
    continued by the bias-corrected highest scenario. ``(None, "", None)`` when the projection
    ends before 2100."""
    from permaplug.projection.tables import projection_table, scenario_variables

    if end < FUTURE[1]:
        return None, "", None
    high = highest_scenario(corrected["scenario"].values)
    if truth_forcing and high in truth_forcing:
        return truth_forcing[high], f"{high} truth forcing", high
    corrector = str(corrected.attrs.get("bias_correction", "")) or "bias-corrected"
    future = projection_table(table, corrected.sel(scenario=high, drop=True), end,
                              scenario_variables(run.normaliser.dynamic_names))
    return future, f"{high} corrected ({corrector}; no truth forcing)", high


def sensitivity_outputs(run, table: xr.Dataset, corrected: xr.Dataset, end: int,
                        out_dir: Path, data_label: str, metadata: Mapping | None = None,
                        truth: Mapping[str, xr.DataArray] | None = None,
                        truth_forcing: Mapping[str, xr.Dataset] | None = None,
                        progress: bool = True) -> dict:
    """Measure (:func:`sensitivity`) and write (:func:`write_sensitivity`) the sensitivity
    test of a projection; returns the ``summary.json`` entry (notes, emulator check, pooled
    +5 K responses)."""
    future, base, high = future_base_table(run, table, corrected, end, truth_forcing)
    stored = None
    if high is not None and truth and high in truth:
        stored = truth[high].transpose("layer", ...)
    res = sensitivity(run, table, future, base, high, metadata, stored, progress=progress)
    write_sensitivity(res, out_dir, data_label)
    top = res.rows[(res.rows["unit"] == "all") & (res.rows["delta_K"] == max(DELTAS_K))]
    return {"notes": res.notes, "emulator_base_check_degC": res.emulator_check_degC,
            f"response_{max(DELTAS_K):g}K_degC": {
                f"{r.source}|{r.period}|{r.layer}": round(float(r.response_degC), 4)
                for r in top.itertuples()}}


def _band_profiles(profiles: xr.DataArray) -> xr.DataArray | None:
    """``profiles`` (layer, time, band) when the table is per band, else None."""
    return profiles if "band" in profiles.dims else None


def write_sensitivity(result: Sensitivity, out_dir: Path, data_label: str) -> list[Path]:
    """``sensitivity.csv`` and ``sensitivity.png`` into ``out_dir``."""
    buf = io.StringIO()
    buf.write(f"# data: {data_label}\n")
    for note in result.notes:
        buf.write(f"# note: {note}\n")
    result.rows.assign(data=data_label).to_csv(buf, index=False, float_format="%.6g")
    csv = write_text_atomic(Path(out_dir) / "sensitivity.csv", buf.getvalue())
    png = sensitivity_figure(result.rows, data_label, Path(out_dir) / "sensitivity.png")
    return [csv, png]


def read_sensitivity(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """A ``sensitivity.csv``: the rows and its ``# note:`` lines."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    notes = [ln[len("# note: "):] for ln in lines if ln.startswith("# note: ")]
    return pd.read_csv(path, comment="#", dtype={"unit": str}), notes


def pooled_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The pooled responses (``unit == "all"``) as period, dK, layer x source (emulator
    last), degC, plus each network's ratio to the emulator when it is there: the report's
    table."""
    pooled = rows[rows["unit"].astype(str) == "all"]
    if not len(pooled):
        return pd.DataFrame()
    wide = pooled.pivot_table(index=["period", "delta_K", "layer"], columns="source",
                              values="response_degC", sort=False)
    nets = [s for s in dict.fromkeys(pooled["source"]) if s != EMULATOR]
    out = wide[nets].rename(columns=lambda c: f"{c} (degC)")
    if EMULATOR in wide.columns:
        out[f"{EMULATOR} (degC)"] = wide[EMULATOR]
        for n in nets:
            out[f"{n} / {EMULATOR}"] = wide[n] / wide[EMULATOR]
    out = out.reset_index()
    out.columns.name = None
    out["delta_K"] = out["delta_K"].map(lambda d: f"+{d:g} K")
    return out


def base_lines(rows: pd.DataFrame) -> list[str]:
    """One line per period: the forcing each source's perturbation was added to."""
    out = []
    for period, g in rows.groupby("period", sort=False):
        by_base = g.groupby("base", sort=False)["source"].unique()
        out.append(f"{period}: " + "; ".join(f"{', '.join(map(str, src))} on {base}"
                                             for base, src in by_base.items()))
    return out
