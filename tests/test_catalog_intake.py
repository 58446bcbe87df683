"""intake for real: every bundled catalog, and the demo catalog, opens with intake alone, and
its entries load through intake's own API; permaplug's checks still run before intake reads."""
from __future__ import annotations

from pathlib import Path

import intake
import pytest
import xarray as xr
import yaml

from permaplug.core import catalog as catalog_mod
from permaplug.core.catalog import PermaplugReader, bundled_catalogs, load_catalog
from permaplug.core.errors import CatalogError


def _entry_names(path: Path) -> list[str]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["entries"])


def _same_data(a: xr.Dataset, b: xr.Dataset) -> None:
    """Equal variables, coordinates and values (permaplug adds its data label/provenance)."""
    assert sorted(a.data_vars) == sorted(b.data_vars) and a.sizes == b.sizes
    xr.testing.assert_equal(a.drop_attrs(), b.drop_attrs())


@pytest.mark.parametrize("name", sorted(bundled_catalogs()))
def test_every_bundled_catalog_opens_with_intake_alone(name):
    path = bundled_catalogs()[name]
    cat = intake.from_yaml_file(str(path))
    assert list(cat.entries) == _entry_names(path)
    for entry in cat.entries:
        reader = cat[entry]  # intake builds the reader (no file is read yet)
        assert isinstance(reader, PermaplugReader)
        assert reader.kwargs["plugin"] and isinstance(reader.kwargs["options"], dict)


@pytest.mark.parametrize("entry", ["cmip5-ipsl-box", "era5-points"])
def test_real_tables_entries_read_through_intake(entry):
    cat = intake.from_yaml_file(str(bundled_catalogs()["real-tables"]))
    ds = cat[entry].read()
    assert isinstance(ds, xr.Dataset) and ds.sizes["time"] > 100 and "t2m" in ds
    _same_data(ds, load_catalog("real-tables").open(entry))


def test_demo_catalog_entry_reads_through_intake(demo_catalog):
    cat = intake.from_yaml_file(str(demo_catalog))
    assert set(cat.entries) == set(_entry_names(demo_catalog))
    ds = cat["era5land"].read()
    assert {"stl1", "t2m"} <= set(ds.data_vars) and ds.sizes["band"] == 6
    _same_data(ds, load_catalog(demo_catalog).open("era5land"))


def test_permaplug_checks_before_intake_reads_the_file(tmp_path, monkeypatch):
    from intake.readers.entry import Catalog

    calls = []
    real = Catalog.from_yaml_file
    monkeypatch.setattr(Catalog, "from_yaml_file",
                        staticmethod(lambda p, **kw: calls.append(p) or real(p, **kw)))
    good = load_catalog("real-tables")
    assert calls == [] and "cmip5-ipsl-box" in good.names()  # checking and listing: no intake
    assert good.intake is not None  # complete form: intake reads the file itself
    assert calls == [str(bundled_catalogs()["real-tables"].resolve())]
    raw = yaml.safe_load(bundled_catalogs()["real-tables"].read_text(encoding="utf-8"))
    raw["entries"]["era5-points"]["reader"] = "os:system"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(CatalogError, match="reader 'os:system' is not allowed"):
        load_catalog(bad)
    raw["entries"]["era5-points"]["reader"] = catalog_mod.READER
    raw["entries"]["era5-points"]["kwargs"]["options"]["path"] = "{CATALOG_DIR}/../../etc"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(CatalogError, match="leaves the catalog folder"):
        load_catalog(bad)
    assert len(calls) == 1  # intake never saw the refused files


def test_short_form_is_completed_for_intake(tmp_path):
    short = {"version": 2, "metadata": {"description": "short"},
             "entries": {"pts": {"kwargs": {"plugin": "climate-reanalyzer", "options": {
                 "path": "{PERMAPLUG_RESOURCES}/real/era5_alaska_points"}},
                 "metadata": {"role": "reanalysis"}}}}
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(short), encoding="utf-8")
    assert load_catalog(path).names() == ["pts"]  # permaplug accepts the short form
    with pytest.raises(KeyError):
        intake.from_yaml_file(str(path))  # intake alone does not
    path.write_text(yaml.safe_dump(catalog_mod.complete_catalog(short)), encoding="utf-8")
    ds = intake.from_yaml_file(str(path))["pts"].read()
    _same_data(ds, load_catalog(path).open("pts"))
