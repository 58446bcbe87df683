"""The demo's real forcing, emulated statics and determinism (issue 4, items 2, 5, 6)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.demo import emulator as E
from permaplug.demo import forcing as F
from permaplug.demo import heat
from permaplug.demo import surface as S
from permaplug.demo.cache import DEMO_VERSION
from permaplug.demo.grid import demo_grid
from permaplug.demo.params import EmulatorParams, params_for
from permaplug.demo.simulate import snow_density
from permaplug.demo.soil import StaticFields, soil_from_statics, static_fields

RCPS = ("rcp26", "rcp45", "rcp60", "rcp85")
"""The demo's scenarios: those of the real CMIP5 box tables it is built from."""


@pytest.fixture(scope="module")
def points():
    return F.read_era5_points()


@pytest.fixture(scope="module")
def grid():
    return demo_grid(1.0)


def test_gradient_measured_from_the_real_points(points):
    grad = F.measure_gradients(points)
    assert points.sizes["point"] == 14 and points.sizes["time"] == 84 * 12
    assert np.all(grad.t2m < 0)  # colder northward in every month
    assert grad.t2m[[0, 1, 2]].mean() < grad.t2m[[5, 6, 7]].mean()  # steepest in winter
    assert -3.0 < grad.t2m.mean() < -0.3 and 64 < grad.lat0 < 69


def test_cells_follow_the_points_of_their_band(points, grid):
    forcing, _ = F.reanalysis_forcing(grid.cell_lat, grid.cell_lon, seed=0, points=points)
    band_of_point = schema.band_of_latitude(points["lat"].values)
    assert set(band_of_point) == {2, 3, 4, 5}
    for b in (2, 3, 4, 5):
        mean = points["t2m"].isel(point=np.flatnonzero(band_of_point == b)).mean("point").values
        cells = forcing.t2m[:, grid.band == b]
        anomaly = cells - cells.mean(axis=0)
        ref = mean - mean.mean()
        r = [np.corrcoef(anomaly[:, i], ref)[0, 1] for i in range(cells.shape[1])]
        assert min(r) > 0.99
    # bands 0-1 are extrapolated southward: warmer than band 2 in winter
    jan = forcing.time.month == 1
    assert forcing.t2m[jan][:, grid.band == 0].mean() > forcing.t2m[jan][:, grid.band == 2].mean()
    assert np.all(forcing.tp >= 0) and np.all(forcing.d2m <= forcing.t2m + 1e-9)


def test_ipsl_box_series_are_the_real_model(tmp_path):
    box = F.ipsl_box_series()
    assert len(box["historical"]) == 1872
    assert box["historical"].index[0] == pd.Timestamp("1850-01-01")
    raw = pd.read_csv(F.real_dir() / "cmip5_alaska_box" /
                      "timeSeriesLO_tas_Alaska_Monthly_rcp85.csv", skiprows=3, header=None)
    np.testing.assert_allclose(box["rcp85"]["tas"].iloc[:12].values, raw[2].iloc[:12] - 273.15)
    for s in RCPS:
        assert box[s].index[-1] == pd.Timestamp("2100-12-01") and len(box[s]) == 95 * 12
    dT = {s: F.scenario_change(box, s, range(2081, 2101))[0].mean() for s in RCPS}
    assert dT["rcp26"] < dT["rcp45"] < dT["rcp85"] and dT["rcp85"] - dT["rcp26"] > 3


def test_scenario_forcing_adds_the_model_change_to_observed_weather(points, grid):
    obs, _ = F.reanalysis_forcing(grid.cell_lat, grid.cell_lon, seed=0, points=points)
    box = F.ipsl_box_series()
    f85 = F.scenario_forcing(obs, box, "rcp85", 2024, 2100)
    f26 = F.scenario_forcing(obs, box, "rcp26", 2024, 2100)
    assert len(f85.time) == 77 * 12 and f85.t2m.shape == (924, grid.ncell)
    late = f85.time.year >= 2081
    change = {s: F.scenario_change(box, s, range(2081, 2101))[0].mean() for s in ("rcp26", "rcp85")}
    assert f85.t2m[late].mean() - f26.t2m[late].mean() == pytest.approx(
        change["rcp85"] - change["rcp26"], abs=0.05)
    # the weather is the observed one: same cycled anomalies under every scenario
    diff = f85.t2m[:12] - f26.t2m[:12]
    np.testing.assert_allclose(diff, np.broadcast_to(diff[:, :1], diff.shape), atol=1e-12)
    # continuity: the first scenario decade sits near the observed 2014-2023 climate
    recent = obs.sel("2014-01", "2023-12").t2m.mean()
    assert abs(f85.t2m[f85.time.year <= 2033].mean() - recent) < 1.0
    ratio = f85.tp[late].mean() / obs.sel("2001-01", "2023-12").tp.mean()
    assert 1.0 < ratio < 1.6
    assert np.all(f85.d2m <= f85.t2m + 1e-9)


