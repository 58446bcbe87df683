"""Chunked inference over cells, written block by block to Zarr or NetCDF."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from test_training_table import synthetic_table

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.scale import inference
from permaplug.scale.distributed import dask_client
from permaplug.scale.inference import predict_to_store
from permaplug.training.checkpoint import save_checkpoint
from permaplug.training.config import RunConfig
from permaplug.training.runs import build_model, load_run, prepare

MONTHS = pd.date_range("2006-01", "2006-06", freq="MS")


def gridded_table(n_cells: int = 6) -> xr.Dataset:
    bands = synthetic_table("2001-01", "2006-12", n_bands=n_cells, label="synthetic grid")
    cells = bands.rename({"band": "cell"}).drop_vars(["lat_min", "lat_max"])
    lat = np.linspace(60.0, 70.5, n_cells)
    return cells.assign_coords(cell=np.arange(n_cells) + 100, band=("cell", schema.
                               band_of_latitude(lat)), lat=("cell", lat),
                               lon=("cell", np.full(n_cells, -150.0)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with an (untrained, seeded) gru checkpoint on the gridded table."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    table = gridded_table()
    cfg = RunConfig(models=["gru"], train_years=[2003, 2004], test_years=[2005, 2006],
                    spatial="grid", hparams={"gru": {"hidden_size": 8}})
    prep = prepare(table, cfg)
    model = build_model("gru", prep, cfg)
    cfg.save(out / "config.yaml", {"data": "synthetic grid", "models": ["gru"]})
    save_checkpoint(model, out / "checkpoints" / "gru", prep.normaliser, {"window": 24})
    return out


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_blocks_written_incrementally_equal_one_prediction(tmp_path, run_dir, suffix):
    table = gridded_table()
    calls = []
    real = inference.predict_block

    def counting(*args):
        calls.append(args[2].sizes["cell"])
        return real(*args)

    out = tmp_path / f"pred{suffix}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inference, "predict_block", counting)
        predict_to_store(run_dir, "gru", table, MONTHS, out, cells_per_chunk=4, progress=False)
    assert calls == [4, 2]  # two blocks, never the whole grid at once
    got = xr.open_dataset(out, engine="zarr" if suffix == ".zarr" else None)
    ref = load_run(run_dir).predict("gru", table, MONTHS)
    np.testing.assert_allclose(got["soil_temperature"].values,
                               ref.transpose("time", "cell", "layer").values, rtol=1e-6)
    assert got["cell"].values.tolist() == list(range(100, 106))
    np.testing.assert_array_equal(got["band"].values, table["band"].values)
    assert got.attrs[schema.DATA_LABEL_ATTR] == "synthetic grid"
    assert got["soil_temperature"].attrs["units"] == "degC"
    assert np.isfinite(got["soil_temperature"].values).all()
    got.close()


def test_blocks_on_a_local_cluster_give_the_same_values(tmp_path, run_dir):
    table = gridded_table()
    with dask_client(None, n_workers=2) as client:
        predict_to_store(run_dir, "gru", table, MONTHS, tmp_path / "c.zarr", cells_per_chunk=2,
                         client=client, progress=False)
    predict_to_store(run_dir, "gru", table, MONTHS, tmp_path / "l.zarr", cells_per_chunk=6,
                     progress=False)
    a = xr.open_dataset(tmp_path / "c.zarr", engine="zarr")
    b = xr.open_dataset(tmp_path / "l.zarr", engine="zarr")
    xr.testing.assert_allclose(a, b)


def test_a_failure_leaves_nothing_half_written(tmp_path, run_dir):
    table = gridded_table()
    real = inference.predict_block
    seen = []

    def failing(*args):
        seen.append(1)
        if len(seen) == 2:
            raise RuntimeError("worker lost")
        return real(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inference, "predict_block", failing)
        with pytest.raises(RuntimeError, match="worker lost"):
            predict_to_store(run_dir, "gru", table, MONTHS, tmp_path / "p.nc", cells_per_chunk=2,
                             progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_are_one_line_errors(tmp_path, run_dir):
    table = gridded_table()
    with pytest.raises(ConfigError, match=r"use a \.zarr folder or a \.nc file"):
        predict_to_store(run_dir, "gru", table, MONTHS, tmp_path / "p.csv")
    with pytest.raises(ConfigError, match="no trained model 'tcn'"):
        predict_to_store(run_dir, "tcn", table, MONTHS, tmp_path / "p.nc")
    assert list(tmp_path.iterdir()) == []


def test_each_thread_gets_its_own_model_copy(run_dir):
    """Workers of an in-process LocalCluster are threads; a torch module called from two threads
    at once races (the CI failure 'zip() argument 2 is longer than argument 1' in GRU)."""
    from concurrent.futures import ThreadPoolExecutor

    here = inference._cached_run(str(run_dir))
    assert inference._cached_run(str(run_dir)) is here  # cached within a thread
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(inference._cached_run, str(run_dir)).result()
    assert other is not here


def test_concurrent_blocks_in_threads_match_serial(run_dir):
    from concurrent.futures import ThreadPoolExecutor

    table = gridded_table()
    blocks = [table.isel(cell=slice(i, i + 1)).load() for i in range(6)] * 4
    serial = [inference.predict_block(str(run_dir), "gru", b, MONTHS.values) for b in blocks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(
            lambda b: inference.predict_block(str(run_dir), "gru", b, MONTHS.values), blocks))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
