"""Metrics equal scikit-learn's; per-layer/per-band splits; the comparison table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from permaplug.core import schema
from permaplug.training.metrics import model_metrics, scores
from permaplug.training.tables import comparison_frame, write_comparison


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_scikit_learn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    obs = rng.normal(0, 5, 500)
    pred = obs + rng.normal(0.3, 2, 500)
    s = scores(obs, pred)
    assert s["rmse"] == pytest.approx(np.sqrt(mean_squared_error(obs, pred)), rel=1e-12)
    assert s["mae"] == pytest.approx(mean_absolute_error(obs, pred), rel=1e-12)
    assert s["r2"] == pytest.approx(r2_score(obs, pred), rel=1e-12)
    assert s["n"] == 500


def test_scores_ignore_missing_values():
    s = scores([1.0, 2.0, np.nan, 4.0], [1.0, 3.0, 5.0, np.nan])
    assert s["n"] == 2 and s["rmse"] == pytest.approx(np.sqrt(0.5))


def _frame(rng):
    rows = []
    for band in range(3):
        for layer in schema.TARGETS:
            obs = rng.normal(band, 3, 24)
            rows.append(pd.DataFrame({"time": pd.date_range("2019-01", periods=24, freq="MS"),
                                      "band": band, "layer": layer, "observed": obs,
                                      "predicted": obs + rng.normal(0, 1 + band, 24),
                                      "model": "m"}))
    return pd.concat(rows, ignore_index=True)


def test_model_metrics_pool_and_split():
    frame = _frame(np.random.default_rng(3))
    m = model_metrics(frame)
    assert m["overall"]["r2"] == pytest.approx(r2_score(frame["observed"], frame["predicted"]))
    sub = frame[frame["layer"] == "stl3"]
    assert m["per_layer"]["stl3"]["rmse"] == pytest.approx(
        np.sqrt(mean_squared_error(sub["observed"], sub["predicted"])))
    sub = frame[(frame["band"] == 2) & (frame["layer"] == "stl1")]
    assert m["per_band_layer"]["2"]["stl1"]["mae"] == pytest.approx(
        mean_absolute_error(sub["observed"], sub["predicted"]))
    assert set(m["per_band"]) == {"0", "1", "2"}
    # noisier bands score worse
    assert m["per_band"]["0"]["rmse"] < m["per_band"]["2"]["rmse"]


def test_comparison_table_lists_networks_first_and_carries_the_data_label(tmp_path):
    rng = np.random.default_rng(4)
    metrics = {"persistence": model_metrics(_frame(rng)), "gru": model_metrics(_frame(rng)),
               "tcn": model_metrics(_frame(rng))}
    frame = comparison_frame(metrics, {"persistence": "baseline"})
    assert list(frame["model"])[-1] == "persistence"
    assert frame.loc[frame["model"] == "gru", "RMSE"].item() == pytest.approx(
        metrics["gru"]["overall"]["rmse"])
    md, csv = write_comparison(frame, tmp_path, "demo emulator", (2019, 2023), 3)
    text = md.read_text()
    assert "data: demo emulator" in text and "| gru | network |" in text
    assert csv.read_text().splitlines()[0] == "# data: demo emulator"
    back = pd.read_csv(csv, comment="#")
    assert list(back["model"]) == list(frame["model"])
    np.testing.assert_allclose(back["RMSE stl2"], frame["RMSE stl2"], rtol=1e-5)
