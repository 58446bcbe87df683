"""The Model contract: a sequence network mapping windows of monthly features to layer temps.

Contract (written down once):

* built as ``Model(dims, **hparams)`` where ``dims`` is a :class:`ModelDims` and ``hparams``
  override ``default_hparams``;
* ``forward(x, band, static)`` with
  ``x``: float32 ``[B, W, F]`` -- ``W`` months (default 24) of ``F`` normalised dynamic features,
  oldest first; ``band``: int64 ``[B]`` -- band (0..n_bands-1) of each window;
  ``static``: float32 ``[B, S]`` -- normalised static features of the window's band or cell
  (``S`` may be 0);
  returns float32 ``[B, n_layers]`` -- normalised soil temperature of each layer in the month
  after the window;
* every network carries a learnable band embedding of size ``dims.band_embedding`` (paper: 4);
  ``dims.band_embedding == 0`` means the run's recipe turned band identity off (``physical``):
  the network must then not use ``band`` at all (an ``Embedding(n, 0)`` does that for free).

Baselines (persistence, climatology, seasonal-naive) set ``trainable = False``; they are fitted
from the training series instead of by gradient descent (see ``permaplug.training``).
"""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from permaplug.core.errors import ConfigError
from permaplug.core.schema import BAND_EMBEDDING_SIZE, N_BANDS, N_LAYERS, WINDOW


@dataclass(frozen=True)
class ModelDims:
    """The data's dimensions a model is built from."""

    n_dynamic: int
    n_static: int = 0
    n_bands: int = N_BANDS
    n_layers: int = N_LAYERS
    window: int = WINDOW
    band_embedding: int = BAND_EMBEDDING_SIZE

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Model(torch.nn.Module, metaclass=abc.ABCMeta):
    """Base class of model plugins (see the module docstring for the exact contract)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_hparams: ClassVar[dict[str, Any]] = {}
    trainable: ClassVar[bool] = True

    def __init__(self, dims: ModelDims, **hparams: Any) -> None:
        super().__init__()
        self.check_hparams(hparams)
        self.dims = dims
        self.hparams: dict[str, Any] = {**self.default_hparams, **hparams}

    @classmethod
    def check_hparams(cls, hparams: dict[str, Any]) -> None:
        """ConfigError (one line) for an unknown hyper-parameter, or a value whose type differs
        from its default's (an int default takes an int, a float default a number, a bool a
        bool, a str a str; a None default takes anything)."""
        unknown = set(hparams) - set(cls.default_hparams)
        if unknown:
            raise ConfigError(
                f"model {cls.name!r}: unknown hyper-parameter(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(cls.default_hparams)) or 'none'}"
            )
        for key, value in hparams.items():
            default = cls.default_hparams[key]
            if default is None:
                continue
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif isinstance(default, (list, tuple)):
                ok = isinstance(value, (list, tuple))
            else:
                ok = isinstance(value, type(default))
            if not ok:
                raise ConfigError(f"model {cls.name!r}: hyper-parameter {key!r} = {value!r} must "
                                  f"be {type(default).__name__} like its default {default!r}")

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, band: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, W, F]``, ``band`` ``[B]``, ``static`` ``[B, S]`` -> ``[B, 4]`` degC
        (normalised units; see the module docstring)."""
