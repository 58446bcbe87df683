"""Static features per grid cell (``Source.open_cells``): lithology shares by sub-sampling,
soil by nearest pixel, and a third party's static source used in gridded mode."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import shapely
import xarray as xr
from test_catalog_assemble import _era5_file

import permaplug
from permaplug.core import plugins as plugmod
from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data.assemble import assemble_table
from permaplug.data.bands import cell_resolution
from permaplug.demo.formats import write_openlandmap
from permaplug.plugins.sources.openlandmap import DEPTHS_CM, layer_weights, soil_at_cells
from permaplug.plugins.sources.usgs_lithology import lithology_at_cells

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


# --- a third party's static source, as a user would write it -----------------------------------
def _soil(lat, lon) -> dict[str, np.ndarray]:
    """Made-up bulk density / organic carbon as a smooth function of position."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    out = {}
    for i in range(schema.N_LAYERS):
        out[f"bdod_l{i + 1}"] = 1000.0 + 10.0 * lat + lon + 100.0 * i
        out[f"soc_l{i + 1}"] = 50.0 - 0.5 * lat - 5.0 * i
    return out


class PointSoil(permaplug.Source):
    """Per-band values (band centre) and, with ``per_cell``, values at each cell centre."""

    name: ClassVar[str] = "point-soil"
    role: ClassVar[str] = "static"
    variables: ClassVar[tuple[permaplug.Variable, ...]] = tuple(
        permaplug.Variable(f"{p}_l{i}", u, "", f"{p} layer {i}", kind="static")
        for p, u in (("bdod", "kg m-3"), ("soc", "g kg-1")) for i in range(1, 5))

    def open(self) -> xr.Dataset:
        edges = np.asarray(schema.BAND_EDGES, float)
        centre = (edges[:-1] + edges[1:]) / 2
        fields = _soil(centre, np.full(centre.size, -150.0))
        ds = xr.Dataset({k: ("band", v, schema.cf_attrs(k)) for k, v in fields.items()},
                        coords=schema.band_coords())
        ds.attrs[schema.DATA_LABEL_ATTR] = "made-up soil"
        return ds

    def open_cells(self, lat, lon):
        if not self.options.get("per_cell", True):
            return None
        return xr.Dataset({k: ("cell", v, schema.cf_attrs(k)) for k, v in _soil(lat, lon).items()})


class PointSoilPlugin:
    __name__ = "permaplug_point_soil"

    @permaplug.hookimpl
    def register_sources(self, register):
        register(PointSoil)


GRID_CATALOG = """version: 2
metadata: {{description: third-party static source}}
entries:
  era5land:
    kwargs: {{plugin: era5land, options: {{paths: "{{CATALOG_DIR}}/era5/*.nc"}}}}
    metadata: {{role: reanalysis, data_label: fixture ERA5-Land}}
  soil:
    kwargs: {{plugin: point-soil, options: {{per_cell: {per_cell}}}}}
    metadata: {{role: static}}
"""


@pytest.mark.parametrize("per_cell", [True, False])
def test_third_party_static_source_in_grid_mode(tmp_path, monkeypatch, per_cell):
    monkeypatch.setattr(plugmod, "_registry", plugmod.build_registry(
        extra_plugins=[(PointSoilPlugin(), "permaplug-point-soil")]))
    _era5_file(tmp_path / "era5")
    cat = tmp_path / "catalog.yaml"
    cat.write_text(GRID_CATALOG.format(per_cell=str(per_cell).lower()))
    table = assemble_table(cat, spatial="grid", static=("point-soil",))
    assert table["bdod_l1"].dims == ("cell",) and table.sizes["cell"] > 3
    lat, lon = table["lat"].values, table["lon"].values
    if per_cell:  # sampled at each cell centre by the plugin's own open_cells
        np.testing.assert_allclose(table["bdod_l2"].values, _soil(lat, lon)["bdod_l2"])
        np.testing.assert_allclose(table["soc_l4"].values, _soil(lat, lon)["soc_l4"])
        assert "sampled per grid cell" in table.attrs["provenance"]
    else:  # no per-cell sampling: each cell gets its band's value
        band_values = PointSoil().open()["bdod_l2"].values
        np.testing.assert_allclose(table["bdod_l2"].values, band_values[table["band"].values])
        assert len(np.unique(table["bdod_l2"].values)) <= schema.N_BANDS
    assert "static point-soil: made-up soil" in table.attrs[schema.DATA_LABEL_ATTR]


class WrongCells(PointSoil):
    name: ClassVar[str] = "wrong-cells"

    def open_cells(self, lat, lon):
        return super().open()  # per band, not per cell


def test_open_cells_with_wrong_dims_is_one_error(tmp_path, monkeypatch):
    class Plugin:
        __name__ = "permaplug_wrong_cells"

        @permaplug.hookimpl
        def register_sources(self, register):
            register(WrongCells)

    monkeypatch.setattr(plugmod, "_registry", plugmod.build_registry(
        extra_plugins=[(Plugin(), "permaplug-wrong-cells")]))
    _era5_file(tmp_path / "era5")
    cat = tmp_path / "catalog.yaml"
    cat.write_text(GRID_CATALOG.format(per_cell="true").replace("point-soil", "wrong-cells"))
    with pytest.raises(DataError, match=r"entry 'soil': source 'wrong-cells' open_cells gave "
                                        r"dims \{'band': 6\}; expected \(cell: \d+\)"):
        assemble_table(cat, spatial="grid", static=("wrong-cells",))


def test_builtin_static_sources_sample_per_cell():
    from permaplug.core.plugins import get_source
    from permaplug.core.source import Source

    for name in ("openlandmap", "usgs-lithology"):
        assert get_source(name).open_cells is not Source.open_cells, name
    assert Source.open_cells(PointSoil(), np.zeros(2), np.zeros(2)) is None
