"""Built-in derived features, registered through the `permaplug` entry-point group."""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl


@hookimpl
def register_features(register):
    """Register the built-in derived features (calendar and the scenario signal z)."""
    from permaplug.plugins.features.calendar import MonthCos, MonthSin, Year
    from permaplug.plugins.features.signal import ScenarioSignal

    register(Year)
    register(MonthSin)
    register(MonthCos)
    register(ScenarioSignal)
