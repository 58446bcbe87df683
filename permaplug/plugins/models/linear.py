"""``linear`` baseline: ridge regression of the anomaly from the monthly climatology on lagged
forcing anomalies, fitted on the training years. A network earns its place by beating it.

For the window ending at month ``t`` (target month ``t + 1``) of unit ``u``::

    y(u, t+1) = clim_y(u, month(t+1)) + b + sum_{k < lags} sum_f beta[k, f] * a_f(u, t-k)
    a_f(u, s) = x_f(u, s) - clim_f(u, month(s))

``clim_y`` and ``clim_f`` are the training years' means per unit (band, cell's band or site
embedding index) and calendar month; ``x_f`` are the run's dynamic inputs in physical units,
except the calendar features (``year``, ``month_sin``, ``month_cos``) and ``z``; the anomaly
columns are standardised, and ``beta`` (one set per layer, pooled over units) is ridge
regression with penalty ``alpha`` x (number of rows). ``alpha`` ``None`` (default) picks it from
``ALPHAS`` on the last 20 % of the training target months (chronological), then refits on
all of them. Rows with a missing input or target are skipped; a layer never observed in the
training years is not predicted (NaN).
"""
from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import torch

from permaplug.core.errors import DataError
from permaplug.core.model import ModelDims
from permaplug.data.features import PAPER_CALENDAR, SIGNAL
from permaplug.training.baseline import Baseline

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
EXCLUDED = frozenset(PAPER_CALENDAR) | {SIGNAL}


