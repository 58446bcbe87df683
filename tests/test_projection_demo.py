"""End to end on a small demo build: run -> project (with skill against the emulator truth)
-> explain -> report. Slow (builds the demo data and trains a network)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema


@pytest.mark.slow
def test_demo_run_projects_four_rcps_with_skill_indicators_shap_and_report(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path / "cache"))
    from permaplug.demo import build_demo
    from permaplug.explain.pipeline import explain_run
    from permaplug.projection.pipeline import project_run
    from permaplug.report.html import write_report
    from permaplug.training.config import RunConfig
    from permaplug.training.runs import execute_run

    catalog = build_demo(tmp_path / "demo", seed=0, n_cells=120, progress=False,
                         steps_per_month=1)
    cfg = RunConfig(source="era5land", catalog=str(catalog), models=["gru"], epochs=2,
                    hparams={"gru": {"hidden_size": 16, "num_layers": 1}})
    run_dir = execute_run(cfg, tmp_path / "run", progress=False, echo=lambda _m: None)

    lines: list[str] = []
    nc = project_run(run_dir, None, None, corrector="qm", end=2030, progress=False,
                     echo=lines.append)
    # trained on 2001-2018, `year` is about 4 training SD out by 2030: one warning line
    warnings = [m for m in lines if m.startswith("warning: projection inputs")]
    assert len(warnings) == 1 and "year " in warnings[0]
    ds = xr.open_dataset(nc)
    assert ds.attrs[schema.DATA_LABEL_ATTR] == "demo emulator"
    assert ds["scenario"].values.tolist() == ["rcp26", "rcp45", "rcp60", "rcp85"]
    first = ds["soil_temperature"].isel(time=0).sel(model="gru")
    # 2024-01 only sees historical months: the same under every scenario
    np.testing.assert_allclose(first.max("scenario"), first.min("scenario"), atol=1e-5)
    assert np.isfinite(ds["soil_temperature"].values).all()
    ds.close()
    out = nc.parent
    skill = pd.read_csv(out / "skill.csv", comment="#")
    pooled = skill[skill.layer == "all"]
    for kind in ("model_error", "end_to_end_climatology"):  # demo v3 truth carries the forcing
        assert sorted(pooled[pooled.kind == kind]["scenario"]) == ["rcp26", "rcp45", "rcp60",
                                                                   "rcp85"]
    assert ((pooled["rmse_degC"] > 0) & (pooled["rmse_degC"] < 20)).all()
    diff = pd.read_csv(out / "scenario_difference.csv", comment="#")
    assert set(diff["source"]) == {"gru", "truth"} and set(diff["pair"]) == {"rcp85-rcp26"}
    years = pd.read_csv(out / "indicators_years.csv", comment="#")
    assert set(years["series"]) == {"observed", "rcp26", "rcp45", "rcp60", "rcp85"}
    summary = json.loads((out / "summary.json").read_text())
    assert "2024-2030" in summary["rcp85_minus_rcp26_stl1_degC"]["gru"]
    assert summary["continuation"] == "rcp85" and summary["scenario_pair"] == ["rcp26", "rcp85"]

    ordered = project_run(run_dir, None, ["rcp26", "rcp85"], corrector="qm", end=2026,
                          progress=False, corrector_options={"preserve_order": True})
    assert ordered.parent.name == "qm+preserve_order=True-2026"
    assert json.loads((ordered.parent / "summary.json").read_text())["corrector"] == \
        "qm+preserve_order=True"

    exp = explain_run(run_dir, n_background=30, n_explained=6, options={"nsamples": 50},
                      progress=False)
    gap = json.loads((exp / "additivity.json").read_text())["models"]["gru"]
    assert gap["relative_gap"] < 0.5
    html = write_report([run_dir], tmp_path / "report.html").read_text()
    assert "data: demo emulator" in html and "Model error alone" in html
    assert "These are emulator results (data: demo emulator)" in html
