"""Bias-corrected scenario features: read, split soil water, calibrate, correct.

Calibration period (default 2001-2023): the reanalysis (ERA5-Land starts in 2001) against the
climate model's historical run *continued by one scenario*, since climate-model historical runs
end before 2023 (2005 in CMIP5, 2014 in CMIP6). The continuing scenario is an option
(``continuation``), else the scenario entry's metadata, else the highest-forcing scenario the
data hold (:mod:`permaplug.core.scenarios`). The fitted corrector is then applied to every
scenario's whole series.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from permaplug.core import scenarios as scenario_roles
from permaplug.core import schema
from permaplug.core.corrector import Corrector
from permaplug.core.errors import CatalogError, ConfigError, DataError
from permaplug.core.plugins import get_corrector
from permaplug.correction.calibration import parse_calibration  # noqa: F401 - re-exported
from permaplug.data.features import SCENARIO_FEATURES

DEFAULT_CALIBRATION: tuple[int, int] = (2001, 2023)
MIN_CALIBRATION_SHARE = 0.9
"""A corrector fitted on fewer months than this share of the calibration period is refused
(e.g. a reanalysis covering 2 of 23 years, or a model band without any value)."""
FEATURES: tuple[str, ...] = SCENARIO_FEATURES


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
    pair: tuple[str, str] | None = None
    """(low, high) scenarios of the spread (``high - low``), see :mod:`permaplug.core.scenarios`."""


def calibration_slice(years: tuple[int, int]) -> slice:
    return slice(f"{years[0]}-01-01", f"{years[1]}-12-31")


def check_calibration_share(ds: xr.Dataset, what: str, calibration: tuple[int, int],
                            min_share: float = MIN_CALIBRATION_SHARE) -> None:
    """DataError naming the variable, the unit and the count when a variable of ``ds``
    (``(time, unit)``, the calibration months) holds values in fewer than ``min_share`` of the
    months of ``calibration`` in some unit."""
    if not 0.0 <= float(min_share) <= 1.0:
        raise ConfigError(f"min_calibration_share={min_share}: choose a share in 0..1")
    expected = 12 * (calibration[1] - calibration[0] + 1)
    for v in ds.data_vars:
        if "time" not in ds[v].dims:
            continue
        count = ds[v].notnull().sum("time")
        low = np.asarray(count.values < min_share * expected)
        if not low.any():
            continue
        pos = np.unravel_index(int(np.flatnonzero(low.ravel())[0]), low.shape)
        where = ", ".join(f"{d} {count[d].values[i]}" if d in count.coords else f"{d} {i}"
                          for d, i in zip(count.dims, pos))
        n = int(np.asarray(count.values)[pos]) if low.ndim else int(count.values)
        raise DataError(
            f"{what}: {v!r} has {n} of the {expected} months of the calibration period "
            f"{calibration[0]}-{calibration[1]}" + (f" in {where}" if where else "")
            + f" ({100 * n / expected:.0f} %; at least {100 * min_share:.0f} % needed): choose "
            "a --calibration period the data cover, or lower the share "
            "(--min-calibration-share)")


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
    continuation: str | None = None,
    options: dict[str, Any] | None = None,
    pair: str | Sequence[str] | None = None,
    min_share: float = MIN_CALIBRATION_SHARE,
) -> Correction:
    """Fit ``corrector`` on the calibration period and apply it to every scenario series.

    ``scen``: ``(scenario, time, unit)``; ``obs``: ``(time, unit)``; both canonical units.
    ``continuation`` / ``pair``: None = the scenario data's metadata or the default
    (:func:`permaplug.core.scenarios.resolve`). ``min_share``: the least share of the
    calibration period's months each variable must hold in every unit, in the reanalysis and
    in the continued historical run (:func:`check_calibration_share`).
    """
    if "scenario" not in scen.dims:
        raise DataError("scenario data have no 'scenario' dimension")
    roles = scenario_roles.resolve([str(s) for s in scen.scenario.values], continuation, pair,
                                   scen.attrs)
    continuation = roles.continuation
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
        check_calibration_share(ds, what, calibration, min_share)
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
                      variables=list(variables), pair=roles.pair)


def select_scenarios(scen: xr.Dataset, scenarios: Sequence[str] | None,
                     continuation: str | None = None) -> xr.Dataset:
    """``scen`` restricted to ``scenarios`` plus the continuation scenario the calibration needs.

    The continuation is resolved on the full set first (option, metadata or default) and
    recorded in ``attrs`` so that a subset keeps it. Unknown names are a ConfigError.
    """
    if "scenario" not in scen.dims:
        raise DataError("scenario data have no 'scenario' dimension")
    have = [str(s) for s in scen.scenario.values]
    roles = scenario_roles.resolve(have, continuation, None, scen.attrs)
    scen = scen.assign_attrs({scenario_roles.CONTINUATION_ATTR: roles.continuation})
    if scenarios is None:
        return scen
    unknown = [s for s in scenarios if s not in have]
    if unknown:
        raise ConfigError(f"scenario(s) {', '.join(unknown)} not in the scenario data "
                          f"(have {', '.join(scenario_roles.ordered(have))})")
    return scen.sel(scenario=list(dict.fromkeys([*scenarios, roles.continuation])))


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
    continuation: str | None = None,
    variables: Sequence[str] | None = None,
) -> tuple[xr.Dataset, Corrector]:
    """Bias-corrected canonical features ``variables`` (default ``FEATURES``, the paper's
    ``data.features.SCENARIO_FEATURES``; a run corrects only those its networks use).

    Returns ``(ds, fitted corrector)``; ``ds`` has dims ``(scenario, time, band)`` (or ``cell``)
    over the scenario entry's whole period, the scenario entry's data label, and attributes
    naming the correction, calibration period, continuation scenario and reference data.
    ``options``: the corrector's options. ``continuation``: the scenario continuing the
    historical run (None: the entry's metadata or the highest-forcing scenario, see
    :mod:`permaplug.core.scenarios`).
    """
    options = dict(options or {})
    continuation = options.pop("continuation", None) or continuation
    min_share = float(options.pop("min_calibration_share", MIN_CALIBRATION_SHARE))
    scen, obs = open_inputs(catalog, obs, scenario_entry)
    scen = select_scenarios(scen, scenarios, continuation)
    if variables is None or any(v in schema.SOIL_WATER for v in variables):
        scen = split_soil_water_if_needed(scen, obs)
    result = correct_dataset(scen, obs, corrector, calibration,
                             tuple(variables) if variables is not None else FEATURES, None,
                             options, min_share=min_share)
    out = result.corrected
    if scenarios is not None:
        out = out.sel(scenario=list(scenarios))
    return out, result.corrector
