"""Projection skill measured two ways (model error alone, end-to-end climatology) and the
scenario difference, on synthetic tables and a tiny trained run."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _projection_fixtures import hist_table, scenarios, tiny_run

from permaplug.core import schema
from permaplug.projection import pipeline, skill
from permaplug.projection.truth_forcing import predict_continuations, truth_continuations


def _proj(values: np.ndarray, time: pd.DatetimeIndex, scen=("rcp26", "rcp85"),
          models=("gru",)) -> xr.DataArray:
    """(time, band, layer, scenario, model) from ``values`` of that shape."""
    return xr.DataArray(values, dims=("time", "band", "layer", "scenario", "model"),
                        coords={"time": time.values, "band": np.arange(values.shape[1]),
                                "layer": list(schema.TARGETS), "scenario": list(scen),
                                "model": list(models)})


def test_climatology_rmse_is_zero_for_other_weather_with_the_same_climate():
    """A projection whose years are the truth's years in another order (different weather,
    identical monthly climatology over the period) scores zero end to end, not month by
    month; a uniform +0.7 K shift scores 0.7."""
    rng = np.random.default_rng(3)
    time = pd.date_range("2024-01-01", "2030-12-01", freq="MS")
    season = 10 * np.cos(2 * np.pi * (time.month.values - 7) / 12)
    truth = season[:, None, None] + rng.normal(0, 2, (len(time), 3, 4))
    years = truth.reshape(7, 12, 3, 4)
    shuffled = years[[3, 0, 6, 1, 5, 2, 4]].reshape(truth.shape)
    tru = xr.DataArray(truth, dims=("time", "band", "layer"),
                       coords={"time": time.values, "band": np.arange(3),
                               "layer": list(schema.TARGETS)})
    proj = _proj(np.stack([shuffled, truth + 0.7], axis=-1)[..., None, :],
                 time, scen=("rcp85",), models=("shuffled", "shifted"))
    clim = skill.climatology_table(proj, {"rcp85": tru}, "test synthetic")
    assert set(clim["kind"]) == {"end_to_end_climatology"}
    assert set(clim["period"]) == {"2024-2030"}  # 2071-2100 is not projected
    sh = clim[clim.model == "shuffled"]
    np.testing.assert_allclose(sh["rmse_degC"], 0.0, atol=1e-12)
    np.testing.assert_allclose(clim[clim.model == "shifted"]["rmse_degC"], 0.7, rtol=1e-9)
    np.testing.assert_allclose(clim[clim.model == "shifted"]["bias_degC"], 0.7, rtol=1e-9)
    assert sh[sh.layer == "all"]["n"].item() == 12 * 3 * 4  # 12 calendar months x units x layers
    assert sh[sh.layer == "stl2"]["n"].item() == 12 * 3
    monthly = skill.skill_table(proj, {"rcp85": tru}, "test synthetic")
    assert (monthly[monthly.model == "shuffled"]["rmse_degC"] > 1.0).all()


def test_difference_is_high_minus_low_with_the_truth_next_to_the_models():
    """The pair is (low, high) and the value high minus low: a sign error shows here."""
    time = pd.date_range("2024-01-01", "2030-12-01", freq="MS")
    base = np.zeros((len(time), 2, 4))
    low, high = base, base - 1.0  # the network projects rcp85 1 K *colder*
    proj = _proj(np.stack([low, high], axis=-1)[..., None], time)
    truth = {s: xr.DataArray(base + off, dims=("time", "band", "layer"),
                             coords={"time": time.values, "band": [0, 1],
                                     "layer": list(schema.TARGETS)})
             for s, off in (("rcp26", 0.5), ("rcp85", 2.5))}
    diff = skill.difference_table(proj, truth, ("rcp26", "rcp85"))
    assert list(diff.columns) == ["source", "pair", "period", "layer", "value_degC"]
    assert set(diff["pair"]) == {"rcp85-rcp26"} and set(diff["period"]) == {"2024-2030"}
    assert sorted(diff["layer"].unique()) == list(schema.TARGETS)
    np.testing.assert_allclose(diff[diff.source == "truth"]["value_degC"], 2.0)
    np.testing.assert_allclose(diff[diff.source == "gru"]["value_degC"], -1.0)
    # a pair whose scenario is not projected gives no rows, not an error
    assert skill.difference_table(proj, truth, ("rcp26", "rcp60")).empty


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tinyrun"))


def _truth_sets(shift: dict[str, float]) -> dict[str, xr.Dataset]:
    """Truth 'files' as a source gives them: forcing (not the corrected scenarios' forcing:
    another seed) plus placeholder soil temperatures."""
    forcing = scenarios(end="2030-12-01", seed=7, warming={"rcp26": 0.02, "rcp85": 0.2})
    out = {}
    for s in shift:
        ds = forcing.sel(scenario=s, drop=True)
        for t in schema.TARGETS:
            ds[t] = ds["t2m"] * 0.0
        out[s] = ds
    return out


def test_model_error_rows_use_the_truth_forcing_and_skip_a_truth_without_it(run, tmp_path):
    table = hist_table()
    sets = _truth_sets({"rcp26": 0.0, "rcp85": 0.0})
    sets["rcp26"] = sets["rcp26"].drop_vars("swvl1")  # an old-style truth file
    forced, notes = truth_continuations(run, table, sets, 2030)
    assert list(forced) == ["rcp85"]
    assert len(notes) == 1 and "rcp26" in notes[0] and "swvl1" in notes[0]
    # the truth soil = the network's own prediction on the truth forcing + 0.25 K: the model
    # error is exactly 0.25 K (bias -0.25), whatever the corrected ESM forcing does
    pred = predict_continuations(run, forced, 2030)
    assert pred.dims == ("time", "band", "layer", "scenario", "model")
    truth = {s: pred.sel(scenario="rcp85", model="gru", drop=True) + 0.25
             for s in ("rcp26", "rcp85")}
    corrected = scenarios(end="2030-12-01")
    nc = pipeline.write_projections(run, table, corrected, "qm", 2030, truth, progress=False,
                                    truth_forcing=forced)
    out = nc.parent
    assert (out / "skill.csv").read_text().splitlines()[0] == "# data: test synthetic"
    sk = pd.read_csv(out / "skill.csv", comment="#")
    assert list(sk.columns) == ["model", "scenario", "period", "layer", "kind", "rmse_degC",
                                "bias_degC", "n", "data"]
    err = sk[sk.kind == "model_error"]
    assert set(err["scenario"]) == {"rcp85"}  # rcp26's truth has no forcing: skipped
    assert sorted(err["layer"]) == sorted([*schema.TARGETS, "all"])
    np.testing.assert_allclose(err["rmse_degC"], 0.25, rtol=1e-5)
    np.testing.assert_allclose(err["bias_degC"], -0.25, rtol=1e-5)
    assert err[err.layer == "all"]["n"].item() == 84 * 6 * 4
    clim = sk[sk.kind == "end_to_end_climatology"]
    assert set(clim["scenario"]) == {"rcp26", "rcp85"}
    assert not np.allclose(clim["rmse_degC"], 0.25)  # the ESM-driven projection differs

    lines = (out / "scenario_difference.csv").read_text().splitlines()
    assert lines[0] == "# data: test synthetic"
    assert lines[1] == "source,pair,period,layer,value_degC"
    diff = pd.read_csv(out / "scenario_difference.csv", comment="#")
    assert set(diff["source"]) == {"gru", "truth"} and set(diff["pair"]) == {"rcp85-rcp26"}
    np.testing.assert_allclose(diff[diff.source == "truth"]["value_degC"], 0.0, atol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skill_kinds"] == ["end_to_end_climatology", "model_error"]
    assert summary["scenario_difference"] is True
    stl1 = diff[(diff.source == "gru") & (diff.layer == "stl1")]["value_degC"].item()
    assert summary["rcp85_minus_rcp26_stl1_degC"]["gru"]["2024-2030"] == pytest.approx(stl1,
                                                                                       abs=1e-5)


def test_no_truth_forcing_gives_climatology_rows_only(run):
    table = hist_table()
    sets = {s: ds[["t2m", "tp", *schema.TARGETS]] for s, ds in _truth_sets(
        {"rcp26": 0, "rcp85": 0}).items()}  # a demo v1/v2 truth file
    forced, notes = truth_continuations(run, table, sets, 2030)
    assert forced == {} and len(notes) == 1  # one line for every skipped scenario
    assert notes[0].startswith("note: model-error skill skipped for rcp26, rcp85 (")
    assert "demo data v3" in notes[0]
    proj = pipeline.project(run, table, scenarios(end="2030-12-01"), 2030, progress=False)
    truth = {s: skill.truth_array(ds) for s, ds in sets.items()}
    rows, diff = skill.skill_frames(run, proj, truth, forced, ("rcp26", "rcp85"), 2030, "t")
    assert set(rows["kind"]) == {"end_to_end_climatology"}
    assert len(diff) == 2 * 4  # gru and truth, one period, four layers
