"""The Corrector contract: bias-correct climate-model series against the reanalysis."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr

from permaplug.core.atomic import atomic_path


class Corrector(abc.ABC):
    """Base class of bias-correction plugins.

    ``fit(model_hist, obs_hist)`` learns the correction from the climate model's series and the
    reanalysis over a common calibration period (both canonical datasets, dims ``(time, band)``
    or ``(time, lat, lon)``, same variables and units). ``apply(scenario)`` returns the corrected
    scenario (dims as given, e.g. ``(scenario, time, band)``), keeping the input's attributes and
    appending to ``history``.

    The fitted state is an :class:`xarray.Dataset` (``state()``), saved as NetCDF and restored by
    ``from_state`` -- never pickle.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def fit(self, model_hist: xr.Dataset, obs_hist: xr.Dataset) -> Corrector:
        """Learn the correction; return ``self``."""

    @abc.abstractmethod
    def apply(self, scenario: xr.Dataset) -> xr.Dataset:
        """The corrected ``scenario`` (same dims, variables and units)."""

    @abc.abstractmethod
    def state(self) -> xr.Dataset:
        """The fitted state as a dataset (options go into ``attrs``)."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls, state: xr.Dataset) -> Corrector:
        """A fitted corrector rebuilt from :meth:`state`."""

    def save(self, path: Path) -> Path:
        """Write the fitted state to NetCDF atomically."""
        with atomic_path(Path(path)) as tmp:
            self.state().to_netcdf(tmp)
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> Corrector:
        with xr.open_dataset(path) as ds:
            return cls.from_state(ds.load())
