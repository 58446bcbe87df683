"""``tcn``: a temporal convolutional network -- causal, dilated, residual 1-D convolutions."""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from permaplug.core.model import Model, ModelDims
from permaplug.plugins.models._context import BandContext


class _Block(torch.nn.Module):
    """Two causal dilated convolutions with ReLU and dropout, plus a residual connection."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = (kernel - 1) * dilation
        self.net = torch.nn.Sequential(
            torch.nn.ConstantPad1d((pad, 0), 0.0), torch.nn.Conv1d(c_in, c_out, kernel, dilation=dilation),
            torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.ConstantPad1d((pad, 0), 0.0), torch.nn.Conv1d(c_out, c_out, kernel, dilation=dilation),
            torch.nn.ReLU(), torch.nn.Dropout(dropout),
        )
        self.skip = torch.nn.Conv1d(c_in, c_out, 1) if c_in != c_out else torch.nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [B, C, W] -> [B, C_out, W]
        return torch.relu(self.net(h) + self.skip(h))


class TCNModel(Model):
    """TCN over the window (``[B, W, F]`` -> ``[B, n_layers]``, normalised degC).

    Dilations double per block (1, 2, 4, ...); with the defaults (kernel 3, 3 blocks of two
    convolutions) the last step's receptive field is 1 + 2 * 2 * (1 + 2 + 4) = 29 months, which
    covers the 24-month window.
    """

    name = "tcn"
    description = "Temporal convolutional network (causal dilated residual 1-D convolutions)"
    default_hparams: ClassVar[dict[str, Any]] = {"channels": 64, "kernel_size": 3, "levels": 3,
                                                 "dropout": 0.1}

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        hp = self.hparams
        self.context = BandContext(dims)
        c, k = int(hp["channels"]), int(hp["kernel_size"])
        blocks, c_in = [], self.context.n_out
        for level in range(int(hp["levels"])):
            blocks.append(_Block(c_in, c, k, 2**level, float(hp["dropout"])))
            c_in = c
        self.blocks = torch.nn.Sequential(*blocks)
        self.head = torch.nn.Linear(c, dims.n_layers)

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.context(x, band, static).transpose(1, 2))  # [B, C, W]
        return self.head(h[:, :, -1])
