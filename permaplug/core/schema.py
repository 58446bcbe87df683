"""The canonical schema: variable names, units, bands, layers, default features. One place.

Every source converts its provider's names and units to these; everything downstream imports
them from here. Conventions (those of ERA5-Land):

* time: monthly, stamped at the first day of the month (``numpy.datetime64``, proleptic
  Gregorian once model calendars are decoded);
* accumulated quantities are **monthly totals**: precipitation and snowfall in mm (kg m-2) per
  month, radiation and heat fluxes in J m-2 per month;
* turbulent heat fluxes are **positive downward** (into the surface), as in ERA5-Land;
* temperatures in degC, soil water as volumetric fraction (m3 m-3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the two functions that use it (a fast command line)
    import numpy as np


@dataclass(frozen=True)
class Variable:
    """A canonical variable: its short name, units, CF standard name and description."""

    name: str
    units: str
    standard_name: str
    long_name: str
    accumulated: bool = False  # True: a monthly total (cell_methods "time: sum")
    kind: str = "dynamic"  # dynamic | target | static | derived


def _v(*args, **kw) -> Variable:
    return Variable(*args, **kw)


LAYERS: tuple[tuple[float, float], ...] = ((0.0, 0.07), (0.07, 0.28), (0.28, 1.00), (1.00, 2.89))
"""ERA5-Land soil layers, top and bottom depth in metres."""
LAYER_MIDPOINTS_M: tuple[float, ...] = tuple((a + b) / 2 for a, b in LAYERS)
N_LAYERS = len(LAYERS)

VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        _v("t2m", "degC", "air_temperature", "2 m air temperature"),
        _v("skt", "degC", "surface_temperature", "skin temperature"),
        _v("tp", "mm", "precipitation_amount", "total precipitation (monthly total)", True),
        _v("sf", "mm", "snowfall_amount", "snowfall, water equivalent (monthly total)", True),
        _v("strd", "J m-2", "integral_wrt_time_of_surface_downwelling_longwave_flux_in_air",
           "surface thermal radiation downwards (monthly total)", True),
        _v("ssrd", "J m-2", "integral_wrt_time_of_surface_downwelling_shortwave_flux_in_air",
           "surface solar radiation downwards (monthly total)", True),
        _v("slhf", "J m-2", "integral_wrt_time_of_surface_downward_latent_heat_flux",
           "surface latent heat flux, positive downward (monthly total)", True),
        _v("sshf", "J m-2", "integral_wrt_time_of_surface_downward_sensible_heat_flux",
           "surface sensible heat flux, positive downward (monthly total)", True),
        *[
            _v(f"swvl{i}", "m3 m-3", "volume_fraction_of_condensed_water_in_soil",
               f"volumetric soil water, layer {i} ({a:g}-{b:g} m)")
            for i, (a, b) in enumerate(LAYERS, 1)
        ],
        *[
            _v(f"stl{i}", "degC", "soil_temperature", f"soil temperature, layer {i} ({a:g}-{b:g} m)",
               kind="target")
            for i, (a, b) in enumerate(LAYERS, 1)
        ],
        _v("mrso", "kg m-2", "soil_moisture_content", "total soil water (climate models' mrso)"),
        _v("mrsos", "kg m-2", "moisture_content_of_soil_layer",
           "soil water in the top 0.1 m (climate models' mrsos)"),
        _v("year", "1", "", "calendar year", kind="derived"),
        _v("month_sin", "1", "", "sin(2 pi month / 12)", kind="derived"),
        _v("month_cos", "1", "", "cos(2 pi month / 12)", kind="derived"),
        _v("z", "1", "", "scenario signal: |z~| z~ of the window-mean standardised thermal radiation",
           kind="derived"),
    ]
}

TARGETS: tuple[str, ...] = ("stl1", "stl2", "stl3", "stl4")
FORCING: tuple[str, ...] = ("t2m", "skt", "tp", "sf", "strd", "ssrd", "slhf", "sshf")
SOIL_WATER: tuple[str, ...] = ("swvl1", "swvl2", "swvl3", "swvl4")
CALENDAR_FEATURES: tuple[str, ...] = ("year", "month_sin", "month_cos")
DYNAMIC_FEATURES: tuple[str, ...] = FORCING + SOIL_WATER + CALENDAR_FEATURES
"""Per-month model inputs of the paper, in order (z is appended per window when enabled)."""

LITHOLOGY_CLASSES: tuple[str, ...] = (
    "water", "unconsolidated", "glacier", "volcanic", "melange",
    "plutonic", "sedimentary", "metamorphic", "unknown",
)
"""The nine lithology classes of the paper (USGS Geologic Map of Alaska, SIM 3340)."""

for _c in LITHOLOGY_CLASSES:
    VARIABLES[f"lith_{_c}"] = Variable(f"lith_{_c}", "percent", "", f"area share of {_c} lithology",
                                       kind="static")
for _i in range(1, N_LAYERS + 1):
    VARIABLES[f"bdod_l{_i}"] = Variable(f"bdod_l{_i}", "kg m-3", "soil_bulk_density",
                                        f"bulk density, layer {_i}", kind="static")
    VARIABLES[f"soc_l{_i}"] = Variable(f"soc_l{_i}", "g kg-1", "",
                                       f"soil organic carbon content, layer {_i}", kind="static")

STATIC_FEATURES: tuple[str, ...] = (
    tuple(f"lith_{c}" for c in LITHOLOGY_CLASSES)
    + tuple(f"bdod_l{i}" for i in range(1, N_LAYERS + 1))
    + tuple(f"soc_l{i}" for i in range(1, N_LAYERS + 1))
)

VARIABLES["lat"] = Variable("lat", "degrees_north", "latitude", "latitude of the grid cell centre",
                            kind="static")
GRID_STATIC_FEATURES: tuple[str, ...] = ("lat",)
"""Per-cell coordinates that are static inputs in gridded mode only (issue 8)."""

# --- latitude bands -----------------------------------------------------------------------
BAND_EDGES: tuple[float, ...] = (
    59.2632802, 61.2755545, 63.2878288, 65.3001031, 67.3123774, 69.3246517, 71.336926,
)
"""Edges (degrees N) of the paper's six 2.0122743 deg latitude bands over mainland Alaska."""
N_BANDS = len(BAND_EDGES) - 1
LON_RANGE: tuple[float, float] = (-168.0, -141.0)
"""Longitudes (degrees E, -180..180) of the paper's Alaska extraction."""

