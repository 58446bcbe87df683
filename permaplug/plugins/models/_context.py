"""What every built-in network does to its inputs first: band embedding and static features.

Each window's band index goes through a learnable embedding of size ``dims.band_embedding``
(paper: 4); the embedding and the window's static features are repeated along the window and
concatenated to the dynamic features, so a sequence layer sees ``[B, W, F + E + S]``.
"""
from __future__ import annotations

import torch

from permaplug.core.model import ModelDims


class BandContext(torch.nn.Module):
    """``(x [B,W,F], band [B], static [B,S]) -> [B, W, F + E + S]`` (float32)."""

    def __init__(self, dims: ModelDims) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(dims.n_bands, dims.band_embedding)
        self.n_out = dims.n_dynamic + dims.band_embedding + dims.n_static

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        b, w, _ = x.shape
        parts = [x, self.embedding(band).unsqueeze(1).expand(b, w, -1)]
        if static.shape[-1]:
            parts.append(static.unsqueeze(1).expand(b, w, -1))
        return torch.cat(parts, dim=-1)
