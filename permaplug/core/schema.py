"""The canonical schema: bands, layers, window, data labels and the conventions of variables.

Which variables exist is not listed here: sources and derived features declare them
(:mod:`permaplug.core.variables`; the registry holds their union, :func:`cf_attrs` looks them
up). The paper's default inputs live in :mod:`permaplug.data.features`. Conventions every
declaration follows (those of ERA5-Land):

* time: monthly, stamped at the first day of the month (``numpy.datetime64``, proleptic
  Gregorian once model calendars are decoded);
* accumulated quantities are **monthly totals**: precipitation and snowfall in mm (kg m-2) per
  month, radiation and heat fluxes in J m-2 per month;
* turbulent heat fluxes are **positive downward** (into the surface), as in ERA5-Land;
* temperatures in degC, soil water as volumetric fraction (m3 m-3).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the two functions that use it (a fast command line)
    import numpy as np

from permaplug.core.variables import Variable

__all__ = ["Variable"]


LAYERS: tuple[tuple[float, float], ...] = ((0.0, 0.07), (0.07, 0.28), (0.28, 1.00), (1.00, 2.89))
"""ERA5-Land soil layers, top and bottom depth in metres."""
LAYER_MIDPOINTS_M: tuple[float, ...] = tuple((a + b) / 2 for a, b in LAYERS)
N_LAYERS = len(LAYERS)

TARGETS: tuple[str, ...] = tuple(f"stl{i}" for i in range(1, N_LAYERS + 1))
"""Soil temperature of each layer (degC): what the models predict, one output per layer."""
SOIL_WATER: tuple[str, ...] = tuple(f"swvl{i}" for i in range(1, N_LAYERS + 1))
"""Volumetric soil water of each layer (m3 m-3), e.g. from splitting climate models' mrso."""

LITHOLOGY_CLASSES: tuple[str, ...] = (
    "water", "unconsolidated", "glacier", "volcanic", "melange",
    "plutonic", "sedimentary", "metamorphic", "unknown",
)
"""The nine lithology classes of the paper (USGS Geologic Map of Alaska, SIM 3340)."""

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
    """CF attributes (units, standard_name, long_name, cell_methods) of a declared variable.

    Looked up in the plugin registry (what sources and features declare); DataError when no
    plugin declares ``name``, VariableConflictError when two declare it with different units.
    """
    from permaplug.core.errors import DataError
    from permaplug.core.plugins import get_registry

    try:
        return get_registry().variable(name).cf_attrs()
    except KeyError:
        raise DataError(f"variable {name!r}: no source or derived feature declares it "
                        "(see 'permaplug plugins --variables')") from None


def data_label(obj) -> str:
    """The ``data: ...`` label of a dataset (or 'unknown data')."""
    return getattr(obj, "attrs", {}).get(DATA_LABEL_ATTR, "unknown data")
