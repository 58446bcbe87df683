"""``seasonal-naive`` baseline: next month's soil temperature equals the same month a year earlier."""
from __future__ import annotations

import torch

from permaplug.training.baseline import Baseline


class SeasonalNaive(Baseline):
    """``y(t + 1) = y(t + 1 - 12)`` per unit and layer; month ``t - 11`` lies inside the window."""

    name = "seasonal-naive"
    description = "Baseline: the same calendar month one year earlier (t-11) predicts t+1"

    def predict_series(self, target, band, month, unit, last) -> torch.Tensor:
        return target[unit, last - 11]
