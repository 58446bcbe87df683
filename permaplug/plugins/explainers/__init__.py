"""Built-in explainer plugins, registered through the `permaplug` entry-point group."""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl


@hookimpl
def register_explainers(register):
    """Register the built-in explainers: ``shap`` (default) and ``kernel``."""
    from permaplug.plugins.explainers.gradient import GradientShap
    from permaplug.plugins.explainers.kernel import KernelShap

    register(GradientShap)
    register(KernelShap)
