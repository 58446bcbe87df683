"""``climatology`` baseline: the training years' mean per band, layer and calendar month."""
from __future__ import annotations

import torch

from permaplug.core.errors import DataError
from permaplug.core.model import ModelDims
from permaplug.training.baseline import Baseline


class Climatology(Baseline):
    """Mean soil temperature per band, calendar month and layer over the training years.

    State: buffer ``clim`` ``[n_bands, 12, n_layers]`` degC. In gridded mode every cell of a
    band shares its band's climatology; in site mode the unit is the site's embedding index. A
    layer never observed in the training years stays NaN (not predicted, not scored).
    """

    name = "climatology"
    description = "Baseline: mean per band, layer and calendar month over the training years"

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        self.register_buffer("clim", torch.full((dims.n_bands, 12, dims.n_layers), float("nan")))

    def fit(self, target, band, month) -> Climatology:
        clim = torch.full_like(self.clim, float("nan"))
        for b in range(self.dims.n_bands):
            rows = target[band == b]  # [u, T, L]
            for m in range(12):
                vals = rows[:, month == m + 1]  # [u, t, L]
                ok = ~torch.isnan(vals)
                n = ok.sum(dim=(0, 1))
                s = torch.where(ok, vals, torch.zeros_like(vals)).sum(dim=(0, 1))
                clim[b, m] = torch.where(n > 0, s / n.clamp(min=1), torch.nan)
        present = torch.unique(band)
        observed = ~torch.isnan(target).all(dim=0).all(dim=0)  # [L] layers with any data
        if torch.isnan(clim[present][..., observed]).any():
            raise DataError("climatology: some band has a calendar month with no training data")
        self.clim.copy_(clim)
        return self

    def predict_series(self, target, band, month, unit, last) -> torch.Tensor:
        return self.clim[band[unit], month[last + 1] - 1]
