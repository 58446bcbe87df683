"""Hook specifications: the five ways a plugin extends permaplug.

Every hook receives a ``register`` callback and calls it once per class it provides::

    import permaplug

    @permaplug.hookimpl
    def register_models(register):
        register(MyModel)

Classes (not instances) are registered: they are built later from a catalog entry or a run
configuration. Each class carries a unique ``name`` within its kind. A class whose module is
expensive to import can be registered by import path and name instead, and is imported the
first time it is used (the built-ins do this, so listing plugins imports no torch)::

    @permaplug.hookimpl
    def register_models(register):
        register("my_plugin.net:MyModel", name="my-model")
"""
from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("permaplug")
hookimpl = pluggy.HookimplMarker("permaplug")

Register = Callable[..., None]
"""``register(cls)`` or ``register("package.module:Class", name="x")``."""


@hookspec
def register_sources(register: Register) -> None:
    """Register :class:`permaplug.Source` subclasses (data readers, e.g. ``era5land``, ``cmip``)."""


@hookspec
def register_correctors(register: Register) -> None:
    """Register :class:`permaplug.Corrector` subclasses (bias correction, e.g. ``qm``, ``qdm``)."""


@hookspec
def register_models(register: Register) -> None:
    """Register :class:`permaplug.Model` subclasses (networks and baselines, e.g. ``gru``)."""


@hookspec
def register_explainers(register: Register) -> None:
    """Register :class:`permaplug.Explainer` subclasses (attributions, e.g. ``shap``)."""


@hookspec
def register_features(register: Register) -> None:
    """Register :class:`permaplug.Feature` subclasses: derived monthly inputs computed from
    other variables (e.g. ``month_sin``, ``z``). The same ``compute`` serves the historical table
    and every scenario, so history and projections agree on what a feature means."""


#: hook name -> plugin kind, in the order commands list them
HOOKS: dict[str, str] = {
    "register_sources": "source",
    "register_correctors": "corrector",
    "register_models": "model",
    "register_explainers": "explainer",
    "register_features": "feature",
}
