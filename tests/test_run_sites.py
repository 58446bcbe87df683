"""Site mode (``--spatial sites``) on the bundled real ``toolik`` catalog: the table, masked
targets in the loss and the metrics, dropped windows counted, and the run end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core.catalog import PermaplugCatalog, load_catalog
from permaplug.core.errors import FeatureError
from permaplug.data.assemble import assemble_table, select_features
from permaplug.training.config import RunConfig
from permaplug.training.loop import masked_mse
from permaplug.training.metrics import model_metrics
from permaplug.training.predict import predict_windows, predictions_frame
from permaplug.training.runs import fit_model, prepare

LABEL = "real observations (Toolik EDC) + ERA5 (Climate Reanalyzer)"


@pytest.fixture(scope="module")
def table():
    return assemble_table(load_catalog("toolik"), source="era5-toolik", spatial="sites")


def test_site_table_joins_the_nearest_forcing_point(table):
    assert dict(table.sizes) == {"time": table.sizes["time"], "site": 1}
    assert str(table["forcing_point"].values[0]) == "Toolik"
    assert 5 < float(table["forcing_km"].values[0]) < 20
    assert int(table["band"].values[0]) == 4
    assert table.attrs["permaplug_data"] == LABEL
    assert table.attrs["dynamic_features"].split(",") == ["t2m", "tp", "d2m"]
    # 60 months before the first layer value (1998-09: the 5 and 10 cm sensors start; the
    # catalog keeps each layer's sensor composition constant)
    assert str(table["time"].values[0])[:7] == "1993-09"
    assert str(table["time"].values[-1])[:7] == "2021-12"
    # targets are as observed: nothing filled (2001 Jan-May has no rows at all)
    assert np.isnan(table["stl1"].sel(time="2001-03")).all()
    assert np.isnan(table["stl4"]).all()
    assert np.isfinite(table["t2m"]).all()


def _catalog_features() -> list[str]:
    return list(load_catalog("toolik").metadata["run_defaults"]["features"])


def test_catalog_features_resolve_against_its_declarations_without_reading(monkeypatch):
    """The toolik catalog's selected inputs: the point forcing's own variables plus derived
    forcing features, checked against what its entries declare; no data is opened."""
    def no_read(self, name, **kw):
        raise AssertionError(f"data read: {name}")

    monkeypatch.setattr(PermaplugCatalog, "open", no_read)
    cat = load_catalog("toolik")
    defaults = cat.metadata["run_defaults"]
    feats = _catalog_features()
    sel = select_features(cat, feats, defaults["source"])
    provided = {v.name for v in cat.provides(defaults["source"])}
    assert sel.dynamic == feats and not sel.static
    assert set(sel.base) <= provided == {"t2m", "tp", "d2m"}
    # the derived forcing features are computed from t2m and tp, never read
    assert {"snowpack_dd", "tdd", "fdd"} & set(sel.derived)
    assert not set(sel.derived) & provided
    # selection on the validation years, with early stopping on them (never the test years)
    assert defaults["val_fraction"] > 0 and defaults["early_stopping"] > 0
    with pytest.raises(FeatureError, match="'strd'"):  # the point forcing has no strd
        select_features(cat, [*feats, "strd"], defaults["source"])
    with pytest.raises(FeatureError, match="snowpack_ddd"):  # the site path checks too
        assemble_table(cat, source=defaults["source"], spatial="sites",
                       features=[*feats, "snowpack_ddd"])


def test_masked_mse_ignores_unobserved_layers():
    pred = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    y = torch.tensor([[1.5, 2.0, float("nan"), float("nan")], [1.0, 1.0, 1.0, float("nan")]])
    loss = masked_mse(pred, y)
    assert float(loss.detach()) == pytest.approx((0.25 + 0 + 1 + 1 + 1) / 5)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 2] == 0 and pred.grad[1, 3] == 0
    full = torch.randn(5, 4)
    p = torch.randn(5, 4)
    assert torch.equal(masked_mse(p, full), torch.nn.functional.mse_loss(p, full))


def test_prepare_counts_dropped_windows(table):
    cfg = RunConfig(source="era5-toolik", catalog="toolik", spatial="sites",
                    train_years=[1989, 2012], test_years=[2013, 2021], use_z=False)
    prep = prepare(table, cfg)
    c = prep.counts
    # target months with 24 input months in the table (it starts 1993-09): 1995-09..2012-12
    assert c["train"]["candidates"] == 208 and c["test"]["candidates"] == 9 * 12
    assert c["train"]["dropped_missing_inputs"] == 0  # the ERA5 forcing is complete
    # before 1998-09 and in 2001 Jan-May no layer is observed: those windows are dropped
    assert c["train"]["dropped_missing_targets"] >= 36 + 5
    assert c["train"]["kept"] == len(prep.train) + len(prep.val)
    assert prep.arrays.dynamic_names == ("t2m", "tp", "d2m", "year", "month_sin", "month_cos")
    assert prep.normaliser.target_mean[3] == 0.0 and prep.normaliser.target_std[3] == 1.0
    # test windows with at least one observed layer, even in 2017 (no 0-7 cm readings)
    t17 = prep.arrays.time[prep.test[:, 1] + 1].astype("datetime64[Y]").astype(int) + 1970
    assert (t17 == 2017).sum() >= 10


def test_forcing_with_a_gap_drops_and_counts_windows(table):
    damaged = table.copy(deep=True)
    damaged["tp"].loc[{"time": "2015-06"}] = np.nan
    cfg = RunConfig(source="era5-toolik", catalog="toolik", spatial="sites",
                    train_years=[1989, 2012], test_years=[2013, 2021], use_z=False)
    prep = prepare(damaged, cfg)
    # every test window whose 24 input months include 2015-06 is dropped
    assert prep.counts["test"]["dropped_missing_inputs"] == 24


def test_linear_on_the_point_forcing_beats_climatology(table, tmp_path):
    """The linear baseline earns its place on the point forcing's own variables (with the
    derived features too it overfits at 0-7 cm: benchmarks/RESULTS.md)."""
    cfg = RunConfig(source="era5-toolik", catalog="toolik", spatial="sites",
                    train_years=[1989, 2012], test_years=[2013, 2021], use_z=False,
                    features=["t2m", "tp", "d2m", "year", "month_sin", "month_cos"])
    prep = prepare(table, cfg)
    rmse = {}
    for name in ("climatology", "linear"):
        model, _ = fit_model(name, prep, cfg, tmp_path / name, False, False)
        pred = predict_windows(model, prep.arrays, prep.normaliser, prep.test)
        layers = model_metrics(predictions_frame(prep.arrays, prep.test, pred, name))
        rmse[name] = {k: v["rmse"] for k, v in layers["per_layer"].items()}
    for layer in ("stl1", "stl2", "stl3"):
        assert rmse["linear"][layer] < rmse["climatology"][layer]


def test_run_toolik_catalog_end_to_end(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", "toolik", "--model", "gru", "--epochs", "2",
                                   "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "projection skipped" in res.output and "SHAP explanation skipped" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == LABEL
    assert metrics["train_years"] == [1989, 2012] and metrics["test_years"] == [2013, 2021]
    assert set(metrics["models"]) == {"gru", "persistence", "climatology", "seasonal-naive",
                                      "linear"}
    for m in metrics["models"].values():
        assert m["per_layer"]["stl4"]["n"] == 0  # never observed: masked, not scored
        assert m["per_layer"]["stl3"]["n"] > 100  # 2013-2021: 108 months, some missing
    assert metrics["windows"]["train"]["dropped_missing_targets"] > 0
    md = (out / "comparison.md").read_text()
    assert f"data: {LABEL}" in md and "linear" in md
    assert (out / "report.html").exists() and (out / "COMPLETE").exists()
    assert LABEL in (out / "report.html").read_text()
    # the run folder records the catalog's feature selection, and trained on exactly those
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["features"] == _catalog_features()
    assert config["resolved"]["dynamic_features"] == _catalog_features()
    assert config["early_stopping"] > 0 and config["val_fraction"] > 0
    assert config["resolved"]["windows"]["validation"] > 0


def test_command_line_features_override_the_catalog_selection(tmp_path):
    out = tmp_path / "raw"
    raw = ["t2m", "tp", "d2m", "year", "month_sin", "month_cos"]
    res = CliRunner().invoke(cli, ["run", "--catalog", "toolik", "--model", "linear",
                                   "--features", ",".join(raw), "--out", str(out), "--quiet",
                                   "--no-report"])
    assert res.exit_code == 0, res.output
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["features"] == raw != _catalog_features()
    assert config["resolved"]["dynamic_features"] == raw
    assert config["early_stopping"] == 10  # the other run defaults still apply
    bad = CliRunner().invoke(cli, ["run", "--catalog", "toolik", "--model", "linear",
                                   "--features", "t2m,strd", "--out", str(tmp_path / "bad"),
                                   "--quiet", "--no-report"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "'strd'" in bad.output and not (tmp_path / "bad").exists()
