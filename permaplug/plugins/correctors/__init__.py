"""Built-in corrector plugins, registered through the `permaplug` entry-point group."""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl


@hookimpl
def register_correctors(register):
    """Register the built-in correctors: qm (default), qdm, dqm, none."""
    from permaplug.plugins.correctors.dqm import DetrendedQM
    from permaplug.plugins.correctors.none import NoCorrection
    from permaplug.plugins.correctors.qdm import QuantileDeltaMapping
    from permaplug.plugins.correctors.qm import QuantileMapping

    for cls in (QuantileMapping, QuantileDeltaMapping, DetrendedQM, NoCorrection):
        register(cls)
