"""Gridded mode from the command line: ``--spatial grid``, ``--dask-scheduler``, torchrun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core import schema

GRID_RUN = ["--spatial", "grid", "--model", "gru", "--hparam", "hidden_size=8", "--epochs", "1",
            "--batch-size", "256", "--train-years", "2001-2018", "--test-years", "2019-2023",
            "--quiet"]


def test_grid_table_on_a_local_cluster_equals_the_threaded_build(demo_catalog, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["data", "build", "--catalog", str(demo_catalog), "--spatial",
                              "grid", "--dask-scheduler", "--out", str(tmp_path / "d.nc")])
    assert res.exit_code == 0, res.output
    assert "dask: scheduler" in res.output and "workers" in res.output
    assert "data: demo emulator" in res.output
    res = runner.invoke(cli, ["data", "build", "--catalog", str(demo_catalog), "--spatial",
                              "grid", "--out", str(tmp_path / "t.nc")])
    assert res.exit_code == 0, res.output
    a, b = xr.load_dataset(tmp_path / "d.nc"), xr.load_dataset(tmp_path / "t.nc")
    xr.testing.assert_identical(a, b)
    assert a.sizes["cell"] > 12 and set(np.unique(a["band"].values)) == set(range(6))
    # static features per cell: lithology from 16 sample points (steps of 6.25 %), not band means
    lith = np.stack([a[f"lith_{c}"].values for c in schema.LITHOLOGY_CLASSES])
    np.testing.assert_allclose(lith.sum(axis=0), 100.0)
    np.testing.assert_allclose(lith / 6.25, np.round(lith / 6.25))
    per_band_unique = [len(np.unique(a["bdod_l1"].values[a["band"].values == b]))
                       for b in range(6)]
    assert max(per_band_unique) > 1  # cells of one band differ


def test_unreachable_scheduler_is_a_one_line_error(demo_catalog, tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        res = CliRunner().invoke(cli, ["data", "build", "--catalog", str(demo_catalog), "--spatial",
                                       "grid", "--dask-scheduler", "tcp://127.0.0.1:9", "--out",
                                       str(tmp_path / "x.nc")])
    assert res.exit_code == 1
    assert res.output.startswith("Error: --dask-scheduler tcp://127.0.0.1:9: cannot connect")
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.slow
def test_grid_run_with_projection_on_a_local_cluster(demo_catalog, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(demo_catalog), *GRID_RUN,
                                   "--dask-scheduler", "--scenarios", "rcp26,rcp85",
                                   "--end", "2025", "--no-explain", "--no-report",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "dask: scheduler" in res.output
    cfg = (out / "config.yaml").read_text()
    assert "spatial_dim: cell" in cfg and "- lat" in cfg  # latitude is a per-cell input
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "demo emulator"
    assert set(metrics["models"]["gru"]["per_band"]) == {str(b) for b in range(6)}
    proj = xr.open_dataset(out / "projections" / "qm-2025" / "projections.nc")
    assert proj["soil_temperature"].dims[:2] == ("time", "cell")
    assert proj.attrs["data"].startswith("demo emulator")
    t = proj["soil_temperature"]
    assert np.isfinite(t.values).all() and -60 < float(t.min()) < float(t.max()) < 40
    assert (out / "COMPLETE").exists()


@pytest.mark.slow
def test_torchrun_grid_run_writes_once_and_matches_one_process(demo_catalog, tmp_path):
    common = [*GRID_RUN, "--catalog", str(demo_catalog), "--no-project", "--no-explain",
              "--no-report", "--seed", "1", "--hparam", "dropout=0"]  # dropout draws differ
    one = tmp_path / "one"
    res = CliRunner().invoke(cli, ["run", *common, "--out", str(one)])
    assert res.exit_code == 0, res.output
    two = tmp_path / "two"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29547", "-m",
                           "permaplug", "run", *common, "--out", str(two)],
                          capture_output=True, text=True, timeout=1200, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # one run folder
    m1 = json.loads((one / "metrics.json").read_text())["models"]["gru"]["overall"]
    m2 = json.loads((two / "metrics.json").read_text())["models"]["gru"]["overall"]
    assert m2["rmse"] == pytest.approx(m1["rmse"], rel=1e-3)
    assert m2["r2"] == pytest.approx(m1["r2"], abs=1e-3)
