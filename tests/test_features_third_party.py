"""Issue 12, done-when: a third-party package, built with pip, adds a source with a variable
permaplug has never seen (snow depth ``snd``) and a derived feature computed from it, and
``permaplug run --features ...`` trains on them with no change to permaplug.

Also: features are checked before any data is read, and two sources declaring one variable
with different units is an error naming both."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import TINY_CATALOG, era5_dataset
from test_core_plugins import _make_dist, _pip_install

from permaplug.cli import cli
from permaplug.core import plugins as plugmod

SNOW = '''
"""A snow-depth data set permaplug knows nothing about, and a feature derived from it."""
import numpy as np
import pandas as pd
import xarray as xr

import permaplug


class SnowDepthSource(permaplug.Source):
    """Monthly snow depth per band from a CSV table with columns time, band, snd (m)."""

    name = "snowdepth"
    role = "dynamic"
    variables = (permaplug.Variable("snd", "m", "surface_snow_thickness", "snow depth"),)

    def open(self):
        frame = pd.read_csv(self.options["path"], parse_dates=["time"])
        ds = frame.set_index(["time", "band"]).to_xarray()
        ds["snd"].attrs = self.variables[0].cf_attrs()
        ds.attrs["permaplug_data"] = "snow depth fixture"
        ds.attrs["provenance"] = f"snowdepth: {self.options['path']}"
        return ds


class LogSnowDepth(permaplug.Feature):
    """log(1 + snow depth in cm): compresses the deep-snow tail."""

    name = "snd_log"
    units = "1"
    long_name = "log(1 + snow depth / 1 cm)"
    inputs = ("snd",)

    def compute(self, ds):
        return np.log1p(100.0 * ds["snd"])


@permaplug.hookimpl
def register_sources(register):
    register(SnowDepthSource)


@permaplug.hookimpl
def register_features(register):
    register(LogSnowDepth)
'''

OTHER_UNITS = '''
import permaplug


class SnowCm(permaplug.Source):
    name = "snowcm"
    role = "dynamic"
    variables = (permaplug.Variable("snd", "cm", "surface_snow_thickness", "snow depth"),)

    def open(self):
        raise AssertionError("never opened")


@permaplug.hookimpl
def register_sources(register):
    register(SnowCm)
'''

CATALOG = TINY_CATALOG + """  snow:
    kwargs: {plugin: snowdepth, options: {path: "{CATALOG_DIR}/snow.csv"}}
    metadata: {role: dynamic, data_label: snow depth fixture}
