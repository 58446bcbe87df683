"""permaplug: a pluggy-based deep-learning pipeline for Alaska's active-layer temperatures.

The plugin contracts are exported lazily (PEP 562): ``import permaplug`` and
``permaplug.hookimpl`` import neither torch nor xarray; ``permaplug.Model`` imports torch on
first access, as a model plugin needs it anyway.
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from permaplug.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from permaplug.core.corrector import Corrector
    from permaplug.core.explainer import Explainer, ExplainInputs
    from permaplug.core.model import Model, ModelDims
    from permaplug.core.source import Source

try:
    __version__ = version("permaplug")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_LAZY: dict[str, str] = {
    "Corrector": "permaplug.core.corrector",
    "Explainer": "permaplug.core.explainer",
    "ExplainInputs": "permaplug.core.explainer",
    "Model": "permaplug.core.model",
    "ModelDims": "permaplug.core.model",
    "Source": "permaplug.core.source",
}
"""Exported name -> module defining it (imported on first access)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'permaplug' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Corrector",
    "ExplainInputs",
    "Explainer",
    "Model",
    "ModelDims",
    "Source",
    "__version__",
    "hookimpl",
]
