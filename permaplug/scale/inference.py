"""Chunked inference over grid cells, written incrementally to Zarr or NetCDF.

``predict_to_store(run_dir, model, table, months, out)`` predicts soil temperature for every
cell of a gridded table, one block of ``cells_per_chunk`` cells at a time, and writes each block
into its region of the output as soon as it is ready, so memory holds one block (per worker)
whatever the number of cells. With a dask.distributed client (``client=``), blocks run on the
cluster's workers (each reloads the run from its folder, weights only) and at most two blocks
per worker are in flight. The output is written to a temporary sibling and renamed at the end
(:func:`permaplug.core.atomic.atomic_path`): nothing half-written is ever left at ``out``.

Output: ``soil_temperature`` (time, cell, layer) degC float32, coords ``lat lon band`` per cell,
``layer`` (stl1..4) and ``depth``; attributes ``permaplug_data`` (the table's data label),
``trained_on``, ``model``, ``run``.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from permaplug.core import progress as bars
from permaplug.core import schema
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import ConfigError
from permaplug.scale.cells import DEFAULT_CELL_CHUNK, cell_blocks, check_cells

FORMATS = {".zarr": "zarr", ".nc": "netcdf"}
VARIABLE = "soil_temperature"


def store_format(out: Path | str) -> str:
    """``zarr`` for ``*.zarr``, ``netcdf`` for ``*.nc`` (ConfigError otherwise)."""
    fmt = FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out {out}: use a .zarr folder or a .nc file name")
    return fmt


_THREAD_RUNS = threading.local()
_RUNS_PER_THREAD = 4


def _cached_run(run_dir: str):
    """The run loaded from ``run_dir``, cached per thread.

    A torch module must not be called from two threads at once (a recurrent layer re-flattens
    its weights on call, which races), and dask workers of a LocalCluster started with
    ``processes=False`` are threads of one process: each thread keeps its own copy.
    """
    from permaplug.training.runs import load_run

    runs: dict[str, Any] = _THREAD_RUNS.__dict__.setdefault("runs", {})
    if run_dir not in runs:
        if len(runs) >= _RUNS_PER_THREAD:
            runs.pop(next(iter(runs)))
        runs[run_dir] = load_run(run_dir)
    return runs[run_dir]


def predict_block(run_dir: str, model: str, block: xr.Dataset, months: np.ndarray) -> np.ndarray:
    """``[T, C, L]`` float32 degC for the cells of ``block`` (a table slice holding the input
    months). Runs wherever it is called (the main process or a dask worker)."""
    import torch

    torch.set_num_threads(1)
    run = _cached_run(str(run_dir))
    da = run.predict(model, block, pd.DatetimeIndex(months))
    return np.asarray(da.transpose("time", "cell", "layer").values, np.float32)


def _template(table: xr.Dataset, months: pd.DatetimeIndex, model: str, run_dir: Path,
              trained_on: str) -> xr.Dataset:
    cell_coords = {c: table[c].values for c in table.coords if table[c].dims == ("cell",)}
    ds = xr.Dataset(
        coords={"time": months.values.astype("datetime64[ns]"),
                **{c: ("cell", v) for c, v in cell_coords.items() if c != "cell"},
                "cell": table["cell"].values, "layer": list(schema.TARGETS),
                "depth": ("layer", np.asarray(schema.LAYER_MIDPOINTS_M),
                          {"units": "m", "positive": "down", "long_name": "mid-depth of layer"})},
        attrs={schema.DATA_LABEL_ATTR: schema.data_label(table), "data": schema.data_label(table),
               "trained_on": trained_on, "model": model, "run": str(run_dir),
               "Conventions": "CF-1.8",
               "title": "permaplug gridded soil temperature predictions"},
    )
    return ds


def _var_attrs() -> dict[str, str]:
    return {"units": "degC", "standard_name": "soil_temperature",
            "long_name": "predicted monthly mean soil temperature"}


class _ZarrWriter:
    def __init__(self, path: Path, template: xr.Dataset, chunk: int) -> None:
        shape = (template.sizes["time"], template.sizes["cell"], template.sizes["layer"])
        import dask.array as dsa

        var = xr.DataArray(dsa.full(shape, np.nan, dtype=np.float32,
                                    chunks=(shape[0], chunk, shape[2])),
                           dims=("time", "cell", "layer"), attrs=_var_attrs())
        self.path = path
        self.template = template.assign({VARIABLE: var})
        # Zarr format 2: consolidated metadata and string coordinates readable everywhere
        self.template.to_zarr(path, mode="w", compute=False, consolidated=True, zarr_format=2)

    def write(self, sl: slice, values: np.ndarray) -> None:
        part = xr.Dataset({VARIABLE: (("time", "cell", "layer"), values)})
        part.to_zarr(self.path, region={"time": slice(None), "cell": sl, "layer": slice(None)},
                     zarr_format=2, consolidated=False)

    def close(self) -> None:
        import zarr

        zarr.consolidate_metadata(str(self.path))


class _NetCDFWriter:
    def __init__(self, path: Path, template: xr.Dataset, chunk: int) -> None:
        import netCDF4

        template.to_netcdf(path, engine="netcdf4")  # coordinates and attributes
        self.nc = netCDF4.Dataset(path, "a")
        shape = (template.sizes["time"], template.sizes["cell"], template.sizes["layer"])
        var = self.nc.createVariable(VARIABLE, "f4", ("time", "cell", "layer"),
                                     fill_value=np.float32(np.nan), zlib=True, complevel=1,
                                     chunksizes=(shape[0], min(chunk, shape[1]), shape[2]))
        var.setncatts({**_var_attrs(), "coordinates": "lat lon band depth"})

    def write(self, sl: slice, values: np.ndarray) -> None:
        self.nc.variables[VARIABLE][:, sl, :] = values

    def close(self) -> None:
        self.nc.close()


def predict_to_store(run_dir: Path | str, model: str, table: xr.Dataset,
                     target_months: Sequence | pd.DatetimeIndex, out: Path | str,
                     cells_per_chunk: int = DEFAULT_CELL_CHUNK, client: Any = None,
                     progress: bool = True) -> Path:
    """Predict ``model`` of run ``run_dir`` for every cell of ``table`` and target month, block
    by block, into ``out`` (``.zarr`` or ``.nc``); see the module docstring. Returns ``out``."""
    from permaplug.training.runs import load_run

    out = Path(out)
    fmt = store_format(out)
    check_cells(table)
    run = load_run(run_dir)
    if model not in run.model_names:
        raise ConfigError(f"run {run_dir}: no trained model {model!r}; available: "
                          f"{', '.join(run.model_names) or 'none'}")
    months = pd.DatetimeIndex(target_months)
    window = run.normaliser.window
    first = months.min() - pd.DateOffset(months=window)
    inputs = table.sel(time=slice(first, months.max()))
    template = _template(table, months, model, Path(run_dir), run.data_label)
    blocks = list(cell_blocks(table.sizes["cell"], cells_per_chunk))
    bar = tqdm(total=len(blocks), desc=f"predict {model}", unit="block",
               disable=bars.disabled(progress))
    with atomic_path(out) as tmp:
        writer = (_ZarrWriter if fmt == "zarr" else _NetCDFWriter)(tmp, template,
                                                                     cells_per_chunk)
        try:
            if client is None:
                for sl in blocks:
                    block = inputs.isel(cell=sl).load()
                    writer.write(sl, predict_block(str(run_dir), model, block, months.values))
                    bar.update(1)
            else:
                _run_on_cluster(client, writer, blocks, inputs, str(Path(run_dir).resolve()),
                                model, months.values, bar)
        finally:
            writer.close()
            bar.close()
    return out


def _run_on_cluster(client: Any, writer, blocks: list[slice], inputs: xr.Dataset, run_dir: str,
                    model: str, months: np.ndarray, bar) -> None:
    """Submit blocks to the cluster, at most two per worker in flight; write each result as
    soon as it arrives (the main process is the only writer)."""
    from distributed import as_completed

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    limit = 2 * n_workers
    pending = list(blocks)
    futures = {}

    def submit(sl: slice):
        block = inputs.isel(cell=sl).load()
        fut = client.submit(predict_block, run_dir, model, block, months, pure=False)
        futures[fut.key] = sl
        return fut

    ac = as_completed([submit(pending.pop(0)) for _ in range(min(limit, len(pending)))])
    for fut in ac:
        sl = futures.pop(fut.key)
        writer.write(sl, fut.result())
        bar.update(1)
        if pending:
            ac.add(submit(pending.pop(0)))
