"""Projections with a real (tiny) trained run on synthetic tables: values, CF output, skill."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _projection_fixtures import hist_table, scenarios, tiny_run

from permaplug.core import schema
from permaplug.projection import pipeline, skill


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tinyrun"))


@pytest.fixture(scope="module")
def proj(run):
    return pipeline.project(run, hist_table(), scenarios(), 2030, progress=False)


def test_projection_dims_months_and_first_month(run, proj):
    assert proj.dims == ("time", "band", "layer", "scenario", "model")
    assert proj.sizes["time"] == 84 and str(proj["time"].values[0])[:7] == "2024-01"
    assert proj["scenario"].values.tolist() == ["rcp26", "rcp85"]
    # 2024-01 depends on historical months only: identical under both scenarios and equal to
    # the run's own prediction for the month after the historical table.
    direct = run.predict("gru", hist_table(), pd.DatetimeIndex(["2024-01-01"]))
    first = proj.isel(time=0).sel(model="gru")
    np.testing.assert_allclose(first.sel(scenario="rcp26").values,
                               direct.isel(time=0).values, rtol=1e-5)
    np.testing.assert_allclose(first.sel(scenario="rcp85").values,
                               direct.isel(time=0).values, rtol=1e-5)
    # ...and later months see the scenarios' different forcing.
    late = proj.sel(time="2030").sel(model="gru")
    assert np.abs(late.sel(scenario="rcp85") - late.sel(scenario="rcp26")).max() > 1e-4


def test_cf_dataset_round_trips_through_netcdf(proj, tmp_path):
    ds = pipeline.cf_dataset(proj, "test synthetic", "qm", tmp_path, "2023-12", "unit test")
    path = tmp_path / "p.nc"
    ds.to_netcdf(path)
    back = xr.open_dataset(path)
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back.attrs[schema.DATA_LABEL_ATTR] == "test synthetic"
    assert back["soil_temperature"].attrs["standard_name"] == "soil_temperature"
    assert back["soil_temperature"].attrs["units"] == "degC"
    np.testing.assert_allclose(back["depth"].values, schema.LAYER_MIDPOINTS_M)
    np.testing.assert_allclose(back["soil_temperature"].values, proj.values, rtol=1e-6)
    back.close()


def test_skill_table_against_a_known_offset(proj):
    truth = {s: (proj.sel(scenario=s, model="gru", drop=True) + 1.5) for s in ["rcp85"]}
    table = skill.skill_table(proj, truth, "test synthetic")
    assert set(table["scenario"]) == {"rcp85"}
    assert set(table["period"]) == {"2024-2030"}  # 2071-2100 is not projected
    np.testing.assert_allclose(table["rmse_degC"], 1.5, rtol=1e-5)
    np.testing.assert_allclose(table["bias_degC"], -1.5, rtol=1e-5)
    assert table[table.layer == "all"]["n"].item() == 84 * 6 * 4


def test_indicator_frames_and_scenario_difference(proj):
    obs = pipeline.observed_profiles(hist_table())
    per_layer, per_year = pipeline.indicator_frames(obs, proj, "test synthetic")
    assert set(per_year["series"]) == {"observed", "rcp26", "rcp85"}
    assert per_year[per_year.series == "observed"]["year"].tolist()[:1] == [2001]
    # observed annual max of stl1 in band 0, 2001, straight from the table
    want = float(hist_table()["stl1"].sel(time="2001").isel(band=0).max())
    got = per_layer[(per_layer.series == "observed") & (per_layer.year == 2001)
                    & (per_layer.band == 0) & (per_layer.layer == "stl1")]["annual_max_degC"]
    assert got.item() == pytest.approx(want, rel=1e-6)
    diff = pipeline.scenario_difference(proj, ("rcp26", "rcp85"))
    assert pipeline.scenario_difference(proj, ("rcp26", "rcp60")) == {}  # not projected
    d = (proj.sel(scenario="rcp85") - proj.sel(scenario="rcp26")).sel(layer="stl1", model="gru")
    assert diff["gru"]["2024-2030"] == pytest.approx(float(d.mean()), rel=1e-6)
    assert "2071-2100" not in diff["gru"]


def test_gridded_projection_figures_average_cells_per_band(tmp_path):
    from permaplug.projection import figures

    rng = np.random.default_rng(0)
    time = pd.date_range("2024-01-01", periods=24, freq="MS")
    band = np.repeat(np.arange(6), 2)  # two cells per band
    data = rng.normal(size=(24, 12, 4, 2, 1))
    proj = xr.DataArray(data, dims=("time", "cell", "layer", "scenario", "model"),
                        coords={"time": time, "cell": np.arange(12), "band": ("cell", band),
                                "layer": list(schema.TARGETS), "scenario": ["rcp26", "rcp85"],
                                "model": ["gru"]})
    agg = figures.by_band(proj)
    assert agg.sizes["band"] == 6
    np.testing.assert_allclose(agg.isel(band=2).values, data[:, 4:6].mean(axis=1))
    figures.scenario_panels(proj, "gru", "test synthetic", tmp_path / "p.png")
    _, per_year = pipeline.indicator_frames(
        proj.isel(scenario=0, model=0, drop=True).rename("t"), proj, "test synthetic")
    assert "cell" in per_year and "band" in per_year
    figures.thaw_depth_figure(per_year, "gru", "test synthetic", tmp_path / "t.png")
    assert (tmp_path / "p.png").stat().st_size > 10000 and (tmp_path / "t.png").exists()


@pytest.mark.parametrize("n_units", [1, 6])
def test_projection_figures_keep_every_text_inside_the_canvas(tmp_path, monkeypatch, n_units):
    """Figures are saved as laid out (no second, tight-bbox render): the title, legend, axis
    labels and the resolution note must all lie inside the canvas, for one site and six bands."""
    import matplotlib.text

    from permaplug.projection import figures

    real_save, seen = figures._save, []

    def checked_save(fig, path):
        fig.canvas.draw()
        # what bbox_inches="tight" would have cropped to (inches) must fit in the canvas
        tight, w, h = fig.get_tightbbox(fig.canvas.get_renderer()), *fig.get_size_inches()
        slack = 0.02
        assert (tight.x0 >= -slack and tight.y0 >= -slack and tight.x1 <= w + slack
                and tight.y1 <= h + slack), f"{path.name}: {tight} outside 0..{w} x 0..{h}"
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]
        seen.append(" ".join(t.get_text() for t in texts))
        return real_save(fig, path)

    monkeypatch.setattr(figures, "_save", checked_save)
    rng = np.random.default_rng(0)
    time = pd.date_range("2024-01-01", periods=36 * 12, freq="MS")
    proj = xr.DataArray(rng.normal(size=(time.size, n_units, 4, 2, 1)),
                        dims=("time", "band", "layer", "scenario", "model"),
                        coords={"time": time, "band": np.arange(n_units),
                                "layer": list(schema.TARGETS), "scenario": ["rcp26", "rcp85"],
                                "model": ["gru"]})
    figures.scenario_panels(proj, "gru", "test synthetic", tmp_path / "p.png")
    _, per_year = pipeline.indicator_frames(
        proj.isel(scenario=0, model=0, drop=True).rename("t"), proj, "test synthetic")
    figures.thaw_depth_figure(per_year, "gru", "test synthetic", tmp_path / "t.png")
    assert "data: test synthetic" in seen[0] and "rcp85" in seen[0]
    assert "thaw depth: first 0 degC crossing" in seen[1] and "rcp26" in seen[1]
