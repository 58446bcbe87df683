"""The ``linear`` baseline: ridge regression of climatology anomalies on lagged forcing anomalies."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from permaplug.core.model import ModelDims
from permaplug.core.plugins import get_model
from permaplug.plugins.models.climatology import Climatology
from permaplug.plugins.models.linear import LinearAnomaly


def _series(n_years: int = 30, seed: int = 0):
    """Two units; target = seasonal cycle + 0.8 x (forcing anomaly one month earlier) + noise."""
    rng = np.random.default_rng(seed)
    n_t = 12 * n_years
    month = np.tile(np.arange(1, 13), n_years)
    season = np.cos(2 * np.pi * (month - 7) / 12)
    f_anom = rng.normal(size=(2, n_t))
    forcing = 10 * season[None] + f_anom  # [U, T]
    target = np.full((2, n_t, 4), np.nan)
    target[:, 1:, 0] = 5 * season[None, 1:] + 0.8 * f_anom[:, :-1]
    target[:, 1:, 1] = 2 * season[None, 1:] + 0.3 * f_anom[:, :-1]
    target[:, :, :2] += 0.05 * rng.normal(size=(2, n_t, 2))
    calendar = np.broadcast_to(np.sin(2 * np.pi * month / 12)[None, :, None], (2, n_t, 1))
    dynamic = np.concatenate([forcing[..., None], calendar], axis=-1)
    return target, dynamic, month


def _fit(target, dynamic, month, train_years, **hp):
    years = np.repeat(np.arange(len(month) // 12), 12)
    train = (years >= train_years[0]) & (years <= train_years[1])
    y_train = np.where(train[None, :, None], target, np.nan)
    dims = ModelDims(n_dynamic=dynamic.shape[-1], n_bands=6, n_layers=4)
    band = torch.tensor([0, 1])
    model = LinearAnomaly(dims, **hp).fit(torch.as_tensor(y_train), band, torch.as_tensor(month),
                                          dynamic=dynamic, dynamic_names=("t2m", "month_sin"),
                                          train_months=train)
    clim = Climatology(dims).fit(torch.as_tensor(y_train), band, torch.as_tensor(month))
    return model, clim, years


def test_linear_recovers_a_lagged_anomaly_and_beats_climatology():
    target, dynamic, month = _series()
    model, clim, years = _fit(target, dynamic, month, (0, 19))
    last = np.flatnonzero(years[1:] >= 20)  # test target months: years 20..29
    unit = np.repeat([0, 1], len(last))
    last = np.tile(last, 2)
    args = (torch.as_tensor(target), torch.tensor([0, 1]), torch.as_tensor(np.append(month, 1)),
            torch.as_tensor(unit), torch.as_tensor(last))
    pred = model.predict_series(*args, dynamic=dynamic).numpy()
    base = clim.predict_series(*args).numpy()
    obs = target[unit, last + 1]
    rmse = np.sqrt(np.mean((pred[:, :2] - obs[:, :2]) ** 2, axis=0))
    rmse_clim = np.sqrt(np.mean((base[:, :2] - obs[:, :2]) ** 2, axis=0))
    assert rmse[0] < 0.2 * rmse_clim[0] and rmse[1] < 0.4 * rmse_clim[1]
    assert np.isnan(pred[:, 2:]).all()  # never-observed layers are not predicted
    assert model.use.tolist() == [1.0, 0.0]  # calendar features are not regressors
    lag0 = model.coef[0, 0] / model.xstd[0]  # the coefficient of the month-t anomaly, degC/unit
    assert float(lag0) == pytest.approx(0.8, abs=0.05)


def test_linear_round_trips_through_its_state_dict():
    target, dynamic, month = _series(12)
    model, _, _ = _fit(target, dynamic, month, (0, 9), lags=2, alpha=0.01)
    again = get_model("linear")(model.dims, **model.hparams)
    again.load_state_dict(model.state_dict())
    args = (torch.as_tensor(target), torch.tensor([0, 1]), torch.as_tensor(np.append(month, 1)),
            torch.tensor([0, 1]), torch.tensor([130, 130]))
    torch.testing.assert_close(model.predict_series(*args, dynamic=dynamic),
                               again.predict_series(*args, dynamic=dynamic), equal_nan=True)
    assert float(again.alpha[0]) == pytest.approx(0.01)


def test_linear_alpha_is_chosen_on_late_training_months():
    target, dynamic, month = _series(20, seed=3)
    model, _, _ = _fit(target, dynamic, month, (0, 14))
    assert float(model.alpha[0]) in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
