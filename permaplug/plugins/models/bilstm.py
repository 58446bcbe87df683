"""``bilstm``: a bidirectional LSTM; both directions' summaries of the window predict the layers."""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from permaplug.core.model import Model, ModelDims
from permaplug.plugins.models._context import BandContext


class BiLSTMModel(Model):
    """Bidirectional LSTM (``[B, W, F]`` -> ``[B, n_layers]``, normalised degC).

    The head reads the forward direction's state at the last month and the backward
    direction's state at the first month (each has then seen the whole window).
    """

    name = "bilstm"
    description = "Bidirectional LSTM (final forward and backward states -> linear head)"
    default_hparams: ClassVar[dict[str, Any]] = {"hidden_size": 64, "num_layers": 1, "dropout": 0.0}

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        hp = self.hparams
        self.hidden = int(hp["hidden_size"])
        self.context = BandContext(dims)
        self.rnn = torch.nn.LSTM(
            self.context.n_out, self.hidden, num_layers=int(hp["num_layers"]), batch_first=True,
            bidirectional=True,
            dropout=float(hp["dropout"]) if int(hp["num_layers"]) > 1 else 0.0,
        )
        self.head = torch.nn.Linear(2 * self.hidden, dims.n_layers)

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.context(x, band, static))
        summary = torch.cat([out[:, -1, : self.hidden], out[:, 0, self.hidden :]], dim=-1)
        return self.head(summary)
