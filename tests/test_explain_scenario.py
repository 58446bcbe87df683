"""SHAP on scenario windows: the highest scenario's last projected decade, from the model inputs
stored by the projection step, next to the test windows."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _projection_fixtures import hist_table, scenarios, tiny_run

from permaplug.core.errors import ConfigError
from permaplug.explain import scenario as sw
from permaplug.explain.pipeline import explain_run, side_by_side
from permaplug.projection.pipeline import write_projections


@pytest.fixture(scope="module")
def projected(tmp_path_factory):
    """A copy of the tiny run with one projection to 2030 (scenarios rcp26, rcp85)."""
    run = tiny_run(tmp_path_factory.mktemp("tinyrun"))
    root = tmp_path_factory.mktemp("scenario-explain") / "run"
    shutil.copytree(run.path, root, ignore=shutil.ignore_patterns("projections", "explanations"))
    from permaplug.training.runs import load_run

    copy = load_run(root)
    write_projections(copy, hist_table(start="2013-01-01"), scenarios(), "qm", 2030, None,
                      progress=False)
    return root


def test_scenario_windows_are_explained_next_to_the_test_windows(projected):
    out = explain_run(projected, n_background=20, n_explained=6, options={"nsamples": 30},
                      progress=False)
    doc = json.loads((out / "additivity.json").read_text())
    scen = doc["scenario_windows"]
    # the high end of the pair; the decade clipped to the projected years
    assert scen["scenario"] == "rcp85" and scen["years"] == [2024, 2030]
    assert scen["projection"] == "qm-2030" and scen["n_explained"] == 6
    assert scen["data"] == "test synthetic" and "gru" in scen["models"]
    att = xr.open_dataset(out / "scenario_attributions_gru.nc")
    months = pd.DatetimeIndex(att["target_month"].values)
    assert (months.year >= 2024).all() and (months.year <= 2030).all()
    assert len(set(att["unit"].values.tolist())) == 6  # every band explained
    # the explained windows are the projection's own: same predictions, month by month
    proj = xr.open_dataset(projected / "projections" / "qm-2030" / "projections.nc")
    want = [proj["soil_temperature"].sel(time=m, band=u, scenario="rcp85", model="gru").values
            for m, u in zip(att["target_month"].values, att["unit"].values, strict=True)]
    np.testing.assert_allclose(att["prediction"].values, np.stack(want), rtol=1e-4, atol=1e-4)
    proj.close()
    att.close()
    test = pd.read_csv(out / "scores.csv", comment="#")
    scen_scores = pd.read_csv(out / "scenario_scores.csv", comment="#")
    assert set(scen_scores["scenario"]) == {"rcp85"} and set(scen_scores["years"]) == {
        "2024-2030"}
    both = pd.read_csv(out / "rankings.csv", comment="#")
    first = both[(both.model == "gru") & (both["rank"] == 1)].iloc[0]
    assert first.test_feature == test[test["rank"] == 1]["feature"].item()
    assert first.scenario_feature == scen_scores[scen_scores["rank"] == 1]["feature"].item()
    assert (out / "scenario_shap_gru.png").stat().st_size > 5000


def test_no_projection_skips_the_scenario_ranking_with_a_note(projected, tmp_path):
    bare = tmp_path / "run"
    shutil.copytree(projected, bare, ignore=shutil.ignore_patterns("projections",
                                                                   "explanations"))
    out = explain_run(bare, n_background=10, n_explained=3, options={"nsamples": 20},
                      progress=False)
    doc = json.loads((out / "additivity.json").read_text())
    assert "permaplug project" in doc["scenario_windows"]["skipped"]
    assert not (out / "rankings.csv").exists() and not list(out.glob("scenario_*"))
    from permaplug.report.html import write_report

    html = write_report([bare], tmp_path / "r.html").read_text()
    assert "Scenario windows not explained" in html


def test_highest_scenario_from_the_pair_else_the_forcing_label(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"scenario_pair": ["b45", "a60"]}))
    assert sw.highest_scenario(["a60", "b45", "c85"], tmp_path) == "a60"  # the pair wins
    (tmp_path / "summary.json").write_text(json.dumps({"scenario_pair": None}))
    assert sw.highest_scenario(["x585", "y126", "z245"], tmp_path) == "x585"


def test_an_unknown_projection_name_is_refused(projected):
    assert sw.find_projection(projected).name == "qm-2030"
    with pytest.raises(ConfigError, match="--projection qdm-2100: .*have: qm-2030"):
        explain_run(projected, projection="qdm-2100", progress=False)


def test_side_by_side_pairs_ranks():
    test = pd.DataFrame({"model": ["m"] * 3, "feature": ["a", "b", "c"], "score": [3., 2., 1.],
                         "rank": [1, 2, 3]})
    scen = pd.DataFrame({"model": ["m"] * 3, "feature": ["c", "a", "b"], "score": [5., 1., .5],
                         "rank": [1, 2, 3]})
    both = side_by_side(test, scen)
    assert both["test_feature"].tolist() == ["a", "b", "c"]
    assert both["scenario_feature"].tolist() == ["c", "a", "b"]
    assert both["scenario_score"].tolist() == [5.0, 1.0, 0.5]


def test_explain_command_prints_the_scenario_line_or_the_note(projected, tmp_path):
    from click.testing import CliRunner

    from permaplug.cli import cli

    args = ["--n-background", "10", "--n-explained", "3", "--nsamples", "20", "--no-progress"]
    res = CliRunner().invoke(cli, ["explain", str(projected), *args])
    assert res.exit_code == 0, res.output
    assert "scenario windows (rcp85 2024-2030 of projection qm-2030, 3 explained" in res.output
    both = pd.read_csv(projected / "explanations" / "shap" / "rankings.csv", comment="#")
    top = both[both["rank"] == 1].iloc[0]
    assert (f"    1. {top.test_feature} {top.test_score:.3f} | {top.scenario_feature} "
            f"{top.scenario_score:.3f}") in res.output
    bare = tmp_path / "bare"
    shutil.copytree(projected, bare, ignore=shutil.ignore_patterns("projections",
                                                                   "explanations"))
    res = CliRunner().invoke(cli, ["explain", str(bare), *args])
    assert res.exit_code == 0, res.output
    assert "note: scenario windows not explained: no projection" in res.output
    res = CliRunner().invoke(cli, ["explain", str(projected), "--projection", "nope"])
    assert res.exit_code == 1 and "Error: --projection nope" in res.output
    assert "Traceback" not in res.output


def test_a_damaged_scenario_inputs_file_is_one_data_error(projected, tmp_path):
    from permaplug.core.errors import DataError

    copy = tmp_path / "run"
    shutil.copytree(projected, copy, ignore=shutil.ignore_patterns("explanations"))
    (copy / "projections" / "qm-2030" / "scenario_inputs.nc").write_bytes(b"not netcdf")
    with pytest.raises(DataError, match="scenario_inputs.nc: not a permaplug scenario-inputs"):
        explain_run(copy, n_background=10, n_explained=3, options={"nsamples": 20},
                    progress=False)
