"""A self-contained run folder: the table trained on, the catalog and the reanalysis hash are
stored with the run; ``project``, ``explain`` and ``report`` read them, so a finished run
still projects after its catalog's folder moved away (only the scenarios need a catalog)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner
from test_training_table import synthetic_table

from permaplug.cli import cli
from permaplug.core.catalog import load_catalog
from permaplug.data import assemble
from permaplug.data.fingerprint import entry_hash
from permaplug.training import inputs
from permaplug.training.config import RunConfig
from permaplug.training.runs import execute_run, load_run

RUN = ["--model", "gru", "--hparam", "hidden_size=8", "--epochs", "1", "--train-years",
       "2001-2018", "--test-years", "2019-2023", "--no-project", "--no-explain", "--no-report",
       "--quiet"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_run(demo_catalog, tmp_path_factory):
    """A finished run on a private copy of the small demo data: (run folder, data folder)."""
    root = tmp_path_factory.mktemp("selfcontained")
    data = root / "data"
    shutil.copytree(demo_catalog.parent, data)
    res = invoke("run", "--catalog", data / "catalog.yaml", *RUN, "--out", root / "run")
    assert res.exit_code == 0, res.output
    return root / "run", data


def test_the_run_stores_its_table_catalog_and_reanalysis_hash(demo_run):
    run, data = demo_run
    record = json.loads((run / "inputs" / "inputs.json").read_text())
    assert record["table"] == "table.nc" and record["catalog"] == str(data / "catalog.yaml")
    copy = run / "inputs" / "catalog.yaml"
    assert copy.read_bytes() == (data / "catalog.yaml").read_bytes()
    cat = load_catalog(data / "catalog.yaml")
    assert record["reanalysis"] == entry_hash(cat, "era5land")
    assert record["reanalysis"]["files"] == 1 and record["reanalysis"]["bytes"] == (
        data / "era5land" / "era5land_monthly_alaska_2001-2023.nc").stat().st_size
    stored = inputs.open_stored_table(run)
    xr.testing.assert_identical(stored, assemble.assemble_table(cat))  # exact, with attrs
    with xr.open_dataset(run / "inputs" / "table.nc") as raw:
        assert raw["stl1"].encoding["zlib"] and raw["stl1"].dtype == np.float64


def test_project_explain_report_after_the_catalog_folder_moved_away(demo_run, tmp_path,
                                                                   monkeypatch):
    src_run, src_data = demo_run
    run, moved = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(src_run, run)
    shutil.copytree(src_data, moved)  # the original folder is gone, its copy lives elsewhere
    original = Path(json.loads((run / "inputs" / "inputs.json").read_text())["catalog"])
    hidden = original.parent.with_name("hidden")
    original.parent.rename(hidden)
    try:
        def no_assembly(*a, **kw):
            raise AssertionError("the table was assembled again instead of read from the run")

        monkeypatch.setattr(assemble, "assemble_table", no_assembly)
        # without a catalog there are no scenarios: one line that says what to give
        res = invoke("project", run, "--end", "2025", "--no-progress")
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert "catalog file not found" in res.output and "--catalog" in res.output
        assert len(res.output.strip().splitlines()) == 1

        # a catalog holding only the scenario entry suffices
        full = yaml.safe_load((moved / "catalog.yaml").read_text())
        only = {**full, "entries": {"ipsl-cm5a-mr": full["entries"]["ipsl-cm5a-mr"]}}
        (moved / "scenarios.yaml").write_text(yaml.safe_dump(only))
        res = invoke("project", run, "--catalog", moved / "scenarios.yaml", "--end", "2025",
                     "--no-progress")
        assert res.exit_code == 0, res.output
        table = run / "inputs" / "table.nc"
        assert f"historical table: {table}; scenarios: {moved / 'scenarios.yaml'}" in res.output
        assert "has no reanalysis entry 'era5land'" in res.output
        out = run / "projections" / "qm-2025"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["inputs"] == {"historical_table": str(table),
                                     "scenarios_catalog": str(moved / "scenarios.yaml")}
        assert summary["scenarios"] == ["rcp26", "rcp45", "rcp60", "rcp85"]
        first = xr.load_dataset(out / "projections.nc")

        # the whole catalog, moved: same files, same hash, nothing to report
        res = invoke("project", run, "--catalog", moved / "catalog.yaml", "--end", "2025",
                     "--no-progress")
        assert res.exit_code == 0, res.output
        assert "changed since the run" not in res.output and "no reanalysis" not in res.output
        # a changed reanalysis file: reported in one line, the stored table still used
        era5 = moved / "era5land" / "era5land_monthly_alaska_2001-2023.nc"
        era5.write_bytes(era5.read_bytes() + b"\0")
        res = invoke("project", run, "--catalog", moved / "catalog.yaml", "--end", "2025",
                     "--no-progress")
        assert res.exit_code == 0, res.output
        lines = [ln for ln in res.output.splitlines() if "changed since the run" in ln]
        assert len(lines) == 1 and "'era5land'" in lines[0] and str(table) in lines[0]
        again = xr.load_dataset(out / "projections.nc")
        xr.testing.assert_equal(first["soil_temperature"], again["soil_temperature"])

        res = invoke("explain", run, "--n-background", "4", "--n-explained", "2",
                     "--no-progress")
        assert res.exit_code == 0, res.output
        res = invoke("report", run)
        assert res.exit_code == 0, res.output
        html = (run / "report.html").read_text()
        assert "inputs/table.nc, inputs/catalog.yaml" in html
        assert json.loads((run / "inputs" / "inputs.json").read_text())["reanalysis"][
            "sha256"] in html
    finally:
        hidden.rename(original.parent)


def test_resume_reads_the_stored_table_not_the_catalog(demo_run, tmp_path, monkeypatch):
    src_run, data = demo_run
    run = tmp_path / "run"
    shutil.copytree(src_run, run)
    for name in ("COMPLETE", "metrics.json"):
        (run / name).unlink()
    shutil.rmtree(run / "checkpoints" / "gru")  # as if killed before gru's checkpoint

    def no_assembly(*a, **kw):
        raise AssertionError("resume assembled the table again")

    monkeypatch.setattr(assemble, "assemble_table", no_assembly)
    hidden = data.with_name("hidden-for-resume")
    data.rename(hidden)  # the run's catalog folder is gone while it resumes
    try:
        res = invoke("run", *RUN, "--out", run, "--resume")
    finally:
        hidden.rename(data)
    assert res.exit_code == 0, res.output
    assert "(stored with the run; the catalog is not read)" in res.output
    assert (run / "checkpoints" / "gru" / "model.pt").exists() and (run / "COMPLETE").exists()
    ref = json.loads((src_run / "metrics.json").read_text())["models"]["gru"]["overall"]
    got = json.loads((run / "metrics.json").read_text())["models"]["gru"]["overall"]
    assert got == ref  # the same seed on the same table: the same model


def test_a_gridded_table_is_stored_as_chunked_zarr_and_read_lazily(tmp_path, monkeypatch):
    bands = synthetic_table("2001-01", "2006-12", n_bands=5, label="synthetic grid")
    cells = bands.rename({"band": "cell"}).drop_vars(["lat_min", "lat_max"])
    cells = cells.assign_coords(cell=np.arange(5), band=("cell", np.array([0, 1, 1, 3, 5])),
                                lat=("cell", [60.0, 62.0, 62.5, 66.0, 70.0]))
    lazy = cells.chunk({"cell": 3})  # as assemble_table gives it in grid mode (dask)
    monkeypatch.setattr(inputs, "GRID_CHUNK", 2)
    cfg = RunConfig(models=["climatology"], train_years=[2001, 2004], test_years=[2005, 2006])
    out = execute_run(cfg, tmp_path / "grid", table=lazy, progress=False, echo=lambda s: None)
    store = out / "inputs" / "table.zarr"
    assert store.is_dir() and not (out / "inputs" / "table.nc").exists()
    stored = load_run(out).table()
    assert stored["t2m"].chunks == ((72,), (2, 2, 1))  # lazy, in chunks of GRID_CHUNK cells
    xr.testing.assert_identical(stored.load(), cells)
    record = inputs.read_record(out)
    assert record["catalog"] is None and record["reanalysis"] is None  # built in memory


def test_the_content_hash_follows_the_files_not_the_folder(tmp_path, tiny_catalog):
    path = tiny_catalog()
    before = entry_hash(load_catalog(path), "era5land")
    moved = tmp_path / "moved"
    path.parent.rename(moved)
    assert entry_hash(load_catalog(moved / "catalog.yaml"), "era5land") == before
    (moved / "era5" / "extra.nc").write_bytes(b"x")
    after = entry_hash(load_catalog(moved / "catalog.yaml"), "era5land")
    assert after["files"] == 2 and after["sha256"] != before["sha256"]
