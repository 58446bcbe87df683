"""Baselines: models fitted from the raw target series instead of by gradient descent.

A baseline sees what a forecaster would have at the end of the input window: the observed soil
temperatures of the window's months (``t - W + 1 .. t``), never the target month ``t + 1``.
``fit`` receives only the training years' target series, so the climatology cannot see the
test years. Fitted state lives in registered buffers, so ``state_dict`` and a weights-only
``torch.load`` round-trip it like a network's weights.
"""
from __future__ import annotations

import abc

import torch

from permaplug.core.errors import ConfigError
from permaplug.core.model import Model


class Baseline(Model):
    """Base class of non-trainable models (``trainable = False``).

    Arrays: ``target`` ``[U, T, L]`` soil temperature in degC (NaN where unknown); ``band``
    ``[U]`` band index of each unit; ``month`` ``[T]`` calendar month 1..12 of each time step.
    """

    trainable = False
    needs_dynamic: bool = False
    """True: ``fit`` and ``predict_series`` also take ``dynamic=`` ``[U, T, F]`` (the run's
    inputs in physical units), and ``fit`` ``dynamic_names=`` and ``train_months=`` ``[T]``."""

    def fit(self, target: torch.Tensor, band: torch.Tensor, month: torch.Tensor) -> Baseline:
        """Fit from the training years' series (``target`` holds NaN outside them)."""
        return self

    @abc.abstractmethod
    def predict_series(self, target: torch.Tensor, band: torch.Tensor, month: torch.Tensor,
                       unit: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Predict ``[N, L]`` degC for windows ``(unit[n], last[n])``, target month ``last + 1``."""

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        raise ConfigError(
            f"model {self.name!r} is a baseline: it predicts from the target series "
            "(Baseline.predict_series), not from normalised feature windows"
        )
