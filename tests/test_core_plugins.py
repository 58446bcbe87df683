"""The plugin system: real third-party distributions installed with pip, broken and duplicate
plugins, the load filter, and the CLI listing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from click.testing import CliRunner

import permaplug
from permaplug.cli import cli
from permaplug.core import plugins as plugmod
from permaplug.core.errors import PluginError, UnknownPluginError

GOOD = '''
import torch
import permaplug

class TinyLinear(permaplug.Model):
    """Mean over time, then a linear layer: the smallest model that honours the contract."""
    name = "tiny_linear"
    default_hparams = {"scale": 1.0}

    def __init__(self, dims, **hparams):
        super().__init__(dims, **hparams)
        self.emb = torch.nn.Embedding(dims.n_bands, dims.band_embedding)
        self.out = torch.nn.Linear(dims.n_dynamic + dims.n_static + dims.band_embedding,
                                   dims.n_layers)

    def forward(self, x, band, static):
        h = torch.cat([x.mean(1), static, self.emb(band)], dim=-1)
        return self.out(h) * self.hparams["scale"]

class ShiftCorrector(permaplug.Corrector):
    """Adds the mean difference reanalysis - model of the calibration period."""
    name = "shift"

    def fit(self, model_hist, obs_hist):
        self.shift = obs_hist.mean("time") - model_hist.mean("time")
        return self

    def apply(self, scenario):
        return scenario + self.shift

    def state(self):
        return self.shift

    @classmethod
    def from_state(cls, state):
        obj = cls()
        obj.shift = state
        return obj

@permaplug.hookimpl
def register_models(register):
    register(TinyLinear)

@permaplug.hookimpl
def register_correctors(register):
    register(ShiftCorrector)
'''

BROKEN = '''
raise ImportError("this plugin needs a package that is not installed")
'''

RAISES_ON_REGISTER = '''
import permaplug

@permaplug.hookimpl
def register_models(register):
    raise RuntimeError("cannot register today")
'''

DUPLICATE = '''
import permaplug

class OtherTiny(permaplug.Model):
    name = "tiny_linear"

    def forward(self, x, band, static):
        return x[:, -1, :4]

@permaplug.hookimpl
def register_models(register):
    register(OtherTiny)
'''

MISSPELT = '''
import permaplug

@permaplug.hookimpl
def register_modles(register):
    pass
'''


def _make_dist(root: Path, dist: str, module: str, code: str) -> Path:
    pkg = root / dist
    pkg.mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.3.1"

        [tool.setuptools]
        py-modules = ["{module}"]

        [project.entry-points.permaplug]
        {module} = "{module}"
    """))
    (pkg / f"{module}.py").write_text(code)
    return pkg


def _pip_install(pkgs: list[Path], target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(target), *map(str, pkgs)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, Path]:
    """Two pip --target folders: one with a good + a broken + a raising plugin, one with a dup."""
    root = tmp_path_factory.mktemp("dists")
    good = _make_dist(root, "permaplug-tiny", "permaplug_tiny", GOOD)
    broken = _make_dist(root, "permaplug-broken", "permaplug_broken", BROKEN)
    raising = _make_dist(root, "permaplug-raising", "permaplug_raising", RAISES_ON_REGISTER)
    dup = _make_dist(root, "permaplug-dup", "permaplug_dup", DUPLICATE)
    misspelt = _make_dist(root, "permaplug-misspelt", "permaplug_misspelt", MISSPELT)
    sites = {name: root / f"site-{name}" for name in ("main", "dup", "misspelt")}
    _pip_install([good, broken, raising], sites["main"])
    _pip_install([good, dup], sites["dup"])
    _pip_install([misspelt], sites["misspelt"])
    return sites


@pytest.fixture
def on_path(monkeypatch):
    """Put a site folder on sys.path (entry points are discovered from it) and reset the cache."""

    def add(folder: Path) -> None:
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.setattr(plugmod, "_registry", None)

    yield add
    plugmod._registry = None


def test_builtin_plugins_come_from_our_own_entry_points():
    reg = plugmod.build_registry()
    assert not [b for b in reg.broken if b.distribution == "permaplug"], reg.broken
    for info in reg.all():
        assert info.builtin and info.distribution == "permaplug"


def test_third_party_plugin_is_listed_and_usable(site, on_path, monkeypatch):
    monkeypatch.delenv(plugmod.ENV_LOAD, raising=False)
    on_path(site["main"])
    reg = plugmod.get_registry()
    info = reg.info("model", "tiny_linear")
    assert info.distribution == "permaplug-tiny" and info.version == "0.3.1"
    assert not info.builtin
    cls = plugmod.get_model("tiny_linear")
    model = cls(permaplug.ModelDims(n_dynamic=5, n_static=3), scale=2.0)
    out = model(torch.zeros(7, 24, 5), torch.zeros(7, dtype=torch.long), torch.zeros(7, 3))
    assert out.shape == (7, 4)
    assert plugmod.get_corrector("shift").name == "shift"

    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    row = next(r for r in listing["plugins"] if r["name"] == "tiny_linear")
    assert row == {**row, "kind": "model", "distribution": "permaplug-tiny", "origin": "third-party"}
    broken = {b["distribution"]: b["error"] for b in listing["broken"]}
    assert "not installed" in broken["permaplug-broken"]
    assert "cannot register today" in broken["permaplug-raising"]

    table = CliRunner().invoke(cli, ["plugins"])
    assert "tiny_linear" in table.output and "third-party" in table.output
    assert "BROKEN  permaplug-broken" in table.output


