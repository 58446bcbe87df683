"""The variables the built-in sources declare, in ERA5-Land's names and conventions.

Shared by ``era5land``, ``cmip`` and ``climate-reanalyzer`` (they convert to the same names
and units). Conventions: temperatures degC; ``tp``, ``sf`` mm per month (monthly totals);
``strd ssrd slhf sshf`` J m-2 per month (monthly totals), turbulent fluxes positive downward;
``swvl*`` m3 m-3; ``mrso mrsos`` kg m-2 (climate models' soil water, split into ``swvl*`` by
:mod:`permaplug.data.soilwater`).

A third-party source declares its own :class:`~permaplug.core.variables.Variable` objects the
same way; nothing here has to change for it.
"""
from __future__ import annotations

from permaplug.core.schema import LAYERS
from permaplug.core.variables import Variable


def _by_name(*variables: Variable) -> dict[str, Variable]:
    return {v.name: v for v in variables}


ERA5LAND: dict[str, Variable] = _by_name(
    Variable("t2m", "degC", "air_temperature", "2 m air temperature"),
    Variable("skt", "degC", "surface_temperature", "skin temperature"),
    Variable("tp", "mm", "precipitation_amount", "total precipitation (monthly total)",
             accumulated=True),
    Variable("sf", "mm", "snowfall_amount", "snowfall, water equivalent (monthly total)",
             accumulated=True),
    Variable("strd", "J m-2", "integral_wrt_time_of_surface_downwelling_longwave_flux_in_air",
             "surface thermal radiation downwards (monthly total)", accumulated=True),
    Variable("ssrd", "J m-2", "integral_wrt_time_of_surface_downwelling_shortwave_flux_in_air",
             "surface solar radiation downwards (monthly total)", accumulated=True),
    Variable("slhf", "J m-2", "integral_wrt_time_of_surface_downward_latent_heat_flux",
             "surface latent heat flux, positive downward (monthly total)", accumulated=True),
    Variable("sshf", "J m-2", "integral_wrt_time_of_surface_downward_sensible_heat_flux",
             "surface sensible heat flux, positive downward (monthly total)", accumulated=True),
    *[Variable(f"swvl{i}", "m3 m-3", "volume_fraction_of_condensed_water_in_soil",
               f"volumetric soil water, layer {i} ({a:g}-{b:g} m)")
      for i, (a, b) in enumerate(LAYERS, 1)],
    *[Variable(f"stl{i}", "degC", "soil_temperature",
               f"soil temperature, layer {i} ({a:g}-{b:g} m)", kind="target")
      for i, (a, b) in enumerate(LAYERS, 1)],
)
"""ERA5-Land monthly variables in permaplug's order (forcing, soil water, soil temperature)."""

CLIMATE_MODEL: dict[str, Variable] = _by_name(
    Variable("mrso", "kg m-2", "soil_moisture_content",
             "total soil water (climate models' mrso)"),
    Variable("mrsos", "kg m-2", "moisture_content_of_soil_layer",
             "soil water in the top 0.1 m (climate models' mrsos)"),
)
"""Climate-model soil water totals (split into ``swvl1..4`` for the scenario tables)."""

DEWPOINT = Variable("d2m", "degC", "dew_point_temperature", "2 m dew point temperature")
