"""``persistence`` baseline: next month's soil temperature equals the last observed month's."""
from __future__ import annotations

import torch

from permaplug.training.baseline import Baseline


class Persistence(Baseline):
    """``y(t + 1) = y(t)`` per unit and layer (``t`` = the window's last input month)."""

    name = "persistence"
    description = "Baseline: the last observed month (t) predicts the next month (t+1)"

    def predict_series(self, target, band, month, unit, last) -> torch.Tensor:
        return target[unit, last]
