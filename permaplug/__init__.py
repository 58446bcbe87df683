"""permaplug: a pluggy-based deep-learning pipeline for Alaska's active-layer temperatures."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from permaplug.core.corrector import Corrector
from permaplug.core.explainer import Explainer, ExplainInputs
from permaplug.core.hookspecs import hookimpl
from permaplug.core.model import Model, ModelDims
from permaplug.core.source import Source

try:
    __version__ = version("permaplug")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
