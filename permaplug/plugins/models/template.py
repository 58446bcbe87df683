"""How to add a model: copy this file, rename the class and ``name``, register it.

This module is NOT registered (it is an example). A third-party package registers its model
through its own entry point::

    # pyproject.toml
    [project.entry-points.permaplug]
    my_mlp = "my_package.mlp"

    # my_package/mlp.py
    import permaplug

    @permaplug.hookimpl
    def register_models(register):
        register(WindowMLP)

after which ``permaplug run --model window-mlp`` trains, evaluates and checkpoints it like a
built-in network. The contract (``permaplug.core.model``): build from ``ModelDims`` and
hyper-parameters that override ``default_hparams``; ``forward(x [B,W,F], band [B], static
[B,S]) -> [B, n_layers]`` in normalised units; carry a band embedding of size
``dims.band_embedding``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from permaplug.core.model import Model, ModelDims
from permaplug.plugins.models._context import BandContext


class WindowMLP(Model):
    """Flatten the window (with band embedding and static features) and apply an MLP."""

    name = "window-mlp"
    description = "Example: a multilayer perceptron over the flattened window"
    default_hparams: ClassVar[dict[str, Any]] = {"hidden_size": 64}

    def __init__(self, dims: ModelDims, **hparams) -> None:
        super().__init__(dims, **hparams)
        self.context = BandContext(dims)
        hidden = int(self.hparams["hidden_size"])
        self.mlp = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(dims.window * self.context.n_out, hidden),
            torch.nn.ReLU(), torch.nn.Linear(hidden, dims.n_layers),
        )

    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.context(x, band, static))