def test_load_filter_env(site, on_path, monkeypatch):
    on_path(site["main"])
    monkeypatch.setenv(plugmod.ENV_LOAD, "")
    reg = plugmod.build_registry()
    assert "tiny_linear" not in reg.names("model")
    assert not reg.broken  # the broken plugins were not even imported
    monkeypatch.setenv(plugmod.ENV_LOAD, "permaplug-tiny")
    reg = plugmod.build_registry()
    assert "tiny_linear" in reg.names("model")
    assert not reg.broken


def test_duplicate_names_are_listed_and_only_using_them_fails(site, on_path, monkeypatch):
    monkeypatch.delenv(plugmod.ENV_LOAD, raising=False)
    on_path(site["dup"])
    reg = plugmod.build_registry()  # the registry survives the conflict
    assert reg.conflicting("model") == {"tiny_linear"}
    assert reg.get("model", "gru").name == "gru"
    assert reg.get("corrector", "shift").name == "shift"  # the rest of permaplug-tiny works
    with pytest.raises(PluginError) as err:
        reg.get("model", "tiny_linear")
    assert "permaplug-tiny" in str(err.value) and "permaplug-dup" in str(err.value)
    assert "'tiny_linear'" in str(err.value)

    listing = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    rows = [r for r in listing["plugins"] if r["name"] == "tiny_linear"]
    assert {r["distribution"] for r in rows} == {"permaplug-tiny", "permaplug-dup"}
    assert {r["status"] for r in rows} == {"CONFLICT"}
    assert listing["conflicts"] == [{"kind": "model", "name": "tiny_linear",
                                     "distributions": ["permaplug-tiny", "permaplug-dup"]}]
    table = CliRunner().invoke(cli, ["plugins"])
    assert table.exit_code == 0 and "CONFLICT  model 'tiny_linear'" in table.output
    assert "permaplug-dup (permaplug_dup.OtherTiny)" in table.output

    from permaplug.training.config import resolve_models

    assert "tiny_linear" not in resolve_models(["all"])  # 'all' leaves the conflict out
    res = CliRunner().invoke(cli, ["run", "--model", "tiny_linear", "--no-project"])
    assert res.exit_code == 1 and "Two plugins register the model 'tiny_linear'" in res.output
    assert "permaplug-tiny" in res.output and "permaplug-dup" in res.output


def test_misspelt_hook_fails_loudly(site, on_path, monkeypatch):
    monkeypatch.delenv(plugmod.ENV_LOAD, raising=False)
    on_path(site["misspelt"])
    with pytest.raises(PluginError, match="register_modles"):
        plugmod.build_registry()


def test_unknown_name_suggests_closest():
    reg = plugmod.Registry()
    reg.plugins["model"]["gru"] = plugmod.PluginInfo("model", "gru", object, "permaplug", "", "m")
    with pytest.raises(UnknownPluginError, match=r"Unknown model: 'gur' \(did you mean 'gru'\?\)"):
        reg.get("model", "gur")


def test_plugin_listing_in_a_subprocess(site, tmp_path):
    """The console entry point sees a pip-installed plugin with no change to permaplug."""
    env = {**os.environ, "PYTHONPATH": str(site["main"])}
    env.pop(plugmod.ENV_LOAD, None)
    out = subprocess.run([sys.executable, "-m", "permaplug", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    names = {(r["name"], r["origin"]) for r in json.loads(out.stdout)["plugins"]}
    assert ("tiny_linear", "third-party") in names


def test_model_rejects_unknown_hparam():
    class M(permaplug.Model):
        name = "m"
        default_hparams: ClassVar[dict[str, int]] = {"hidden_size": 8}

        def forward(self, x, band, static):
            return x[:, -1, :4]

    with pytest.raises(permaplug.core.errors.ConfigError, match="hidden_sise"):
        M(permaplug.ModelDims(n_dynamic=3), hidden_sise=4)


def test_an_incomplete_plugin_class_is_listed_as_broken_and_the_rest_load():
    class NoForward(permaplug.Model):
        name = "no_forward"

    class Incomplete:
        @permaplug.hookimpl
        def register_models(self, register):
            register(NoForward)

    reg = plugmod.build_registry(extra_plugins=[(Incomplete(), "permaplug-incomplete")])
    assert "no_forward" not in reg.names("model") and "gru" in reg.names("model")
    [broken] = [b for b in reg.broken if b.distribution == "permaplug-incomplete"]
    assert "model class" in broken.error and "does not implement forward" in broken.error
