"""permaplug: a pluggy-based deep-learning pipeline for Alaska's active-layer temperatures.

The plugin contracts are exported lazily (PEP 562): ``import permaplug`` imports nothing but
this module; ``permaplug.hookimpl`` imports pluggy, ``permaplug.Source`` no xarray, and
``permaplug.Model`` torch on first access (a model plugin needs it anyway).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from permaplug.core.corrector import Corrector
    from permaplug.core.explainer import Explainer, ExplainInputs
    from permaplug.core.feature import Feature
    from permaplug.core.hookspecs import hookimpl
    from permaplug.core.model import Model, ModelDims
    from permaplug.core.source import Source
    from permaplug.core.variables import Variable

_LAZY: dict[str, str] = {
    "Corrector": "permaplug.core.corrector",
    "Explainer": "permaplug.core.explainer",
    "ExplainInputs": "permaplug.core.explainer",
    "Feature": "permaplug.core.feature",
    "Model": "permaplug.core.model",
    "ModelDims": "permaplug.core.model",
    "Source": "permaplug.core.source",
    "hookimpl": "permaplug.core.hookspecs",
    "Variable": "permaplug.core.variables",
}
"""Exported name -> module defining it (imported on first access)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("permaplug")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata on first use
        globals()["__version__"] = value = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'permaplug' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "__version__"])


__all__ = [
    "Corrector",
    "ExplainInputs",
    "Explainer",
    "Feature",
    "Model",
    "ModelDims",
    "Source",
    "Variable",
    "__version__",
    "hookimpl",
]
