"""CMIP6 end to end (issue 15, item 1): a catalog of CMIP6-named files (SSP scenarios) goes
through ``correct --report``, ``run`` (train, project, explain, report), ``project`` and
``report`` with the SSP names in every output and no RCP name assumed anywhere.

Fixture: the small demo build's CMIP5-format DRS NetCDF (the real IPSL-CM5A-MR Alaska tas/pr
spread over the model grid, other variables derived) renamed to CMIP6 DRS names
(``<var>_<table>_<model>_ssp585_r1i1p1f1_gr_<span>.nc``); its truth entries are renamed the same
way. Files are hard links (or copies) in a new folder: the session's demo stays untouched.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

from permaplug.cli import cli

RCP_TO_SSP = {"rcp26": "ssp126", "rcp45": "ssp245", "rcp60": "ssp370", "rcp85": "ssp585"}


def _link_tree(src: Path, dst: Path) -> None:
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)


def cmip6_catalog(demo_catalog: Path, dest: Path, metadata: dict | None = None) -> Path:
    """A copy of the demo catalog whose scenario files carry CMIP6 DRS names and SSP
    scenarios; ``metadata`` is added to the scenario entry's metadata."""
    _link_tree(demo_catalog.parent, dest)
    cmip5 = dest / "cmip5"
    cmip6 = dest / "cmip6"
    cmip6.mkdir()
    drs = re.compile(r"^(\w+?)_(\w+?)_([\w-]+?)_(historical|rcp\d\d)_(r\di\dp\d)(_.*)?\.nc$")
    for f in sorted(cmip5.iterdir()):
        m = drs.match(f.name)
        assert m, f.name
        var, table, model, exp, member, span = m.groups()
        exp = RCP_TO_SSP.get(exp, exp)
        f.rename(cmip6 / f"{var}_{table}_{model}_{exp}_{member}f1_gr{span or ''}.nc")
    cmip5.rmdir()
    for f in (dest / "truth").iterdir():
        new = f.name
        for a, b in RCP_TO_SSP.items():
            new = new.replace(a, b)
        f.rename(f.with_name(new))
    text = (dest / "catalog.yaml").read_text(encoding="utf-8").replace("/cmip5", "/cmip6")
    for a, b in RCP_TO_SSP.items():
        text = text.replace(a, b)
    raw = yaml.safe_load(text)
    scen = next(e for e in raw["entries"].values() if e["metadata"]["role"] == "scenario")
    scen["kwargs"]["options"]["member"] = "r1i1p1f1"
    scen["metadata"].update(metadata or {})
    (dest / "catalog.yaml").unlink()  # a hard link to the demo's catalog: never write through
    (dest / "catalog.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    assert not re.search(r"rcp\d\d", (dest / "catalog.yaml").read_text(encoding="utf-8"))
    return dest / "catalog.yaml"


def invoke(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def cmip6(demo_catalog, tmp_path_factory) -> Path:
    return cmip6_catalog(demo_catalog, tmp_path_factory.mktemp("cmip6") / "data")


def test_correct_report_with_ssp_names(cmip6, tmp_path):
    res = invoke("correct", "--catalog", cmip6, "--report", "--out", tmp_path / "c")
    assert res.exit_code == 0, res.output
    assert "(historical + ssp585)" in res.output  # default: the highest forcing
    assert "Spread mean(ssp585) - mean(ssp126)" in res.output
    spread = pd.read_csv(tmp_path / "c" / "spread.csv", comment="#")
    assert len(spread) and spread.filter(like="raw").notna().all().all()
    ds = xr.open_dataset(tmp_path / "c" / "corrected.nc")
    assert list(ds["scenario"].values) == ["ssp126", "ssp245", "ssp370", "ssp585"]
    assert ds.attrs["bias_correction_continuation"] == "ssp585"
    ds.close()
    # options choose the continuation and the pair; a name the data lack is one line, exit 1
    res = invoke("correct", "--catalog", cmip6, "--report", "--out", tmp_path / "d",
                 "--continuation", "ssp245", "--scenario-pair", "ssp245,ssp370")
    assert res.exit_code == 0, res.output
    assert "(historical + ssp245)" in res.output and "mean(ssp370) - mean(ssp245)" in res.output
    res = invoke("correct", "--catalog", cmip6, "--out", tmp_path / "e",
                 "--continuation", "rcp85")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "Error: continuation scenario 'rcp85' (--continuation) not in the scenario data " \
           "(have ssp126, ssp245, ssp370, ssp585)" in res.output


def test_catalog_metadata_sets_continuation_and_pair(demo_catalog, tmp_path):
    cat = cmip6_catalog(demo_catalog, tmp_path / "data",
                        {"continuation": "ssp370", "scenario_pair": ["ssp245", "ssp585"]})
    res = invoke("correct", "--catalog", cat, "--report", "--out", tmp_path / "c")
    assert res.exit_code == 0, res.output
    assert "(historical + ssp370)" in res.output and "mean(ssp585) - mean(ssp245)" in res.output


def test_run_project_explain_report_end_to_end(cmip6, tmp_path):
    out = tmp_path / "run"
    res = invoke("run", "--catalog", cmip6, "--model", "gru", "--hparam", "hidden_size=8",
                 "--epochs", "1", "--end", "2026", "--quiet", "--out", out)
    assert res.exit_code == 0, res.output
    assert (out / "COMPLETE").exists()
    proj = out / "projections" / "qm-2026"
    ds = xr.open_dataset(proj / "projections.nc")
    assert list(ds["scenario"].values) == ["ssp126", "ssp245", "ssp370", "ssp585"]
    assert bool(ds["soil_temperature"].notnull().all())
    ds.close()
    summary = json.loads((proj / "summary.json").read_text())
    assert summary["continuation"] == "ssp585"
    assert summary["scenario_pair"] == ["ssp126", "ssp585"]
    assert summary["difference_key"] == "ssp585_minus_ssp126_stl1_degC"
    assert np.isfinite(summary["ssp585_minus_ssp126_stl1_degC"]["gru"]["all"])
    assert "truth_ssp585_minus_ssp126_stl1_degC" in summary  # the renamed truth entries
    assert not [k for k in summary if "rcp" in k]
    assert (out / "explanations").is_dir()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "ssp585 - ssp126 stl1" in html

    # project again: a subset of SSPs with a chosen pair, then the report of the run
    res = invoke("project", out, "--scenarios", "ssp126,ssp585", "--end", "2025",
                 "--scenario-pair", "ssp126,ssp585", "--continuation", "ssp245", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "ssp585 - ssp126, layer 1 (degC)" in res.output
    sub = json.loads((out / "projections" / "qm-2025" / "summary.json").read_text())
    assert sub["scenarios"] == ["ssp126", "ssp585"] and sub["continuation"] == "ssp245"
    res = invoke("project", out, "--scenarios", "ssp126,ssp585", "--end", "2025",
                 "--scenario-pair", "ssp126,ssp370")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "ssp370 not in the scenario data" in res.output
    res = invoke("report", out, "--out", tmp_path / "r.html")
    assert res.exit_code == 0, res.output
