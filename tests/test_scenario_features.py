"""Features a scenario source can supply (issue 15, item 2): a run trained on what a
tas/pr-only climate model gives (the real IPSL-CM5A-MR Alaska box tables) projects with it --
the correction and the projection continue only the variables the run's networks use."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import xarray as xr
import yaml
from click.testing import CliRunner

from permaplug.cli import cli

TASPR_ONLY = ["--drop-feature", "skt", "--drop-feature", "sf", "--drop-feature", "strd",
              "--drop-feature", "ssrd", "--drop-feature", "slhf", "--drop-feature", "sshf",
              *[a for i in range(1, 5) for a in ("--drop-feature", f"swvl{i}")], "--no-z"]


def taspr_catalog(demo_catalog: Path, dest: Path) -> Path:
    """The demo's reanalysis and static entries with the real IPSL tas/pr box tables as the
    scenario entry (files hard-linked, or copied, into ``dest``)."""
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(demo_catalog.parent, dest, copy_function=link,
                    ignore=shutil.ignore_patterns("cmip5", "truth"))
    raw = yaml.safe_load((dest / "catalog.yaml").read_text(encoding="utf-8"))
    entries = {k: e for k, e in raw["entries"].items()
               if e["metadata"]["role"] in ("reanalysis", "static")}
    entries["ipsl-box"] = {
        "reader": "permaplug.core.catalog:PermaplugReader",
        "kwargs": {"plugin": "cmip", "options": {
            "paths": "{PERMAPLUG_RESOURCES}/real/cmip5_alaska_box", "format": "region-table",
            "model": "IPSL-CM5A-MR", "run": "run1"}},
        "metadata": {"role": "scenario", "data_label": "CMIP5 IPSL-CM5A-MR Alaska box (real)"},
    }
    raw["entries"] = entries
    (dest / "catalog.yaml").unlink()  # a hard link to the demo's: never write through it
    (dest / "catalog.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return dest / "catalog.yaml"


def test_a_taspr_run_projects_with_a_taspr_model(demo_catalog, tmp_path):
    cat = taspr_catalog(demo_catalog, tmp_path / "data")
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(cat), "--model", "gru", "--hparam",
                                   "hidden_size=8", "--epochs", "1", *TASPR_ONLY, "--end", "2026",
                                   "--no-explain", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "projections" / "qm-2026" / "summary.json").read_text())
    assert summary["scenarios"] == ["rcp26", "rcp45", "rcp60", "rcp85"]
    ds = xr.open_dataset(out / "projections" / "qm-2026" / "projections.nc")
    assert bool(ds["soil_temperature"].notnull().all())
    ds.close()
    assert (out / "COMPLETE").exists()


def test_the_paper_recipe_with_a_taspr_model_stops_before_training(demo_catalog, tmp_path):
    cat = taspr_catalog(demo_catalog, tmp_path / "data")
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(cat), "--model", "gru", "--epochs",
                                   "1", "--quiet", "--out", str(out)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    [line] = [x for x in res.output.splitlines() if x.startswith("Error:")]
    assert "the run cannot be projected: scenario entry 'ipsl-box' (cmip) supplies t2m, tp, " \
           "but the run's inputs need skt, sf, strd, ssrd, slhf, sshf, swvl1, swvl2, swvl3, " \
           "swvl4 from it" in line
    assert "--drop-feature skt" in line and "--no-z" in line and "--no-project" in line
    assert "--features t2m,tp,year,month_sin,month_cos," in line
    assert not (out / "metrics.json").exists()  # stopped before training


def test_supplied_variables_come_from_declarations_not_data(demo_catalog, tmp_path,
                                                            monkeypatch):
    from permaplug.core.catalog import PermaplugCatalog, load_catalog
    from permaplug.projection.supply import supplied

    def no_reading(*_a, **_k):
        raise AssertionError("the scenario data were read")

    monkeypatch.setattr(PermaplugCatalog, "open", no_reading)
    box = load_catalog(taspr_catalog(demo_catalog, tmp_path / "data"))
    assert supplied(box, "ipsl-box") == {"t2m", "tp"}
    demo = load_catalog(demo_catalog)
    name = demo.find(role="scenario")
    assert supplied(demo, name) >= {"t2m", "skt", "tp", "sf", "strd", "ssrd", "slhf", "sshf",
                                     "swvl1", "swvl2", "swvl3", "swvl4"}


def test_scenario_variables_follow_the_feature_plugins_inputs():
    from permaplug.projection.tables import scenario_variables

    # z is a feature plugin whose declared input is strd; calendar features need nothing
    assert scenario_variables(["t2m", "year", "month_sin", "z"]) == ["t2m", "strd"]
    assert scenario_variables(["year", "month_cos"]) == []