WINDOW = 24
"""Months per input window (paper)."""
BAND_EMBEDDING_SIZE = 4
TRAIN_YEARS: tuple[int, int] = (2001, 2018)
TEST_YEARS: tuple[int, int] = (2019, 2023)

# --- provenance ---------------------------------------------------------------------------
DATA_LABEL_ATTR = "permaplug_data"
"""Dataset attribute naming where data came from, e.g. 'demo emulator' or 'ERA5-Land (real)'.
Every output (metrics, tables, figure titles, reports) repeats it as ``data: <label>``."""
DEMO_LABEL = "demo emulator"


def band_of_latitude(lat: np.ndarray | float) -> np.ndarray:
    """Band index (0..5) of each latitude; -1 outside the six bands. Lower edge inclusive."""
    import numpy as np

    lat = np.asarray(lat, dtype=float)
    idx = np.searchsorted(np.asarray(BAND_EDGES), lat, side="right") - 1
    return np.where((lat >= BAND_EDGES[0]) & (lat < BAND_EDGES[-1]), idx, -1)


def band_coords() -> dict[str, tuple[str, np.ndarray]]:
    """Coordinates for a ``band`` dimension: index plus lower/upper edge (degrees N)."""
    import numpy as np

    edges = np.asarray(BAND_EDGES)
    return {
        "band": ("band", np.arange(N_BANDS)),
        "lat_min": ("band", edges[:-1]),
        "lat_max": ("band", edges[1:]),
    }


def cf_attrs(name: str) -> dict[str, str]:
    """CF attributes for a canonical variable (units, standard_name, long_name, cell_methods)."""
    v = VARIABLES[name]
    attrs = {"units": v.units, "long_name": v.long_name}
    if v.standard_name:
        attrs["standard_name"] = v.standard_name
    if v.accumulated:
        attrs["cell_methods"] = "time: sum (monthly total)"
    return attrs


def data_label(obj) -> str:
    """The ``data: ...`` label of a dataset (or 'unknown data')."""
    return getattr(obj, "attrs", {}).get(DATA_LABEL_ATTR, "unknown data")
