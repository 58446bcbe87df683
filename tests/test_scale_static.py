"""Static features per grid cell: lithology shares by sub-sampling, soil by nearest pixel."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from permaplug.core.errors import DataError
from permaplug.demo.formats import write_openlandmap
from permaplug.plugins.sources.openlandmap import DEPTHS_CM, layer_weights
from permaplug.scale.static import cell_resolution, lithology_at_cells, soil_at_cells

LAT = np.array([65.0, 65.5, 65.0])
LON = np.array([-150.0, -149.5, -149.5])


def test_lithology_shares_per_cell(tmp_path):
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {"cls": ["volcanic", "plutonic"]},
        geometry=[shapely.box(-152.0, 60.0, -150.0, 70.0),     # west of -150 E
                  shapely.box(-150.0, 60.0, -148.0, 65.25)],   # east of -150 E, south of 65.25
        crs="EPSG:4326").to_crs("EPSG:3338")
    path = tmp_path / "map.gpkg"
    gdf.to_file(path)
    assert cell_resolution(LAT, LON) == (0.5, 0.5)
    ds = lithology_at_cells(str(path), LAT, LON, class_field="cls")
    # cell 0 straddles -150 E: half volcanic, half plutonic; cell 1 lies in no polygon
    assert ds["lith_volcanic"].values.tolist() == [50.0, 0.0, 0.0]
    assert ds["lith_plutonic"].values.tolist() == [50.0, 0.0, 100.0]
    assert ds["lith_unknown"].values.tolist() == [0.0, 100.0, 0.0]
    total = sum(ds[v] for v in ds.data_vars)
    np.testing.assert_allclose(total, 100.0)
    assert ds["lith_volcanic"].attrs["units"] == "percent"
    with pytest.raises(DataError, match="no attribute field 'nope'"):
        lithology_at_cells(str(path), LAT, LON, class_field="nope")


def test_soil_properties_of_the_nearest_pixel(tmp_path):
    lat = np.array([65.75, 65.25, 64.75])  # descending, 0.5 deg pixels
    lon = np.array([-150.25, -149.75, -149.25])
    base = np.arange(9, dtype=float).reshape(3, 3)
    bdod = np.stack([1000 + 10 * base + 20 * k for k in range(len(DEPTHS_CM))])
    soc = np.stack([50 + 5 * base - 5 * k for k in range(len(DEPTHS_CM))])
    valid = np.ones((3, 3), bool)
    write_openlandmap(tmp_path, "bdod", DEPTHS_CM, bdod, lat, lon, valid)
    write_openlandmap(tmp_path, "soc", DEPTHS_CM, soc, lat, lon, valid)
    cells_lat, cells_lon = np.array([65.3, 64.8]), np.array([-149.7, -150.2])
    ds = soil_at_cells(str(tmp_path), cells_lat, cells_lon)
    w = layer_weights()
    # cell 0 -> pixel (row 1, col 1), cell 1 -> pixel (row 2, col 0)
    for c, (r, k) in enumerate([(1, 1), (2, 0)]):
        expect_bdod = w @ bdod[:, r, k]
        expect_soc = w @ soc[:, r, k]
        for i in range(4):
            assert ds[f"bdod_l{i + 1}"].values[c] == pytest.approx(expect_bdod[i], abs=1e-6)
            assert ds[f"soc_l{i + 1}"].values[c] == pytest.approx(expect_soc[i], abs=1e-6)
    assert ds["bdod_l1"].dims == ("cell",)
    with pytest.raises(DataError, match="OpenLandMap folder not found"):
        soil_at_cells(str(tmp_path / "missing"), cells_lat, cells_lon)
