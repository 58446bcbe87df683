"""Built-in source plugins, registered through the `permaplug` entry-point group.

Registered by import path (imported when first used), so that loading the registry imports
no xarray.
"""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl

SOURCES: dict[str, str] = {
    "climate-reanalyzer": "permaplug.plugins.sources.climate_reanalyzer:ClimateReanalyzerSource",
    "era5land": "permaplug.plugins.sources.era5land:ERA5LandSource",
    "cmip": "permaplug.plugins.sources.cmip:CMIPSource",
    "usgs-lithology": "permaplug.plugins.sources.usgs_lithology:USGSLithologySource",
    "openlandmap": "permaplug.plugins.sources.openlandmap:OpenLandMapSource",
    "station-soil-temperature": "permaplug.plugins.sources.station_soil:"
                                "StationSoilTemperatureSource",
}
"""Source name -> class import path."""


@hookimpl
def register_sources(register):
    """Register the built-in sources."""
    for name, target in SOURCES.items():
        register(target, name=name)
