"""``transformer``: a Transformer encoder with sinusoidal positional encoding over the window."""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from permaplug.core.errors import ConfigError
from permaplug.core.model import Model, ModelDims
from permaplug.plugins.models._context import BandContext


def positional_encoding(length: int, d_model: int) -> torch.Tensor:
    """Sinusoidal positional encoding ``[length, d_model]`` (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
    return pe


class TransformerModel(Model):
    """Linear projection + positional encoding + encoder; the last month's token -> head.

    ``[B, W, F]`` -> ``[B, n_layers]`` (normalised degC). ``d_model`` must divide by ``nhead``.
    """

    name = "transformer"
    description = "Transformer encoder with sinusoidal positional encoding (last token -> head)"
    default_hparams: ClassVar[dict[str, Any]] = {"d_model": 64, "nhead": 4, "num_layers": 2, "dim_feedforward": 128,
                       "dropout": 0.1}

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        hp = self.hparams
        d = int(hp["d_model"])
        if d % int(hp["nhead"]):
            raise ConfigError(f"model 'transformer': d_model={d} is not a multiple of nhead={hp['nhead']}")
        self.context = BandContext(dims)
        self.project = torch.nn.Linear(self.context.n_out, d)
        self.register_buffer("pe", positional_encoding(dims.window, d), persistent=False)
        layer = torch.nn.TransformerEncoderLayer(
            d, int(hp["nhead"]), int(hp["dim_feedforward"]), float(hp["dropout"]), batch_first=True,
        )
        self.encoder = torch.nn.TransformerEncoder(layer, int(hp["num_layers"]),
                                                   enable_nested_tensor=False)
        self.head = torch.nn.Linear(d, dims.n_layers)

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        h = self.project(self.context(x, band, static))
        w = h.shape[1]
        pe = self.pe if w == self.pe.shape[0] else positional_encoding(w, h.shape[-1]).to(h)
        h = self.encoder(h + pe)
        return self.head(h[:, -1])
