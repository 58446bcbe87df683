"""Bias-corrected scenario features: read, split soil water, calibrate, correct.

Calibration period (default 2001-2023): the reanalysis (ERA5-Land starts in 2001) against the
climate model's historical run *continued by one scenario*, since CMIP5 historical runs end in
2005. The continuing scenario is ``rcp85`` by default (option ``continuation``): observed
emissions followed RCP 8.5 most closely through the 2010s-2020s, and the RCPs barely differ
before 2023 anyway. The fitted corrector is then applied to every scenario's whole series.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from permaplug.core import schema
from permaplug.core.corrector import Corrector
from permaplug.core.errors import CatalogError, ConfigError, DataError
from permaplug.core.plugins import get_corrector
from permaplug.correction.calibration import parse_calibration  # noqa: F401 - re-exported

CONTINUATION = "rcp85"
"""Scenario that continues the historical run over the calibration period (documented choice)."""
DEFAULT_CALIBRATION: tuple[int, int] = (2001, 2023)
FEATURES: tuple[str, ...] = schema.FORCING + schema.SOIL_WATER


@dataclass
class Correction:
    """Everything a correction produced (the report uses all of it).

    ``raw`` and ``corrected``: dims ``(scenario, time, unit)``; ``obs``: ``(time, unit)``;
    ``model_hist`` / ``obs_hist``: the calibration series the corrector was fitted on.
    """

    raw: xr.Dataset
    corrected: xr.Dataset
    obs: xr.Dataset
    corrector: Corrector
    calibration: tuple[int, int]
    continuation: str
    variables: list[str]


def calibration_slice(years: tuple[int, int]) -> slice:
    return slice(f"{years[0]}-01-01", f"{years[1]}-12-31")


def split_soil_water_if_needed(scen: xr.Dataset, obs: xr.Dataset) -> xr.Dataset:
    """Add ``swvl1..4`` to a scenario holding climate-model totals ``mrso`` (and ``mrsos``).

    Uses :func:`permaplug.data.soilwater.fit_dirichlet` on the reanalysis' swvl1..4 and
    :func:`~permaplug.data.soilwater.split_soil_water` on the model's totals.
    """
    if all(v in scen for v in schema.SOIL_WATER) or "mrso" not in scen:
        return scen
    missing = [v for v in schema.SOIL_WATER if v not in obs]
    if missing:
        raise DataError(f"cannot split the model's mrso into swvl1..4: the reanalysis lacks "
                        f"{', '.join(missing)}")
    from permaplug.data.soilwater import fit_dirichlet, split_soil_water

    split = split_soil_water(scen, fit_dirichlet(obs))
    if isinstance(split, xr.Dataset):
        return scen.assign({v: split[v] for v in schema.SOIL_WATER if v in split})
    raise DataError("split_soil_water did not return a dataset of swvl1..4")


def drop_units_without_reference(scen: xr.Dataset, obs: xr.Dataset, variables: Sequence[str],
                                 calibration: tuple[int, int]
                                 ) -> tuple[xr.Dataset, xr.Dataset, list[str]]:
    """Leave out the spatial units (bands) where the reanalysis has no value of any variable in
    the calibration period (e.g. bands with no ERA5 point); return them for the user to see."""
    sample = obs[variables[0]]
    space = [d for d in sample.dims if d != "time"]
    if len(space) != 1:
        return scen, obs, []
    dim = space[0]
    cal = obs[list(variables)].sel(time=calibration_slice(calibration))
    has = xr.concat([cal[v].notnull().any("time") for v in variables], "v").any("v")
    if bool(has.all()):
        return scen, obs, []
    dropped = [str(u) for u in obs[dim].values[~has.values]]
    keep = obs[dim].values[has.values]
    if keep.size == 0:
        raise DataError(f"the reanalysis has no value of {', '.join(variables)} in the "
                        f"calibration period {calibration[0]}-{calibration[1]}")
    return scen.sel({dim: keep}), obs.sel({dim: keep}), dropped


def correct_dataset(
    scen: xr.Dataset,
    obs: xr.Dataset,
    corrector: str = "qm",
    calibration: tuple[int, int] = DEFAULT_CALIBRATION,
    variables: Sequence[str] = FEATURES,
    continuation: str = CONTINUATION,
    options: dict[str, Any] | None = None,
) -> Correction:
    """Fit ``corrector`` on the calibration period and apply it to every scenario series.

    ``scen``: ``(scenario, time, unit)``; ``obs``: ``(time, unit)``; both canonical units.
    """
    if "scenario" not in scen.dims:
        raise DataError("scenario data have no 'scenario' dimension")
    names = [str(s) for s in scen.scenario.values]
    if continuation not in names:
        raise ConfigError(f"continuation scenario {continuation!r} not in the scenario data "
                          f"(have {', '.join(names)})")
    for v in variables:
        for ds, what in ((scen, "scenario data"), (obs, "reanalysis")):
            if v not in ds:
                raise DataError(f"{what} lack variable {v!r} needed for the correction")
    sl = calibration_slice(calibration)
    obs_hist = obs[list(variables)].sel(time=sl)
    model_hist = scen[list(variables)].sel(scenario=continuation, time=sl).drop_vars("scenario")
    for ds, what in ((obs_hist, "reanalysis"), (model_hist, f"scenario {continuation}")):
        if ds.sizes.get("time", 0) == 0:
            raise DataError(f"{what} has no month in the calibration period "
                            f"{calibration[0]}-{calibration[1]}")
    model_hist.attrs = dict(scen.attrs)
    obs_hist.attrs = dict(obs.attrs)
    corr = get_corrector(corrector)(**(options or {}))
    corr.fit(model_hist, obs_hist)
    raw = scen[list(variables)]
    raw.attrs = dict(scen.attrs)
    corrected = corr.apply(raw)
    dims = ["scenario", "time"] + [d for d in raw[variables[0]].dims
                                   if d not in ("scenario", "time")]
    corrected = corrected.transpose(*dims, ...)
    corrected.attrs.update({
        "bias_correction": corrector,
        "bias_correction_calibration": f"{calibration[0]}-{calibration[1]}",
        "bias_correction_continuation": continuation,
        "bias_correction_reference": schema.data_label(obs),
    })
    if options:
        corrected.attrs["bias_correction_options"] = ", ".join(f"{k}={v}"
                                                               for k, v in options.items())
    return Correction(raw=raw, corrected=corrected, obs=obs, corrector=corr,
                      calibration=calibration, continuation=continuation,
                      variables=list(variables))


def open_inputs(catalog: Any, obs: xr.Dataset | None = None,
                scenario_entry: str | None = None) -> tuple[xr.Dataset, xr.Dataset]:
    """The scenario entry (role ``scenario``; plugin ``cmip`` unless named) and the reanalysis.

    ``catalog``: a :class:`~permaplug.core.catalog.PermaplugCatalog`, a catalog path or None
    (the bundled demo catalog). ``scenario_entry``: an entry name or a source plugin name.
    """
    if catalog is None or isinstance(catalog, (str, Path)):
        from permaplug.core.catalog import load_catalog

        catalog = load_catalog(catalog)
    entry = scenario_entry or "cmip"
    try:
        name = catalog.find(role="scenario", source=entry)
    except CatalogError:
        if scenario_entry is not None:
            raise
        name = catalog.find(role="scenario")
    scen = catalog.open(name)
    if obs is None:
        obs = catalog.open(catalog.find(role="reanalysis"))
    return scen, obs


def corrected_scenarios(
    catalog: Any,
    corrector: str = "qm",
    obs: xr.Dataset | None = None,
    scenario_entry: str | None = None,
    calibration: tuple[int, int] = DEFAULT_CALIBRATION,
    scenarios: Sequence[str] | None = None,
    options: dict | None = None,
) -> tuple[xr.Dataset, Corrector]:
    """Bias-corrected canonical features ``schema.FORCING + schema.SOIL_WATER``.

    Returns ``(ds, fitted corrector)``; ``ds`` has dims ``(scenario, time, band)`` (or ``cell``)
    over the scenario entry's whole period, the scenario entry's data label, and attributes
    naming the correction, calibration period, continuation scenario and reference data.
    ``options``: the corrector's options, plus ``continuation`` (default ``rcp85``).
    """
    options = dict(options or {})
    continuation = options.pop("continuation", CONTINUATION)
    scen, obs = open_inputs(catalog, obs, scenario_entry)
    if scenarios is not None:
        have = [str(s) for s in scen.scenario.values]
        unknown = [s for s in scenarios if s not in have]
        if unknown:
            raise ConfigError(f"scenario(s) {', '.join(unknown)} not in the scenario data "
                              f"(have {', '.join(have)})")
        keep = list(dict.fromkeys([*scenarios, continuation]))
        scen = scen.sel(scenario=keep)
    scen = split_soil_water_if_needed(scen, obs)
    result = correct_dataset(scen, obs, corrector, calibration, FEATURES, continuation, options)
    out = result.corrected
    if scenarios is not None:
        out = out.sel(scenario=list(scenarios))
    return out, result.corrector
