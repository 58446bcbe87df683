"""``conv1dlstm``: 1-D convolutions extract local temporal patterns, an LSTM reads them in order."""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from permaplug.core.model import Model, ModelDims
from permaplug.plugins.models._context import BandContext


class Conv1DLSTMModel(Model):
    """Conv1d (same length, ReLU) then LSTM (``[B, W, F]`` -> ``[B, n_layers]``, normalised)."""

    name = "conv1dlstm"
    description = "1-D convolution front end followed by an LSTM (last hidden state -> head)"
    default_hparams: ClassVar[dict[str, Any]] = {"filters": 64, "kernel_size": 3, "hidden_size": 64, "num_layers": 1,
                       "dropout": 0.1}

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        hp = self.hparams
        k = int(hp["kernel_size"])
        self.context = BandContext(dims)
        # causal: pad on the left only, so step t sees months <= t
        self.pad = torch.nn.ConstantPad1d((k - 1, 0), 0.0)
        self.conv = torch.nn.Conv1d(self.context.n_out, int(hp["filters"]), k)
        self.dropout = torch.nn.Dropout(float(hp["dropout"]))
        self.rnn = torch.nn.LSTM(int(hp["filters"]), int(hp["hidden_size"]),
                                 num_layers=int(hp["num_layers"]), batch_first=True)
        self.head = torch.nn.Linear(int(hp["hidden_size"]), dims.n_layers)

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        h = self.context(x, band, static).transpose(1, 2)  # [B, C, W]
        h = self.dropout(torch.relu(self.conv(self.pad(h)))).transpose(1, 2)  # [B, W, filters]
        out, _ = self.rnn(h)
        return self.head(out[:, -1])
