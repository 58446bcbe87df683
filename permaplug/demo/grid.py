"""The demo's grids: a regular lat/lon grid over mainland Alaska and the IPSL-CM5A-MR model grid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.data.region import alaska_mask

IPSL_NLAT, IPSL_NLON = 143, 144
"""IPSL-CM5A-MR atmosphere grid: 143 latitudes pole to pole (1.2676 deg), 144 longitudes."""
MODEL_BOX = (57.0, 73.0, 185.0, 225.0)
"""Latitude and longitude (0..360) span of the model cells written for the demo."""


@dataclass(frozen=True)
class DemoGrid:
    """A regular grid (latitude descending, like ERA5-Land) and its land cells.

    ``lat`` (nlat,) and ``lon`` (nlon,) are cell centres in degrees (lon -180..180); ``mask``
    (nlat, nlon) is True for cells inside mainland Alaska and the six bands.
    """

    lat: np.ndarray
    lon: np.ndarray
    mask: np.ndarray
    resolution: float

    @property
    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the land cells (each (ncell,))."""
        return np.nonzero(self.mask)

    @property
    def cell_lat(self) -> np.ndarray:
        return self.lat[self.index[0]]

    @property
    def cell_lon(self) -> np.ndarray:
        return self.lon[self.index[1]]

    @property
    def ncell(self) -> int:
        return int(self.mask.sum())

    @property
    def band(self) -> np.ndarray:
        """Band index (0..5) of each land cell."""
        return schema.band_of_latitude(self.cell_lat)

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Scatter (..., ncell) values onto (..., nlat, nlon); NaN outside the land cells."""
        out = np.full(values.shape[:-1] + self.mask.shape, np.nan, dtype=values.dtype)
        rows, cols = self.index
        out[..., rows, cols] = values
        return out


def _grid(resolution: float) -> DemoGrid:
    lat0, lat1 = schema.BAND_EDGES[0], schema.BAND_EDGES[-1]
    lon0, lon1 = schema.LON_RANGE
    nlat = int(np.floor((lat1 - lat0) / resolution))
    nlon = int(np.floor((lon1 - lon0) / resolution))
    lat = lat1 - resolution * (np.arange(nlat) + 0.5) - 0.5 * ((lat1 - lat0) - nlat * resolution)
    lon = lon0 + resolution * (np.arange(nlon) + 0.5) + 0.5 * ((lon1 - lon0) - nlon * resolution)
    mask = alaska_mask(lat[:, None], lon[None, :]) & (schema.band_of_latitude(lat)[:, None] >= 0)
    return DemoGrid(lat=np.round(lat, 6), lon=np.round(lon, 6), mask=mask, resolution=resolution)


def demo_grid(resolution: float = 0.5, n_cells: int | None = None) -> DemoGrid:
    """The demo grid at ``resolution`` degrees, or at the resolution giving ~``n_cells`` land cells.

    Raises ConfigError if a band ends up without land cells (resolution too coarse).
    """
    if n_cells is not None:
        if n_cells < 12:
            raise ConfigError(f"n_cells={n_cells}: need at least 12 land cells (two per band)")
        ref = _grid(0.5)
        resolution = 0.5 * np.sqrt(ref.ncell / n_cells)
        for _ in range(4):  # refine: the land count is not exactly proportional to 1/res^2
            g = _grid(resolution)
            resolution *= np.sqrt(g.ncell / n_cells)
        resolution = float(np.round(resolution, 5))
    if not 0.01 <= resolution <= 2.0:
        raise ConfigError(f"resolution={resolution}: use 0.01 to 2 degrees")
    grid = _grid(resolution)
    present = set(grid.band.tolist())
    if present != set(range(schema.N_BANDS)):
        raise ConfigError(f"resolution={resolution}: bands {sorted(set(range(6)) - present)} "
                          "have no land cell; use a finer resolution")
    return grid


def ipsl_grid() -> tuple[np.ndarray, np.ndarray]:
    """Latitudes (ascending) and longitudes (0..360) of the IPSL-CM5A-MR cells around Alaska."""
    lat = np.linspace(-90.0, 90.0, IPSL_NLAT)
    lon = np.arange(IPSL_NLON) * 2.5
    la0, la1, lo0, lo1 = MODEL_BOX
    return lat[(lat >= la0) & (lat <= la1)], lon[(lon >= lo0) & (lon <= lo1)]
