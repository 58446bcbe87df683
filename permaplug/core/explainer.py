"""The Explainer contract: attribute a trained model's predictions to its input features."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import xarray as xr


@dataclass
class ExplainInputs:
    """A set of windows in model space (normalised), as the model's ``forward`` takes them.

    ``x``: ``[N, W, F]``; ``band``: ``[N]`` (int64); ``static``: ``[N, S]``.
    """

    x: torch.Tensor
    band: torch.Tensor
    static: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


class Explainer(abc.ABC):
    """Base class of explainer plugins.

    ``explain(model, background, explained, dynamic_names, static_names)`` returns an
    :class:`xarray.Dataset` with

    * ``dynamic``: dims ``(sample, step, feature, layer)`` -- attribution of each dynamic feature
      at each of the window's ``W`` steps to each output layer (degC in normalised units);
    * ``static``: dims ``(sample, static_feature, layer)``;
    * ``expected_value``: dims ``(layer,)``; ``prediction``: dims ``(sample, layer)``;

    so that ``dynamic.sum((step, feature)) + static.sum(static_feature) + expected_value`` is
    (approximately) ``prediction``. The additivity gap is reported by the caller.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def prepare(self) -> None:
        """Load what :meth:`explain` needs (e.g. import a heavy library) ahead of the first
        call; optional. ``permaplug run`` calls it in its explanation process while the
        networks train, so that the explanation starts at once when they are saved."""

    @abc.abstractmethod
    def explain(
        self,
        model: torch.nn.Module,
        background: ExplainInputs,
        explained: ExplainInputs,
        dynamic_names: list[str],
        static_names: list[str],
    ) -> xr.Dataset:
        """Attributions of ``explained`` against ``background`` (see the class docstring)."""