def _monthly_clim(values: np.ndarray, band: np.ndarray, month: np.ndarray, n_bands: int,
                  use: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``[U, T, K]`` per band and calendar month over the time steps ``use``
    ``[T]``: ``[n_bands, 12, K]`` (NaN where nothing is observed)."""
    out = np.full((n_bands, 12, values.shape[-1]), np.nan)
    for b in np.unique(band):
        rows = values[band == b]
        for m in range(12):
            sel = rows[:, (month == m + 1) & use]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a month with no value
                out[b, m] = np.nanmean(sel.reshape(-1, values.shape[-1]), axis=0)
    return out


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of ridge regression on standardised ``x`` ``[N, P]``."""
    n, p = x.shape
    ym = float(y.mean())
    gram = x.T @ x + alpha * n * np.eye(p)
    return np.linalg.solve(gram, x.T @ (y - ym)), ym


class LinearAnomaly(Baseline):
    """Ridge regression of the soil-temperature anomaly on lagged forcing anomalies.

    State (buffers): ``clim`` ``[n_bands, 12, L]`` and ``fclim`` ``[n_bands, 12, F]``
    climatologies (physical units), ``use`` ``[F]`` (1 = an input of the regression),
    ``xmean``/``xstd``/``coef`` ``[lags * F]`` / ``[lags * F, L]``, ``intercept`` ``[L]``,
    ``alpha`` ``[L]`` (the penalty used per layer).
    """

    name = "linear"
    description = ("Baseline: ridge regression of the anomaly from the monthly climatology on "
                   "lagged forcing anomalies (training years)")
    default_hparams: ClassVar[dict] = {"lags": 3, "alpha": None, "max_rows": 200_000}
    needs_dynamic: ClassVar[bool] = True

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        lags = int(self.hparams["lags"])
        if lags < 1 or lags > dims.window:
            raise DataError(f"linear: lags must be 1..{dims.window}, got {lags}")
        f, nl, nb = dims.n_dynamic, dims.n_layers, dims.n_bands
        self.register_buffer("clim", torch.full((nb, 12, nl), float("nan"), dtype=torch.float64))
        self.register_buffer("fclim", torch.zeros((nb, 12, f), dtype=torch.float64))
        self.register_buffer("use", torch.zeros(f, dtype=torch.float64))
        self.register_buffer("xmean", torch.zeros(lags * f, dtype=torch.float64))
        self.register_buffer("xstd", torch.ones(lags * f, dtype=torch.float64))
        self.register_buffer("coef", torch.zeros((lags * f, nl), dtype=torch.float64))
        self.register_buffer("intercept", torch.zeros(nl, dtype=torch.float64))
        self.register_buffer("alpha", torch.full((nl,), float("nan"), dtype=torch.float64))

    def fit(self, target, band, month, dynamic=None, dynamic_names=(), train_months=None):
        """``target`` ``[U, T, L]`` degC (NaN outside the training years), ``band`` ``[U]``,
        ``month`` ``[T]``, ``dynamic`` ``[U, T, F]`` physical inputs, ``dynamic_names`` their
        names, ``train_months`` ``[T]`` bool (default: months with any target)."""
        if dynamic is None:
            raise DataError("linear: needs the dynamic inputs (fit(..., dynamic=...))")
        y = np.asarray(target, float)
        x = np.asarray(dynamic, float)
        b = np.asarray(band, np.int64)
        m = np.asarray(month, np.int64)
        n_units, n_time, _ = y.shape
        tm = (np.asarray(train_months, bool) if train_months is not None
              else np.isfinite(y).any(axis=(0, 2)))
        clim = _monthly_clim(y, b, m, self.dims.n_bands, tm)
        fclim = _monthly_clim(x, b, m, self.dims.n_bands, tm)
        names = list(dynamic_names) or [""] * x.shape[-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanstd(np.where(tm[None, :, None], x, np.nan), axis=(0, 1))
        use = np.array([n not in EXCLUDED and np.isfinite(s) and s > 1e-12
                        for n, s in zip(names, spread)], float)
        self.clim.copy_(torch.as_tensor(clim))
        self.fclim.copy_(torch.as_tensor(np.nan_to_num(fclim)))
        self.use.copy_(torch.as_tensor(use))
        lags = int(self.hparams["lags"])
        last = np.arange(lags - 1, n_time - 1)
        last = last[tm[last + 1]]
        uu, ll = np.meshgrid(np.arange(n_units), last, indexing="ij")
        unit, last = uu.ravel(), ll.ravel()
        raw = self._design_raw(x, b, m, unit, last, lags)
        ok = np.isfinite(raw).all(axis=1)
        rng = np.random.default_rng(0)
        rows = np.flatnonzero(ok)
        if len(rows) > int(self.hparams["max_rows"]):
            rows = np.sort(rng.choice(rows, int(self.hparams["max_rows"]), replace=False))
        if len(rows) == 0:
            raise DataError("linear: no training month with complete lagged inputs")
        xmean = raw[rows].mean(axis=0)
        xstd = raw[rows].std(axis=0)
        xstd = np.where(xstd > 1e-12, xstd, 1.0)
        self.xmean.copy_(torch.as_tensor(xmean))
        self.xstd.copy_(torch.as_tensor(xstd))
        design = (raw[rows] - xmean) / xstd
        anom = y[unit[rows], last[rows] + 1] - clim[b[unit[rows]], m[last[rows] + 1] - 1]
        coef = np.zeros((design.shape[1], y.shape[-1]))
        intercept = np.zeros(y.shape[-1])
        alpha_used = np.full(y.shape[-1], np.nan)
        fixed = self.hparams["alpha"]
        for layer in range(y.shape[-1]):
            sel = np.isfinite(anom[:, layer])
            if sel.sum() < 2:
                continue  # a layer never observed: not predicted
            xs, ys, ts = design[sel], anom[sel, layer], last[rows][sel]
            alpha = float(fixed) if fixed is not None else self._choose_alpha(xs, ys, ts)
            coef[:, layer], intercept[layer] = _ridge(xs, ys, alpha)
            alpha_used[layer] = alpha
        self.coef.copy_(torch.as_tensor(coef))
        self.intercept.copy_(torch.as_tensor(intercept))
        self.alpha.copy_(torch.as_tensor(alpha_used))
        return self

    def _design_raw(self, x, b, m, unit, last, lags) -> np.ndarray:
        fclim = self.fclim.numpy()
        use = self.use.numpy().astype(bool)
        cols = [np.where(use, x[unit, last - k] - fclim[b[unit], m[last - k] - 1], 0.0)
                for k in range(lags)]
        return np.concatenate(cols, axis=1)

    @staticmethod
    def _choose_alpha(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> float:
        """The penalty of ``ALPHAS`` with the lowest error on the last 20 % of the months."""
        months = np.unique(t)
        if len(months) < 10:
            return ALPHAS[len(ALPHAS) // 2]
        cut = months[int(len(months) * 0.8)]
        fit, val = t < cut, t >= cut
        best, best_err = ALPHAS[0], np.inf
        for alpha in ALPHAS:
            coef, icpt = _ridge(x[fit], y[fit], alpha)
            err = float(np.mean((x[val] @ coef + icpt - y[val]) ** 2))
            if err < best_err:
                best, best_err = alpha, err
        return best

    def predict_series(self, target, band, month, unit, last, dynamic=None) -> torch.Tensor:
        if dynamic is None:
            raise DataError("linear: needs the dynamic inputs (predict_series(..., dynamic=...))")
        b = np.asarray(band, np.int64)
        m = np.asarray(month, np.int64)
        u, t = np.asarray(unit, np.int64), np.asarray(last, np.int64)
        lags = int(self.hparams["lags"])
        if (t - lags + 1 < 0).any():
            raise DataError(f"linear: a window ends before month {lags} of the table")
        raw = self._design_raw(np.asarray(dynamic, float), b, m, u, t, lags)
        design = (raw - self.xmean.numpy()) / self.xstd.numpy()
        clim = self.clim.numpy()[b[u], m[t + 1] - 1]
        pred = clim + self.intercept.numpy() + design @ self.coef.numpy()
        pred[:, ~np.isfinite(self.alpha.numpy())] = np.nan
        return torch.as_tensor(pred, dtype=torch.float32)
