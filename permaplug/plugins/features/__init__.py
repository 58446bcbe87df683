"""Built-in derived features, registered through the `permaplug` entry-point group.

Registered by import path (imported when first used), so that loading the registry imports
no xarray.
"""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl

FEATURES: dict[str, str] = {
    "year": "permaplug.plugins.features.calendar:Year",
    "month_sin": "permaplug.plugins.features.calendar:MonthSin",
    "month_cos": "permaplug.plugins.features.calendar:MonthCos",
    "z": "permaplug.plugins.features.signal:ScenarioSignal",
    "snowfall_t": "permaplug.plugins.features.forcing:SnowfallSplit",
    "tdd": "permaplug.plugins.features.forcing:ThawingDegreeDays",
    "fdd": "permaplug.plugins.features.forcing:FreezingDegreeDays",
    "snowpack_dd": "permaplug.plugins.features.forcing:DegreeDaySnowpack",
    "t2m_mean12": "permaplug.plugins.features.forcing:T2mMean12",
    "t2m_mean24": "permaplug.plugins.features.forcing:T2mMean24",
}
"""Feature name -> class import path."""


@hookimpl
def register_features(register):
    """Register the built-in derived features (calendar, the scenario signal z, forcing)."""
    for name, target in FEATURES.items():
        register(target, name=name)
