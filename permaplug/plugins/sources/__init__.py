"""Built-in source plugins, registered through the `permaplug` entry-point group."""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl


@hookimpl
def register_sources(register):
    """Register the built-in sources."""
    from permaplug.plugins.sources.climate_reanalyzer import ClimateReanalyzerSource
    from permaplug.plugins.sources.cmip import CMIPSource
    from permaplug.plugins.sources.era5land import ERA5LandSource
    from permaplug.plugins.sources.openlandmap import OpenLandMapSource
    from permaplug.plugins.sources.usgs_lithology import USGSLithologySource

    register(ClimateReanalyzerSource)
    register(ERA5LandSource)
    register(CMIPSource)
    register(USGSLithologySource)
    register(OpenLandMapSource)
