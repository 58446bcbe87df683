"""Extrapolation guard on a real (tiny) run: shares outside the training range, distances in
training standard deviations, the CSV, the summary and the one-line warning."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _projection_fixtures import hist_table, scenarios, tiny_run

from permaplug.data import features as F
from permaplug.projection import extrapolation, pipeline, scenario_inputs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tinyrun"))


def _replayed(hist: xr.Dataset, names: list[str], offset: dict[str, float] | None = None
              ) -> xr.Dataset:
    """A one-scenario 'corrected' dataset for 2024-2030 that replays the training years'
    (2015-2018) values of ``names``, plus ``offset`` per variable: in range unless offset."""
    src = hist[names].sel(time=slice("2015-01-01", "2018-12-01"))
    months = pd.date_range("2024-01-01", "2030-12-01", freq="MS")
    reps = np.resize(np.arange(src.sizes["time"]), len(months))
    out = src.isel(time=reps).assign_coords(time=months.values)
    for name, add in (offset or {}).items():
        out[name] = out[name] + add
    out = out.expand_dims(scenario=["hot"])
    out.attrs = dict(hist.attrs)
    return out


def _frame(run, hist: xr.Dataset, corrected: xr.Dataset) -> pd.DataFrame:
    per = scenario_inputs.scenario_arrays(run, hist, corrected, 2030)
    return extrapolation.extrapolation_frame(run, hist, per)


def test_scenario_arrays_cover_every_projected_window(run):
    per = scenario_inputs.scenario_arrays(run, hist_table(), scenarios(), 2030)
    arrays = per["rcp85"]
    # first input month of the 2024-01 window .. the last target month
    assert str(arrays.time[0])[:7] == "2022-01" and str(arrays.time[-1])[:7] == "2030-12"
    assert arrays.dynamic_names == tuple(run.normaliser.dynamic_names)
    i = arrays.dynamic_names.index("year")
    assert arrays.dynamic[0, -2, i] == 2030.0


def test_year_is_flagged_with_its_distance_in_training_sd(run):
    hist = hist_table()
    frame = _frame(run, hist, scenarios())
    assert set(frame["scenario"]) == {"rcp26", "rcp85"}
    norm = run.normaliser
    assert set(frame["feature"]) == set(norm.dynamic_names) | set(norm.static_names)
    year = frame[(frame.feature == "year") & (frame.scenario == "rcp85")].iloc[0]
    # inputs of the projected windows after 2023-12: 2024-01 .. 2030-11, every one beyond the
    # training years 2015-2018
    i = norm.dynamic_names.index("year")
    want = (2030 - norm.dynamic_mean[i]) / norm.dynamic_std[i]
    assert year.max_sd == pytest.approx(want, rel=1e-5)
    assert year.share_outside == 1.0
    assert year.train_min == 2015 and year.train_max == 2018
    # month_sin never leaves its range; static features are the training units' own values
    msin = frame[(frame.feature == "month_sin")]
    assert (msin["share_outside"] == 0).all() and (msin["max_sd"] < 2).all()
    stat = frame[frame.kind == "static"]
    assert len(stat) and (stat["share_outside"] == 0).all()
    worst = extrapolation.flagged(frame)
    assert worst.iloc[0]["feature"] == "year"


def test_replayed_training_inputs_are_inside_and_an_offset_is_flagged(run):
    hist = hist_table()
    needed = pipeline.scenario_variables(run.normaliser.dynamic_names)
    inside = _frame(run, hist, _replayed(hist, needed))
    forcing = inside[inside.feature.isin(needed)]
    assert len(forcing) == len(needed) and (forcing["share_outside"] == 0).all()
    name = next(n for n in F.PAPER_FORCING if n in needed)
    i = run.normaliser.dynamic_names.index(name)
    sd = run.normaliser.dynamic_std[i]
    # shifted by 5 training SD: every value but the coldest part of the range is outside
    hot = _frame(run, hist, _replayed(hist, needed, {name: 5 * sd}))
    row = hot[hot.feature == name].iloc[0]
    assert row.share_outside > 0.5
    assert row.max_sd > 5
    text = extrapolation.warning_text(hot)
    assert text is not None and f"{name} " in text and "year" in text
    assert "\n" not in text


def test_warning_names_the_worst_features_in_order():
    frame = pd.DataFrame([
        {"scenario": "a26", "feature": "year", "share_outside": 1.0, "max_sd": 17.4},
        {"scenario": "b85", "feature": "year", "share_outside": 1.0, "max_sd": 17.4},
        {"scenario": "b85", "feature": "tp", "share_outside": 0.003, "max_sd": 8.1},
        {"scenario": "b85", "feature": "z", "share_outside": 0.37, "max_sd": 16.0},
        {"scenario": "a26", "feature": "z", "share_outside": 0.1, "max_sd": 4.0}])
    text = extrapolation.warning_text(frame)
    assert text.index("year 17.4 SD") < text.index("z 16.0 SD (b85, 37 % outside)") < text.index(
        "tp 8.1 SD (b85, <1 % outside)")
    assert text.count("year") == 1 and text.count(" z ") == 1
    assert extrapolation.warning_text(frame, shown=1).endswith(
        "and 2 more; the networks extrapolate there")


def test_nothing_flagged_gives_no_warning():
    frame = pd.DataFrame([{"scenario": "a", "feature": "t2m", "share_outside": 0.0,
                           "max_sd": 4.0},  # far but inside the range: not extrapolation
                          {"scenario": "a", "feature": "tp", "share_outside": 0.2,
                           "max_sd": 2.5}])
    assert extrapolation.flagged(frame).empty
    assert extrapolation.warning_text(frame) is None
    assert extrapolation.summary(frame)["flagged"] == []


def test_write_projections_writes_the_table_the_inputs_and_the_summary(run, tmp_path):
    hist = hist_table()
    scen = scenarios()
    nc = pipeline.write_projections(run, hist, scen, "qm", 2030, None, progress=False)
    out = nc.parent
    lines = (out / "extrapolation.csv").read_text().splitlines()
    assert lines[0] == "# data: test synthetic"
    table = extrapolation.read_table(out)
    assert list(table.columns[:6]) == ["scenario", "feature", "kind", "units", "share_outside",
                                       "max_sd"]
    assert set(table["data"]) == {"test synthetic"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["extrapolation"]["flagged"][0]["feature"] == "year"
    line = extrapolation.warning_line(out)
    assert line.startswith("warning: ") and "year" in line and "extrapolation.csv" in line
    # the stored model inputs give back the very predictions of the projection
    from permaplug.training.model_inputs import load_model_inputs
    from permaplug.training.predict import predict_windows
    from permaplug.training.windows import target_windows

    per, attrs = load_model_inputs(out / scenario_inputs.FILE)
    assert sorted(per) == ["rcp26", "rcp85"] and attrs["historical_end"] == "2023-12"
    arrays = per["rcp85"]
    assert arrays.data_label == "test synthetic"
    months = pd.DatetimeIndex(["2024-01-01", "2030-12-01"])
    index = target_windows(arrays, months, run.normaliser.window)
    pred = predict_windows(run.load_model("gru"), arrays, run.normaliser, index)
    proj = xr.open_dataset(nc)["soil_temperature"].sel(scenario="rcp85", model="gru")
    want = proj.sel(time=months.values).values.reshape(pred.shape)
    np.testing.assert_allclose(pred, want, rtol=1e-5, atol=1e-5)
