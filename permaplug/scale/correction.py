"""Bias correction in gridded mode: per cell, chunked along ``cell``, xsdba on dask.

``corrected_scenarios_grid(catalog, table, ...)`` opens the catalog's scenario entry on the
model's own grid (``spatial="grid"``), keeps the months from the calibration start on, maps the
model cells onto the table's cells (nearest model cell, :func:`permaplug.scale.cells.to_cells`),
splits the model's soil water totals with a Dirichlet fit per cell, and corrects every variable
per cell and calendar month (the corrector plugin, e.g. ``qm``), as dask arrays chunked along
``cell``: each task holds one chunk's whole series, so peak memory is bounded by the chunk size
times the number of tasks running at once, whatever the number of cells. The computation runs
wherever dask runs (a :func:`permaplug.scale.distributed.dask_client` when one is open).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from permaplug.core.errors import CatalogError, ConfigError
from permaplug.scale.cells import DEFAULT_CELL_CHUNK, check_cells, chunk_cells, to_cells


def open_scenarios_grid(catalog: Any, scenario_entry: str | None = None,
                        start: str | None = None) -> xr.Dataset:
    """The scenario entry on the model grid: dims ``(scenario, time, cell)``, from ``start``."""
    from permaplug.core.catalog import PermaplugCatalog, load_catalog

    cat = catalog if isinstance(catalog, PermaplugCatalog) else load_catalog(catalog)
    entry = scenario_entry or "cmip"
    try:
        name = cat.find(role="scenario", source=entry)
    except CatalogError:
        if scenario_entry is not None:
            raise
        name = cat.find(role="scenario")
    scen = cat.open(name, spatial="grid")
    check_cells(scen, f"{cat.path}: entry {name!r}")
    if start is not None:
        scen = scen.sel(time=slice(start, None))
    return scen


def correct_on_cells(scen: xr.Dataset, table: xr.Dataset, corrector: str = "qm",
                     calibration: tuple[int, int] | None = None,
                     options: dict | None = None,
                     cells_per_chunk: int = DEFAULT_CELL_CHUNK) -> tuple[xr.Dataset, Any]:
    """Correct model-grid scenarios ``scen`` (scenario, time, cell on the model grid) on
    ``table``'s cells; lazy result (dask, chunked along ``cell``) and the fitted corrector."""
    from permaplug.correction.pipeline import (
        CONTINUATION,
        DEFAULT_CALIBRATION,
        FEATURES,
        correct_dataset,
        split_soil_water_if_needed,
    )

    check_cells(table)
    calibration = tuple(calibration or DEFAULT_CALIBRATION)
    options = dict(options or {})
    continuation = options.pop("continuation", CONTINUATION)
    scen = to_cells(scen, table, cells_per_chunk=cells_per_chunk)
    obs = table[[v for v in table.data_vars if "time" in table[v].dims]]
    obs = chunk_cells(obs.assign_attrs(table.attrs), cells_per_chunk)
    scen = chunk_cells(scen, cells_per_chunk)
    scen = split_soil_water_if_needed(scen, obs)
    result = correct_dataset(scen, obs, corrector, calibration, FEATURES, continuation, options)
    out = result.corrected
    out.attrs["mapped_to_cells"] = scen.attrs.get("mapped_to_cells", "")
    return out, result.corrector


def corrected_scenarios_grid(
    catalog: Any, table: xr.Dataset, corrector: str = "qm",
    calibration: tuple[int, int] | None = None, scenarios: Sequence[str] | None = None,
    options: dict | None = None, scenario_entry: str | None = None,
    cells_per_chunk: int = DEFAULT_CELL_CHUNK, compute: bool = True, end: int | None = None,
) -> tuple[xr.Dataset, Any]:
    """Bias-corrected ``schema.FORCING + schema.SOIL_WATER`` on ``table``'s cells.

    ``table``: the gridded reanalysis table ``(time, cell)`` (the observations). Returns
    ``(ds, fitted corrector)`` like :func:`permaplug.correction.pipeline.corrected_scenarios`,
    ``ds`` with dims ``(scenario, time, cell)`` from the calibration start to the scenario end
    (computed when ``compute``, else lazy dask arrays chunked along ``cell``); ``end``: last
    year to correct (default: the scenario end), the calibration period is always included.
    """
    from permaplug.correction.pipeline import CONTINUATION, DEFAULT_CALIBRATION

    check_cells(table)
    calibration = tuple(calibration or DEFAULT_CALIBRATION)
    continuation = (options or {}).get("continuation", CONTINUATION)
    scen = open_scenarios_grid(catalog, scenario_entry, start=f"{calibration[0]}-01-01")
    if end is not None:
        scen = scen.sel(time=slice(None, f"{max(int(end), calibration[1])}-12-31"))
    if scenarios is not None:
        have = [str(s) for s in scen["scenario"].values]
        unknown = [s for s in scenarios if s not in have]
        if unknown:
            raise ConfigError(f"scenario(s) {', '.join(unknown)} not in the scenario data "
                              f"(have {', '.join(have)})")
        scen = scen.sel(scenario=list(dict.fromkeys([*scenarios, continuation])))
    out, fitted = correct_on_cells(scen, table, corrector, calibration, options,
                                   cells_per_chunk)
    if scenarios is not None:
        out = out.sel(scenario=list(scenarios))
    if compute:
        out = out.compute()
    return out, fitted
