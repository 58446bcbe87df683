"""usgs-lithology (GeoPackage, shapefile) and openlandmap (GeoTIFF) on files in those formats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.plugins.sources.openlandmap import DEPTHS_CM, layer_weights, soil_properties
from permaplug.plugins.sources.usgs_lithology import (
    band_polygons,
    classify_units,
    lithology_shares,
    load_unit_table,
)


def _write_map(path: Path, driver: str = "GPKG") -> Path:
    """Two polygons splitting band 1 (61.28-63.29 N) at -150 E: Qs west, Kgr east (EPSG:4326)."""
    import geopandas as gpd

    west = shapely.box(-170, 61.2755545, -150, 63.2878288)
    east = shapely.box(-150, 61.2755545, -140, 63.2878288)
    gdf = gpd.GeoDataFrame({"STATE_UNIT": ["Qs", "Kgr"], "LITH": ["unconsolidated", "plutonic"]},
                           geometry=[west, east], crs="EPSG:4326")
    gdf.to_file(path, driver=driver)
    return path


def test_unit_table_rules():
    rules = load_unit_table()
    got = classify_units(__import__("pandas").Series(["Qs", "Kgr", "water", "ice", "Tv", "Qv",
                                                     None, "MDs"]), rules)
    assert got.tolist() == ["unconsolidated", "plutonic", "water", "glacier", "volcanic",
                            "volcanic", "unknown", "sedimentary"]


@pytest.mark.parametrize("driver, name", [("GPKG", "map.gpkg"), ("ESRI Shapefile", "map.shp")])
def test_lithology_area_shares(tmp_path, driver, name):
    import geopandas as gpd

    path = _write_map(tmp_path / name, driver)
    ds = lithology_shares(path)
    total = ds[[f"lith_{c}" for c in schema.LITHOLOGY_CLASSES]].to_array().sum("variable")
    np.testing.assert_allclose(total.values, 100.0)
    # expected: equal-area shares of the band-1 region polygon west/east of -150
    band1 = gpd.GeoSeries([band_polygons()[1]], crs="EPSG:4326").to_crs("EPSG:3338").iloc[0]
    west_box = shapely.segmentize(shapely.box(-170, 61.2755545, -150, 63.2878288), 0.01)
    west = gpd.GeoSeries([west_box],
                         crs="EPSG:4326").to_crs("EPSG:3338").iloc[0]
    share_w = 100 * band1.intersection(west).area / band1.area
    assert float(ds["lith_unconsolidated"].sel(band=1)) == pytest.approx(share_w, abs=0.5)
    assert float(ds["lith_plutonic"].sel(band=1)) == pytest.approx(100 - share_w, abs=0.5)
    assert 20 < share_w < 80
    assert float(ds["lith_unknown"].sel(band=3)) == pytest.approx(100.0)  # not mapped
    # class_field route gives the same answer
    same = lithology_shares(path, class_field="LITH")
    assert float(same["lith_plutonic"].sel(band=1)) == pytest.approx(
        float(ds["lith_plutonic"].sel(band=1)))


def test_lithology_errors(tmp_path):
    path = _write_map(tmp_path / "m.gpkg")
    with pytest.raises(DataError, match="no attribute field 'UNIT'"):
        lithology_shares(path, unit_field="UNIT")
    with pytest.raises(DataError, match="lithology map not found"):
        lithology_shares(tmp_path / "none.gpkg")


def _write_tif(path: Path, data: np.ndarray, lat0: float, lon0: float, res: float,
               descriptions: list[str] | None = None) -> None:
    import rasterio
    from rasterio.transform import from_origin

    bands = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2],
                       count=bands.shape[0], dtype="uint8", crs="EPSG:4326", nodata=255,
                       transform=from_origin(lon0, lat0, res, res)) as dst:
        dst.write(bands.astype("uint8"))
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)


def test_layer_weights():
    w = layer_weights()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # layer 1 (0-7 cm): profile between 0 and 10 cm; mean of hat functions over 0-7:
    # weight of depth 0 = mean(1 - z/10) over 0..7 = 1 - 0.35 = 0.65
    assert w[0, 0] == pytest.approx(0.65, abs=1e-3)
    assert w[0, 1] == pytest.approx(0.35, abs=1e-3)
    # layer 4 (100-289 cm): mostly the 200 cm value (constant below 200)
    assert w[3, 5] > 0.7 and w[3, :4].sum() == pytest.approx(0.0)


@pytest.mark.parametrize("layout", ["zenodo", "ee"])
def test_openlandmap_scaling_and_layers(tmp_path, layout):
    # 4x4 pixels of 0.5 deg, 64.5..62.5 N, -150..-148 E (inside Alaska, bands 1-2)
    depth_vals = {0: 100, 10: 110, 30: 120, 60: 130, 100: 140, 200: 150}  # stored units
    if layout == "zenodo":
        for d, v in depth_vals.items():
            _write_tif(tmp_path / f"sol_bulkdens.fineearth_usda.4a1h_m_250m_b{d}..{d}cm_"
                                  "1950..2017_v0.2.tif", np.full((4, 4), v), 64.5, -150.0, 0.5)
            _write_tif(tmp_path / f"sol_organic.carbon_usda.6a1c_m_250m_b{d}..{d}cm_"
                                  "1950..2017_v0.2.tif", np.full((4, 4), 10), 64.5, -150.0, 0.5)
    else:
        stack = np.stack([np.full((4, 4), depth_vals[d]) for d in DEPTHS_CM])
        names = [f"b{d}" for d in DEPTHS_CM]
        _write_tif(tmp_path / "OpenLandMap_SOL_BULKDEN.tif", stack, 64.5, -150.0, 0.5, names)
        _write_tif(tmp_path / "OpenLandMap_SOL_ORGANIC-CARBON.tif", np.full((6, 4, 4), 10),
                   64.5, -150.0, 0.5, names)
    ds = soil_properties(tmp_path)
    w = layer_weights()
    profile = np.array([depth_vals[d] for d in DEPTHS_CM]) * 10.0  # -> kg m-3
    for i in range(4):
        assert float(ds[f"bdod_l{i + 1}"].sel(band=2)) == pytest.approx(w[i] @ profile)
        assert float(ds[f"soc_l{i + 1}"].sel(band=2)) == pytest.approx(50.0)  # 10 x 5 g/kg
    assert ds["bdod_l1"].attrs["units"] == "kg m-3"
    assert np.isnan(float(ds["bdod_l1"].sel(band=5)))


def test_openlandmap_missing_depth(tmp_path):
    _write_tif(tmp_path / "sol_bulkdens.fineearth_usda.4a1h_m_250m_b0..0cm_x.tif",
               np.full((2, 2), 100), 64.5, -150.0, 0.5)
    with pytest.raises(DataError, match=r"missing for depth\(s\) \[10, 30, 60, 100, 200\] cm"):
        soil_properties(tmp_path)
