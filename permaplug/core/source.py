"""The Source contract: read a provider's files into the canonical schema."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr

from permaplug.core.errors import FetchError


class Source(abc.ABC):
    """Base class of data-source plugins.

    A source is built from a catalog entry's ``options`` (paths already resolved against the
    catalog folder) and returns an :class:`xarray.Dataset` in the canonical schema
    (:mod:`permaplug.core.schema`):

    * ``role = "reanalysis"``: monthly, dims ``(time, band)`` -- or ``(time, lat, lon)`` with
      ``spatial="grid"`` -- holding canonical dynamic variables and targets (``stl1..4``);
    * ``role = "scenario"``: dims ``(scenario, time, band)`` (or lat/lon), each scenario's series
      being the historical run continued by that scenario; attribute ``historical_end``
      (``YYYY-MM``) marks the last month of the historical run;
    * ``role = "static"``: dims ``(band,)`` (or ``(lat, lon)``) of static features.

    Every dataset carries ``attrs[DATA_LABEL_ATTR]`` (e.g. ``"demo emulator"``) and a
    ``provenance`` attribute naming the files read.
    """

    name: ClassVar[str] = ""
    role: ClassVar[str] = "reanalysis"
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def open(self) -> xr.Dataset:
        """Read the data and return it in the canonical schema (lazy where possible)."""

    @classmethod
    def fetch(cls, out: Path, **request: Any) -> list[Path]:
        """Download raw files from the provider into ``out``; return the paths written."""
        raise FetchError(f"source {cls.name!r} has no download support")
