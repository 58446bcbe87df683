"""``gru``: a stacked gated recurrent unit network; the last step's state predicts the 4 layers."""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from permaplug.core.model import Model, ModelDims
from permaplug.plugins.models._context import BandContext


class GRUModel(Model):
    """GRU over the window (``[B, W, F]`` -> ``[B, n_layers]``, normalised degC)."""

    name = "gru"
    description = "Gated recurrent unit network (stacked GRU, last hidden state -> linear head)"
    default_hparams: ClassVar[dict[str, Any]] = {"hidden_size": 64, "num_layers": 2, "dropout": 0.1}

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        hp = self.hparams
        self.context = BandContext(dims)
        self.rnn = torch.nn.GRU(
            self.context.n_out, int(hp["hidden_size"]), num_layers=int(hp["num_layers"]),
            batch_first=True, dropout=float(hp["dropout"]) if int(hp["num_layers"]) > 1 else 0.0,
        )
        self.head = torch.nn.Linear(int(hp["hidden_size"]), dims.n_layers)

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.context(x, band, static))
        return self.head(out[:, -1])