"""
FAST = ["--model", "gru", "--hparam", "hidden_size=8", "--epochs", "2",
        "--train-years", "2001-2004", "--test-years", "2005-2006",
        "--no-project", "--no-explain", "--no-report", "--quiet"]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("snowdists")
    snow = _make_dist(root, "permaplug-snowdepth", "permaplug_snowdepth", SNOW)
    other = _make_dist(root, "permaplug-snowcm", "permaplug_snowcm", OTHER_UNITS)
    sites = {"snow": root / "site-snow", "both": root / "site-both"}
    _pip_install([snow], sites["snow"])
    _pip_install([snow, other], sites["both"])
    return sites


@pytest.fixture
def use_site(monkeypatch):
    def add(folder):
        monkeypatch.delenv(plugmod.ENV_LOAD, raising=False)
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.setattr(plugmod, "_registry", None)

    yield add
    plugmod._registry = None


@pytest.fixture(scope="module")
def snow_catalog(tmp_path_factory):
    """The tiny ERA5-Land catalog (2001-2006) plus a snow-depth CSV entry (role dynamic)."""
    folder = tmp_path_factory.mktemp("snowcat")
    (folder / "era5").mkdir()
    era5 = era5_dataset("2001-01", "2006-12")
    era5.to_netcdf(folder / "era5" / "era5.nc")
    time = pd.date_range("2001-01", "2006-12", freq="MS")
    rng = np.random.default_rng(1)
    rows = [{"time": t.strftime("%Y-%m-%d"), "band": b,
             "snd": max(0.0, 0.4 * np.cos(2 * np.pi * (t.month - 2) / 12) + 0.1 * b / 5
                        + 0.05 * rng.normal())}
            for t in time for b in range(6)]
    pd.DataFrame(rows).to_csv(folder / "snow.csv", index=False)
    (folder / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    return folder / "catalog.yaml"


def test_a_pip_installed_source_and_feature_train_with_no_change_to_permaplug(
        sites, use_site, snow_catalog, tmp_path):
    use_site(sites["snow"])
    listing = json.loads(CliRunner().invoke(cli, ["plugins", "--json", "--variables"]).output)
    kinds = {(r["kind"], r["name"]): r["origin"] for r in listing["plugins"]}
    assert kinds[("source", "snowdepth")] == kinds[("feature", "snd_log")] == "third-party"
    snd = next(v for v in listing["variables"] if v["name"] == "snd")
    assert snd["units"] == "m" and "permaplug-snowdepth" in snd["declared_by"]

    out = tmp_path / "run"
    features = "t2m,tp,snd,snd_log,month_sin,month_cos"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(snow_catalog), "--features", features,
                                   *FAST, "--out", str(out)])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["features"] == features.split(",")
    assert cfg["resolved"]["dynamic_features"] == features.split(",")
    assert cfg["resolved"]["static_features"] == []
    assert "snow depth fixture" in cfg["resolved"]["data"]
    norm = json.loads((out / "checkpoints" / "gru" / "normaliser.json").read_text())
    # the normaliser saw the new variable and the derived one, in physical units
    i, j = norm["dynamic_names"].index("snd"), norm["dynamic_names"].index("snd_log")
    frame = pd.read_csv(snow_catalog.parent / "snow.csv", parse_dates=["time"])
    train = frame[frame["time"].dt.year <= 2004]["snd"].to_numpy()
    assert norm["dynamic_mean"][i] == pytest.approx(train.mean(), rel=1e-5)
    assert norm["dynamic_mean"][j] == pytest.approx(np.log1p(100 * train).mean(), rel=1e-5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["models"]["gru"]["overall"]["rmse"])

    # the run reloads and predicts with the plugin's feature (computed again from snd)
    from permaplug.data.assemble import assemble_table
    from permaplug.training.runs import load_run

    run = load_run(out)
    table = assemble_table(str(snow_catalog), features=["t2m", "tp", "snd", "month_sin",
                                                        "month_cos"])
    assert "snd_log" not in table
    arrays = run.arrays(table)
    np.testing.assert_allclose(arrays.dynamic[..., j],
                               np.log1p(100 * table["snd"].transpose("band", "time").values),
                               rtol=1e-6)


def test_a_feature_nobody_provides_fails_before_any_data_is_read(
        sites, use_site, snow_catalog, tmp_path, monkeypatch):
    use_site(sites["snow"])
    from permaplug.core.catalog import PermaplugCatalog

    def no_read(*a, **kw):
        raise AssertionError("data were read before the features were checked")

    monkeypatch.setattr(PermaplugCatalog, "open", no_read)
    for features, message in [
        ("t2m,snd_depth", "feature 'snd_depth': no source in catalog"),
        ("t2m,stl1", "feature 'stl1' is a target"),
    ]:
        res = CliRunner().invoke(cli, ["run", "--catalog", str(snow_catalog), "--features",
                                       features, *FAST, "--out", str(tmp_path / "x")])
        assert res.exit_code == 1, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], res.output
        assert "Traceback" not in res.output
    # the derived feature's input is declared by a source this catalog does not use
    plain = tmp_path / "plain.yaml"
    plain.write_text(TINY_CATALOG)
    res = CliRunner().invoke(cli, ["run", "--catalog", str(plain), "--features", "t2m,snd_log",
                                   *FAST, "--out", str(tmp_path / "y")])
    assert res.exit_code == 1
    assert ("feature 'snd_log' needs 'snd', which no source in catalog" in res.output
            and "declared by source 'snowdepth' (permaplug-snowdepth)" in res.output), res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_one_variable_in_two_units_is_an_error_naming_both(sites, use_site, snow_catalog,
                                                           tmp_path):
    use_site(sites["both"])
    listing = CliRunner().invoke(cli, ["plugins", "--variables"])
    assert listing.exit_code == 0
    assert "CONFLICT  variable 'snd'" in listing.output
    res = CliRunner().invoke(cli, ["run", "--catalog", str(snow_catalog), "--features",
                                   "t2m,snd", *FAST, "--out", str(tmp_path / "z")])
    assert res.exit_code == 1
    line = res.output.strip()
    assert "variable 'snd' is declared with different units" in line, line
    assert "'m' by source 'snowdepth' (permaplug-snowdepth)" in line
    assert "'cm' by source 'snowcm' (permaplug-snowcm)" in line