def test_statics_feed_the_physics(grid):
    fields = static_fields(grid.cell_lat, grid.cell_lon, seed=0)
    np.testing.assert_allclose(fields.lith.sum(axis=0), 1.0)
    assert np.all(fields.soc[0] >= fields.soc[-1]) and np.all(fields.bdod[0] <= fields.bdod[-1])
    assert np.all(fields.bdod % 10 == 0) and np.all(fields.soc % 5 == 0)  # OpenLandMap units
    mineral = EmulatorParams()  # no moss layer on top (demo v1): the statics' own physics
    soil = soil_from_statics(fields, mineral)
    col = soil.column
    assert np.all(col.k_frozen > col.k_thawed)  # ice conducts better than water
    # the current version's moss/peat layer replaces the top volumes only
    org = soil_from_statics(fields).column
    below = heat.FACES[:-1] >= params_for(DEMO_VERSION).organic_thickness
    np.testing.assert_allclose(org.k_frozen[below], col.k_frozen[below], rtol=1e-12)
    assert not np.allclose(org.k_frozen[~below], col.k_frozen[~below])
    assert np.all(soil.theta <= soil.porosity)
    # two columns alike but for organic carbon: the peat is more porous, wetter, insulates
    # better when thawed, freezes over a wider range and damps the summer surface
    two = StaticFields(lith=np.repeat(fields.lith[:, :1], 2, axis=1),
                       bdod=np.array([[300.0, 1200.0]] * 6), soc=np.array([[400.0, 10.0]] * 6),
                       wetness=np.zeros(2))
    s2 = soil_from_statics(two, mineral)
    assert s2.porosity[0, 0] > s2.porosity[0, 1] and s2.theta[0, 0] > s2.theta[0, 1]
    assert s2.column.k_thawed[0, 0] < s2.column.k_thawed[0, 1]
    assert s2.column.width[0, 0] > s2.column.width[0, 1] and s2.n_thaw[0] < s2.n_thaw[1]
    # lithology matters too: metamorphic rock conducts better than volcanic
    rock = StaticFields(lith=np.eye(9)[:, [schema.LITHOLOGY_CLASSES.index("metamorphic"),
                                           schema.LITHOLOGY_CLASSES.index("volcanic")]],
                        bdod=np.full((6, 2), 1400.0), soc=np.full((6, 2), 10.0),
                        wetness=np.zeros(2))
    k = soil_from_statics(rock, mineral).column.k_frozen
    assert np.all(k[:, 0] > k[:, 1])


def test_same_seed_same_arrays_other_seed_other_arrays(grid):
    a = static_fields(grid.cell_lat, grid.cell_lon, seed=3)
    b = static_fields(grid.cell_lat, grid.cell_lon, seed=3)
    c = static_fields(grid.cell_lat, grid.cell_lon, seed=4)
    np.testing.assert_array_equal(a.lith, b.lith)
    np.testing.assert_array_equal(a.soc, b.soc)
    assert not np.allclose(a.soc, c.soc)

    def short_run(seed):
        forcing, _ = F.reanalysis_forcing(grid.cell_lat, grid.cell_lon, seed=seed)
        soil = soil_from_statics(static_fields(grid.cell_lat, grid.cell_lon, seed))
        f = forcing.sel("2001-01", "2002-12")
        state = E.initial_state(soil.column, f.t2m.mean(axis=0))
        _, out = E.run(state, soil.column, E.Surface(snow_density(grid.cell_lat), soil.n_thaw),
                       f.t2m, f.tp * S.snowfall_share(f.t2m), f.time.days_in_month.values)
        return forcing.t2m, out.stl

    t1, s1 = short_run(7)
    t2, s2 = short_run(7)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(short_run(8)[1], s1)


def test_grid_resolution_and_cell_count():
    g = demo_grid(0.5)
    assert g.ncell > 900 and set(g.band) == set(range(6))
    assert np.all(np.diff(g.lat) < 0)
    assert abs(demo_grid(n_cells=4000).ncell - 4000) < 200
    with pytest.raises(ConfigError, match="resolution"):
        demo_grid(3.0)


def test_derived_radiation_is_physical():
    lat = np.array([60.0, 70.0])
    june = S.toa_insolation(lat, np.array([172.0]))
    december = S.toa_insolation(lat, np.array([355.0]))
    assert december[1] == pytest.approx(0.0, abs=1e-6)  # polar night at 70 N
    assert 450 < june[0] < 560 and june[1] > june[0] - 30
    clear = S.longwave_down(np.array([-20.0]), np.array([-24.0]), np.array([0.0]))
    cloudy = S.longwave_down(np.array([-20.0]), np.array([-24.0]), np.array([1.0]))
    assert 120 < clear[0] < cloudy[0] == pytest.approx(S.SIGMA * 253.15**4)
    assert S.snowfall_share(np.array([-10.0]))[0] > 0.99 > S.snowfall_share(np.array([10.0]))[0]


def test_bundled_points_read_once_and_returned_as_copies(points):
    """The bundled points are cached per process: equal to a fresh read of the same folder,
    and each call gets its own copy (a caller's change does not reach the next caller)."""
    fresh = F._read_points(F.real_dir() / "era5_alaska_points")
    first = F.read_era5_points()
    xr.testing.assert_identical(first, fresh)
    first["t2m"][:] = -999.0
    again = F.read_era5_points()
    xr.testing.assert_identical(again, fresh)
    assert F._bundled_points.cache_info().hits >= 1
