"""Built-in explainer plugins, registered through the `permaplug` entry-point group.

Registered by import path (imported when first used), so that loading the registry imports
neither torch nor shap.
"""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl

EXPLAINERS: dict[str, str] = {
    "shap": "permaplug.plugins.explainers.gradient:GradientShap",
    "kernel": "permaplug.plugins.explainers.kernel:KernelShap",
}
"""Explainer name -> class import path."""


@hookimpl
def register_explainers(register):
    """Register the built-in explainers: ``shap`` (default) and ``kernel``."""
    for name, target in EXPLAINERS.items():
        register(target, name=name)
