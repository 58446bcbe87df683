"""Bias correction in gridded mode: per cell, chunked along ``cell``, xsdba on dask.

``corrected_scenarios_grid(catalog, table, ...)`` opens the catalog's scenario entry on the
model's own grid (``spatial="grid"``), keeps the months from the calibration start on, maps the
model cells onto the table's cells (nearest model cell, :func:`permaplug.scale.cells.to_cells`),
splits the model's soil water totals with a Dirichlet fit per cell, and corrects every variable
per cell and calendar month (the corrector plugin, e.g. ``qm``), as dask arrays chunked along
``cell`` (each task holds one chunk's whole series). The computation runs wherever dask runs (a
:func:`permaplug.scale.distributed.dask_client` when one is open).

Corrector options default to ``fast=True`` here: where it applies (``qm``, ``qdm`` and ``dqm`` on
every variable but precipitation and snowfall, see :mod:`permaplug.correction.fastqm`) the whole
block of cells is
trained and adjusted by vectorised NumPy/numba code equal to xsdba within 1e-6; everything
else runs xsdba itself.

Quantile mapping is fitted per cell, so blocks of cells are independent. Computed results are
therefore built one block of cells at a time (``compute=True``, or :func:`correct_to_store`,
which writes each block into a Zarr store as it is done): one block's dask graph at a time keeps
peak memory set by the block size rather than by the number of cells (measured in
``benchmarks/RESULTS.md``; one graph over every cell grew by ~190 MB per 1000 cells).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import xarray as xr
from tqdm import tqdm

from permaplug.core import progress as bars
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import CatalogError, ConfigError
from permaplug.scale.cells import (
    DEFAULT_CELL_CHUNK,
    cell_blocks,
    check_cells,
    chunk_cells,
    to_cells,
)


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
                     cells_per_chunk: int = DEFAULT_CELL_CHUNK,
                     variables: Sequence[str] | None = None) -> tuple[xr.Dataset, Any]:
    """Correct model-grid scenarios ``scen`` (scenario, time, cell on the model grid) on
    ``table``'s cells; lazy result (dask, chunked along ``cell``) and the fitted corrector.

    ``variables``: the variables carried (default the paper's ``SCENARIO_FEATURES``; a run's
    projection passes what its networks use). The corrector's own ``variables`` option, in
    ``options``, still chooses which of them it corrects (the others pass through raw)."""
    from permaplug.correction.pipeline import (
        DEFAULT_CALIBRATION,
        FEATURES,
        correct_dataset,
        split_soil_water_if_needed,
    )

    check_cells(table)
    calibration = tuple(calibration or DEFAULT_CALIBRATION)
    options = dict(options or {})
    continuation = options.pop("continuation", None)
    min_share = options.pop("min_calibration_share", None)
    variables = tuple(variables or FEATURES)
    from permaplug.core.plugins import get_corrector

    if "fast" in getattr(get_corrector(corrector), "defaults", {}):
        options.setdefault("fast", True)  # the vectorised path (correction/fastqm.py)
    scen = to_cells(scen, table, cells_per_chunk=cells_per_chunk)
    obs = table[[v for v in table.data_vars if "time" in table[v].dims]]
    obs = chunk_cells(obs.assign_attrs(table.attrs), cells_per_chunk)
    scen = chunk_cells(scen, cells_per_chunk)
    if any(v in variables for v in ("swvl1", "swvl2", "swvl3", "swvl4")):
        scen = split_soil_water_if_needed(scen, obs)
    result = correct_dataset(scen, obs, corrector, calibration, variables, continuation, options,
                             **({"min_share": float(min_share)} if min_share is not None else {}))
    out = result.corrected
    out.attrs["mapped_to_cells"] = scen.attrs.get("mapped_to_cells", "")
    return out, result.corrector


def corrected_scenarios_grid(
    catalog: Any, table: xr.Dataset, corrector: str = "qm",
    calibration: tuple[int, int] | None = None, scenarios: Sequence[str] | None = None,
    options: dict | None = None, scenario_entry: str | None = None,
    cells_per_chunk: int = DEFAULT_CELL_CHUNK, compute: bool = True, end: int | None = None,
    variables: Sequence[str] | None = None,
) -> tuple[xr.Dataset, Any]:
    """Bias-corrected ``variables`` (default ``data.features.SCENARIO_FEATURES``) on
    ``table``'s cells.

    ``table``: the gridded reanalysis table ``(time, cell)`` (the observations). Returns
    ``(ds, fitted corrector)`` like :func:`permaplug.correction.pipeline.corrected_scenarios`,
    ``ds`` with dims ``(scenario, time, cell)`` from the calibration start to the scenario end
    (computed when ``compute``, else lazy dask arrays chunked along ``cell``); ``end``: last
    year to correct (default: the scenario end), the calibration period is always included.
    When computed, the corrector is fitted per block of cells and the second item is the list
    of the blocks' fitted correctors, in cell order.
    """
    check_cells(table)
    calibration = tuple(calibration or _default_calibration())
    scen = _scenarios_for(catalog, scenario_entry, calibration, scenarios, options, end)
    if compute:  # one block of cells at a time (see the module docstring)
        parts = [(part.compute(), fitted) for part, fitted in _corrected_blocks(
            scen, table, corrector, calibration, options, cells_per_chunk, scenarios,
            variables=variables)]
        out = xr.concat([p for p, _ in parts], dim="cell", combine_attrs="override")
        return out, [f for _, f in parts]
    out, fitted = correct_on_cells(scen, table, corrector, calibration, options,
                                   cells_per_chunk, variables)
    if scenarios is not None:
        out = out.sel(scenario=list(scenarios))
    return out, fitted


def _corrected_blocks(scen: xr.Dataset, table: xr.Dataset, corrector: str,
                      calibration: tuple[int, int], options: dict | None,
                      cells_per_chunk: int, scenarios: Sequence[str] | None,
                      progress: bool = False, variables: Sequence[str] | None = None,
                      ) -> Iterator[tuple[xr.Dataset, Any]]:
    """Lazy corrected scenarios of each block of ``cells_per_chunk`` table cells, in order."""
    blocks = list(cell_blocks(table.sizes["cell"], cells_per_chunk))
    for sl in tqdm(blocks, desc=f"correcting ({corrector})", unit="block",
                   disable=bars.disabled(progress), leave=False):
        out, fitted = correct_on_cells(scen, table.isel(cell=sl), corrector, calibration,
                                       options, cells_per_chunk, variables)
        yield (out.sel(scenario=list(scenarios)) if scenarios is not None else out), fitted


def correct_to_store(
    catalog: Any, table: xr.Dataset, out: Path | str, corrector: str = "qm",
    calibration: tuple[int, int] | None = None, scenarios: Sequence[str] | None = None,
    options: dict | None = None, scenario_entry: str | None = None,
    cells_per_chunk: int = DEFAULT_CELL_CHUNK, end: int | None = None, progress: bool = True,
) -> Path:
    """Write the bias-corrected scenarios ``(scenario, time, cell)`` on ``table``'s cells into
    the Zarr store ``out`` (``*.zarr``), block of cells by block, each block appended as soon
    as it is computed; atomically (nothing is left at ``out`` if it fails). Arguments as for
    :func:`corrected_scenarios_grid`. Returns ``out``."""
    out = Path(out)
    if out.suffix != ".zarr":
        raise ConfigError(f"{out}: the corrected grid is written to a Zarr store (*.zarr)")
    check_cells(table)
    calibration = tuple(calibration or _default_calibration())
    scen = _scenarios_for(catalog, scenario_entry, calibration, scenarios, options, end)
    with atomic_path(out) as tmp:
        for i, (part, _fitted) in enumerate(_corrected_blocks(
                scen, table, corrector, calibration, options, cells_per_chunk, scenarios,
                progress)):
            part = part.drop_encoding() if hasattr(part, "drop_encoding") else part
            if i == 0:
                part.to_zarr(tmp, mode="w", zarr_format=2, consolidated=False)
            else:  # coordinates along other dims were written with the first block
                part = part.drop_vars([c for c in part.coords if "cell" not in part[c].dims])
                part.to_zarr(tmp, append_dim="cell", zarr_format=2, consolidated=False)
        import zarr

        zarr.consolidate_metadata(str(tmp))
    return out


def _default_calibration() -> tuple[int, int]:
    from permaplug.correction.pipeline import DEFAULT_CALIBRATION

    return tuple(DEFAULT_CALIBRATION)


def _scenarios_for(catalog: Any, scenario_entry: str | None, calibration: tuple[int, int],
                   scenarios: Sequence[str] | None, options: dict | None,
                   end: int | None) -> xr.Dataset:
    """The model-grid scenarios from the calibration start to ``end``: the requested ones plus
    the continuation scenario the calibration needs."""
    from permaplug.correction.pipeline import select_scenarios

    scen = open_scenarios_grid(catalog, scenario_entry, start=f"{calibration[0]}-01-01")
    if end is not None:
        scen = scen.sel(time=slice(None, f"{max(int(end), calibration[1])}-12-31"))
    return select_scenarios(scen, scenarios, (options or {}).get("continuation"))
