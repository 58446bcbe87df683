"""Built-in corrector plugins, registered through the `permaplug` entry-point group.

Registered by import path (imported when first used), so that loading the registry imports
neither xarray nor xsdba.
"""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl

CORRECTORS: dict[str, str] = {
    "qm": "permaplug.plugins.correctors.qm:QuantileMapping",
    "qdm": "permaplug.plugins.correctors.qdm:QuantileDeltaMapping",
    "dqm": "permaplug.plugins.correctors.dqm:DetrendedQM",
    "none": "permaplug.plugins.correctors.none:NoCorrection",
}
"""Corrector name -> class import path."""


@hookimpl
def register_correctors(register):
    """Register the built-in correctors: qm (default), qdm, dqm, none."""
    for name, target in CORRECTORS.items():
        register(target, name=name)
