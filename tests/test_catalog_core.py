"""Catalog loading and validation: only our reader, registered plugins, paths in the folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from permaplug.core import schema
from permaplug.core.catalog import PermaplugReader, load_catalog
from permaplug.core.errors import CatalogError

REAL = Path(__file__).resolve().parents[1] / "permaplug" / "resources" / "real"

ENTRY = """
  pts:
    kwargs:
      plugin: climate-reanalyzer
      options: {{path: "{path}", variables: [temp], spatial: bands}}
    metadata: {{role: reanalysis{extra}}}
"""


def _catalog(tmp_path: Path, body: str, meta: str = "{}") -> Path:
    p = tmp_path / "cat.yaml"
    p.write_text(f"version: 2\nmetadata: {meta}\nentries:\n{body}")
    return p


@pytest.fixture()
def points_dir(tmp_path):
    d = tmp_path / "pts"
    d.mkdir()
    for f in (REAL / "era5_alaska_points").glob("Fairbanks_temp.csv"):
        shutil.copy(f, d)
    return d


def test_open_through_intake_reader(tmp_path, points_dir):
    cat = load_catalog(_catalog(tmp_path, ENTRY.format(path="{CATALOG_DIR}/pts",
                                                      extra=", data_label: my label")))
    assert cat.names() == ["pts"]
    assert cat.entry("pts").options["path"] == str(points_dir.resolve())
    assert isinstance(cat.reader("pts"), PermaplugReader)
    ds = cat.open("pts")
    assert ds.attrs[schema.DATA_LABEL_ATTR] == "my label"
    assert "entry 'pts'" in ds.attrs["provenance"]
    # Fairbanks (64.86 N) is the only point: band 2 holds its January 1940 value
    assert float(ds["t2m"].sel(time="1940-01-01", band=2)) == pytest.approx(-14.611)
    assert cat.find("reanalysis") == "pts"
    assert cat.find("reanalysis", source="climate-reanalyzer") == "pts"
    with pytest.raises(CatalogError, match="no entry with role 'scenario'"):
        cat.find("scenario")
    with pytest.raises(CatalogError, match="no entry 'nope'"):
        cat.entry("nope")


def test_relative_paths_resolve_against_catalog_folder(tmp_path, points_dir):
    cat = load_catalog(_catalog(tmp_path, ENTRY.format(path="pts", extra="")))
    assert cat.entry("pts").options["path"] == str(points_dir.resolve())
    assert float(cat.open("pts", variables=["temp"])["t2m"].sel(time="1940-01-01", band=2)) \
        == pytest.approx(-14.611)


def test_other_path_options_resolve(tmp_path):
    body = ("  x:\n    kwargs:\n      plugin: cmip\n      options: {paths: c, sftlf: fx/s.nc, "
            "region: r.geojson, unit_table: '{CATALOG_DIR}/t.csv', model: M}\n")
    opts = load_catalog(_catalog(tmp_path, body)).entry("x").options
    folder = tmp_path.resolve()
    assert opts == {"paths": str(folder / "c"), "sftlf": str(folder / "fx" / "s.nc"),
                    "region": str(folder / "r.geojson"), "unit_table": str(folder / "t.csv"),
                    "model": "M"}


def test_package_resources_template(tmp_path):
    cat = load_catalog(_catalog(tmp_path, ENTRY.format(
        path="{PERMAPLUG_RESOURCES}/real/era5_alaska_points", extra="")))
    assert cat.open("pts")["n_points"].values.tolist() == [0, 0, 2, 4, 5, 3]


@pytest.mark.parametrize("path", ["{CATALOG_DIR}/../x", "/etc", "../x",
                                  "{PERMAPLUG_RESOURCES}/../../x"])
def test_paths_may_not_escape(tmp_path, path):
    p = _catalog(tmp_path, ENTRY.format(path=path, extra=""))
    with pytest.raises(CatalogError, match=r"cat.yaml: entry 'pts': option 'path'.*leaves"):
        load_catalog(p)


def test_allow_absolute_paths(tmp_path):
    p = _catalog(tmp_path, ENTRY.format(path=str(REAL / "era5_alaska_points"), extra=""),
                 meta="{allow_absolute_paths: true}")
    assert load_catalog(p).entry("pts").options["path"] == str(REAL / "era5_alaska_points")


@pytest.mark.parametrize("body, match", [
    ("  x:\n    reader: intake.readers.readers:PandasCSV\n    kwargs: {plugin: era5land}\n",
     "reader 'intake.readers.readers:PandasCSV' is not allowed"),
    ("  x:\n    cls: os:system\n    kwargs: {plugin: climate-reanalyzer}\n",
     "cls 'os:system' is not allowed"),
    ("  x:\n    kwargs: {plugin: no-such-source}\n", "Unknown source: 'no-such-source'"),
    ("  x:\n    kwargs: {plugin: climate-reanalyzer, args: [1]}\n", "kwargs may only be"),
    ("  x:\n    kwargs: {plugin: climate-reanalyzer, options: {path: '{func(os:getcwd)}'}}\n",
     r"template \{func\(os:getcwd\)\}"),
    ("  x:\n    kwargs: {plugin: climate-reanalyzer}\n    metadata: {role: banana}\n",
     "metadata.role 'banana'"),
    ("  x:\n    kwargs: {plugin: era5land}\n    metadata: {role: scenario_truth}\n",
     "role scenario_truth needs metadata.scenario"),
])
def test_refused_entries(tmp_path, body, match):
    with pytest.raises(CatalogError, match=match) as info:
        load_catalog(_catalog(tmp_path, body))
    assert "cat.yaml: entry 'x'" in str(info.value)
    assert "\n" not in str(info.value)


def test_refused_files(tmp_path):
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalog(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\nentries: [unclosed\n")
    with pytest.raises(CatalogError, match="bad.yaml: invalid YAML"):
        load_catalog(bad)
    v1 = tmp_path / "v1.yaml"
    v1.write_text("sources: {}\n")
    with pytest.raises(CatalogError, match="version: 2"):
        load_catalog(v1)
    data = tmp_path / "data.yaml"
    data.write_text("version: 2\ndata: {d: {cls: os:system}}\nentries: {}\n")
    with pytest.raises(CatalogError, match="section 'data' is not allowed"):
        load_catalog(data)
