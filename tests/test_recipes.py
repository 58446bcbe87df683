"""Recipes (``run --recipe``), band identity off, the history/scenario consistency check and
the climatology-referenced scores (issue 13 items 1, 2, 7)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import era5_dataset

from permaplug.cli import cli
from permaplug.core.errors import ConfigError
from permaplug.training.metrics import scores, training_climatology
from permaplug.training.recipe import bundled_recipes, load_recipe, parse_recipe

FAST = ["--model", "gru", "--hparam", "hidden_size=8", "--epochs", "1",
        "--train-years", "2001-2004", "--test-years", "2005-2006",
        "--no-project", "--no-explain", "--no-report", "--quiet"]


def test_bundled_recipes_paper_and_physical():
    assert {"paper", "physical"} <= set(bundled_recipes())
    paper = load_recipe("paper").settings
    assert paper["features"] is None and paper["static"] is None  # the paper's inputs
    assert paper["band_identity"] is True and paper["corrector"] == "qm"
    assert paper["allow_inconsistent"] == ["swvl1", "swvl2", "swvl3", "swvl4"]
    phys = load_recipe("physical").settings
    assert phys["band_identity"] is False and phys["static"] == []
    assert phys["corrector"] == "qdm" and phys["early_stopping"] > 0
    assert not {"year", "z", "swvl1", "swvl2", "swvl3", "swvl4"} & set(phys["features"])
    assert {"snowpack_dd", "tdd", "fdd", "t2m_mean12", "t2m_mean24"} <= set(phys["features"])


@pytest.mark.parametrize("data, words", [
    ({"name": "x", "feature": ["t2m"]}, "unknown key(s) feature"),
    ({"features": ["t2m"]}, "needs a 'name'"),
    ({"name": "x", "features": []}, "features"),
    ({"name": "x", "target_normalisation": "per_band"}, "target_normalisation 'per_band'"),
    ({"name": "x", "band_identity": "no"}, "band_identity must be true or false"),
    ({"name": "x", "validation": {"patience": 3}}, "validation takes"),
    ({"name": "x", "projection": {"corrector": 3}}, "projection.corrector"),
])
def test_bad_recipe_is_one_line_naming_the_key(data, words):
    with pytest.raises(ConfigError) as exc:
        parse_recipe(data, "mine.yaml")
    assert words in str(exc.value) and "mine.yaml" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_recipe_name(tmp_path):
    res = CliRunner().invoke(cli, ["run", "--recipe", "phsyical", *FAST,
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "--recipe 'phsyical'" in res.output
    assert "paper" in res.output and "physical" in res.output
    assert not (tmp_path / "r").exists()


def _recipe_file(tmp_path: Path, **extra) -> Path:
    data = {"name": "mine", "features": ["t2m", "tp", "month_sin", "month_cos", "tdd"],
            "static": [], "band_identity": False, "target_normalisation": "none",
            "projection": {"corrector": "qdm"}, **extra}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_recipe_file_sets_the_run_and_is_recorded(tmp_path, tiny_catalog):
    cat = tiny_catalog(era5_dataset("2001-01", "2006-12"))
    recipe = _recipe_file(tmp_path)
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(cat), "--recipe", str(recipe), *FAST,
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "recipe: " in res.output and "band identity off" in res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["recipe"] == str(recipe) and cfg["band_identity"] is False
    assert cfg["corrector"] == "qdm" and cfg["target_norm"] == "none"
    assert cfg["resolved"]["dynamic_features"] == ["t2m", "tp", "month_sin", "month_cos", "tdd"]
    assert cfg["resolved"]["static_features"] == []
    assert "name: mine" in (out / "inputs" / "recipe.yaml").read_text()
    dims = json.loads((out / "checkpoints" / "gru" / "config.json").read_text())["dims"]
    assert dims["band_embedding"] == 0
    norm = json.loads((out / "checkpoints" / "gru" / "normaliser.json").read_text())
    assert norm["target_mean"] == [0.0] * 4 and norm["target_std"] == [1.0] * 4


def test_options_override_the_recipe(tmp_path, tiny_catalog):
    cat = tiny_catalog(era5_dataset("2001-01", "2006-12"))
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(cat), "--recipe",
                                   str(_recipe_file(tmp_path)), "--features", "t2m,month_sin",
                                   *FAST, "--out", str(out)])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["features"] == ["t2m", "month_sin"] and cfg["band_identity"] is False


def test_default_recipe_is_paper_with_the_paper_inputs(tmp_path, tiny_catalog):
    cat = tiny_catalog(era5_dataset("2001-01", "2006-12"))
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(cat), *FAST, "--out", str(out)])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["recipe"] == "paper" and cfg["features"] is None and cfg["band_identity"]
    dims = json.loads((out / "checkpoints" / "gru" / "config.json").read_text())["dims"]
    assert dims["band_embedding"] == 4


def test_explicit_recipe_beats_catalog_run_defaults(tmp_path, tiny_catalog):
    from conftest import TINY_CATALOG

    text = TINY_CATALOG.replace(
        "metadata: {description: tiny ERA5-Land test catalog}",
        "metadata:\n  description: tiny\n  run_defaults: {features: [t2m, tp, month_sin], "
        "band_identity: true}")
    cat = tiny_catalog(era5_dataset("2001-01", "2006-12"), catalog=text)
    runner = CliRunner()
    res = runner.invoke(cli, ["run", "--catalog", str(cat), *FAST, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output  # no --recipe: the catalog's defaults win over paper
    cfg = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert cfg["features"] == ["t2m", "tp", "month_sin"] and cfg["band_identity"] is True
    res = runner.invoke(cli, ["run", "--catalog", str(cat), "--recipe",
                              str(_recipe_file(tmp_path)), *FAST, "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert cfg["features"][-1] == "tdd" and cfg["band_identity"] is False


def test_project_takes_the_runs_corrector(tmp_path):
    from permaplug.commands.project import _run_corrector

    (tmp_path / "config.yaml").write_text("corrector: qdm\ncorrector_options: {a: 1}\n")
    assert _run_corrector(tmp_path) == ("qdm", {"a": 1})
    (tmp_path / "config.yaml").write_text("source: era5land\n")  # a run from before recipes
    assert _run_corrector(tmp_path) == ("qm", {})


def test_without_band_identity_the_band_changes_nothing():
    from permaplug.core.model import ModelDims
    from permaplug.core.plugins import get_model

    torch.manual_seed(0)
    net = get_model("gru")(ModelDims(n_dynamic=3, n_static=0, band_embedding=0), hidden_size=8).eval()
    x = torch.randn(2, 24, 3)
    static = torch.zeros(2, 0)
    a = net(x, torch.tensor([0, 0]), static)
    b = net(x, torch.tensor([5, 3]), static)
    assert torch.equal(a, b)
    torch.manual_seed(0)
    net = get_model("gru")(ModelDims(n_dynamic=3, n_static=0), hidden_size=8).eval()
    assert not torch.equal(net(x, torch.tensor([0, 0]), static),
                           net(x, torch.tensor([5, 3]), static))


# --- consistency between history and scenarios ------------------------------------------------
def test_soil_water_is_inconsistent_and_what_derives_from_it_too(monkeypatch):
    from permaplug.core.feature import Feature
    from permaplug.data import features as F
    from permaplug.plugins.sources.cmip import CMIPSource
    from permaplug.projection import consistency as C

    class WetDays(Feature):
        name = "wet"
        inputs = ("swvl1", "t2m")

        def compute(self, ds):
            return ds["swvl1"] * ds["t2m"]

    real = F.feature_classes()
    monkeypatch.setattr(F, "feature_classes", lambda reg=None: {**real, "wet": WetDays})
    rows = {r.feature: r for r in C.supply_table(["t2m", "swvl1", "wet", "tdd", "z"],
                                                 CMIPSource, "esm")}
    assert rows["t2m"].consistent and "CMIP tas" in rows["t2m"].how
    assert not rows["swvl1"].consistent and "LIQUID" in rows["swvl1"].reason
    assert not rows["wet"].consistent and "from swvl1" in rows["wet"].reason
    assert rows["tdd"].consistent and "same code" in rows["tdd"].how
    assert rows["z"].consistent and "training years" in rows["z"].how


def test_run_refuses_soil_water_before_training_unless_allowed(demo_catalog, tmp_path):
    from permaplug.projection.consistency import check_consistency

    with pytest.raises(ConfigError) as exc:
        check_consistency(demo_catalog, ["t2m", "swvl2"], allow=[])
    assert "'swvl2' means something else" in str(exc.value) and "\n" not in str(exc.value)
    rows = check_consistency(demo_catalog, ["t2m", "swvl2"], allow=["swvl2"])
    assert [r.feature for r in rows if not r.consistent] == ["swvl2"]
    res = CliRunner().invoke(cli, ["run", "--catalog", str(demo_catalog), "--recipe", "physical",
                                   "--features", "t2m,swvl1,month_sin", "--model", "gru",
                                   "--epochs", "1", "--no-explain", "--no-report", "--quiet",
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "'swvl1' means something else" in res.output
    assert not (tmp_path / "r").exists()  # refused before training


# --- scores against the climatology ----------------------------------------------------------
def test_skill_scores_against_climatology():
    rng = np.random.default_rng(0)
    clim = np.tile(10 * np.sin(np.arange(12) / 12 * 2 * np.pi), 5)
    obs = clim + rng.normal(0, 1, clim.size)
    assert scores(obs, obs, clim)["msess"] == pytest.approx(1.0)
    assert scores(obs, obs, clim)["anom_r2"] == pytest.approx(1.0)
    s = scores(obs, clim, clim)  # the climatology itself
    assert s["msess"] == pytest.approx(0.0) and s["r2"] > 0.9  # R² rewards the season alone
    half = clim + 0.5 * (obs - clim)
    anom = obs - clim
    expect = 1 - np.sum((half - obs) ** 2) / np.sum((anom - anom.mean()) ** 2)
    assert scores(obs, half, clim)["anom_r2"] == pytest.approx(expect)
    assert "msess" not in scores(obs, half)


def test_training_climatology_uses_training_years_only():
    years = np.repeat([2001, 2002, 2003], 12)
    month = np.tile(np.arange(1, 13), 3)
    target = np.zeros((1, 36, 2))
    target[0, years == 2003] = 100.0  # a test year: must not enter
    target[0, (years == 2002) & (month == 1), 0] = 2.0
    clim = training_climatology(target, month, years, (2001, 2002))
    assert clim.shape == (1, 12, 2)
    assert clim[0, 0, 0] == pytest.approx(1.0) and clim[0, 5, 1] == pytest.approx(0.0)
