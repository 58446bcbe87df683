"""Baselines: what each predicts, fitted on training years only, state round-trips."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from test_training_table import synthetic_table

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.core.model import ModelDims
from permaplug.core.plugins import get_model
from permaplug.training.config import RunConfig
from permaplug.training.normalise import Normaliser
from permaplug.training.predict import predict_windows
from permaplug.training.runs import _train_target
from permaplug.training.windows import table_arrays, window_index

DIMS = ModelDims(n_dynamic=1)


@pytest.fixture(scope="module")
def arrays():
    return table_arrays(synthetic_table("2001-01", "2008-12", n_bands=3), ("t2m",), ())


def _predict(name, arrays, years=(2007, 2008), fit_years=(2001, 2006)):
    model = get_model(name)(DIMS)
    assert model.trainable is False
    model.fit(_train_target(arrays, list(fit_years)), torch.as_tensor(arrays.band),
              torch.as_tensor(arrays.month))
    idx = window_index(arrays, years)
    return model, idx, predict_windows(model, arrays, Normaliser.fit(arrays, fit_years), idx)


def test_persistence_is_the_last_input_month(arrays):
    _, idx, pred = _predict("persistence", arrays)
    np.testing.assert_array_equal(pred, arrays.target[idx[:, 0], idx[:, 1]])
    assert not np.allclose(pred, arrays.target[idx[:, 0], idx[:, 1] + 1])


def test_seasonal_naive_is_the_same_month_a_year_before(arrays):
    _, idx, pred = _predict("seasonal-naive", arrays)
    target_time = pd.DatetimeIndex(arrays.time[idx[:, 1] + 1])
    source_time = pd.DatetimeIndex(arrays.time[idx[:, 1] - 11])
    assert ((target_time - pd.DateOffset(years=1)) == source_time).all()
    np.testing.assert_array_equal(pred, arrays.target[idx[:, 0], idx[:, 1] - 11])


def test_climatology_is_the_training_mean_per_band_month_layer(arrays):
    _, idx, pred = _predict("climatology", arrays)
    t = pd.DatetimeIndex(arrays.time)
    train = (t.year >= 2001) & (t.year <= 2006)
    for n, (u, last) in enumerate(idx[:20]):
        m = t[last + 1].month
        expect = arrays.target[u, train & (t.month == m)].mean(axis=0)
        np.testing.assert_allclose(pred[n], expect, rtol=1e-5)


def test_climatology_never_sees_the_test_years(arrays):
    _, _, pred = _predict("climatology", arrays)
    changed = table_arrays(synthetic_table("2001-01", "2008-12", n_bands=3), ("t2m",), ())
    years = changed.years
    changed.target[:, years >= 2007] += 50.0
    _, _, pred2 = _predict("climatology", changed)
    np.testing.assert_array_equal(pred, pred2)


def test_climatology_state_round_trips_with_weights_only(arrays):
    model, idx, pred = _predict("climatology", arrays)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = get_model("climatology")(DIMS)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(
        predict_windows(fresh, arrays, Normaliser.fit(arrays, (2001, 2006)), idx), pred)


def test_baselines_refuse_feature_windows():
    with pytest.raises(ConfigError, match="baseline"):
        get_model("persistence")(DIMS)(torch.zeros(1, 24, 1), torch.zeros(1, dtype=torch.long),
                                       torch.zeros(1, 0))


def test_run_config_rejects_short_windows():
    with pytest.raises(ConfigError, match="window"):
        RunConfig(window=12).validate()


def test_layers_are_in_schema_order(arrays):
    assert arrays.target.shape[-1] == len(schema.TARGETS)
