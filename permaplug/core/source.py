"""The Source contract: read a provider's files into the canonical schema."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from permaplug.core.errors import FetchError
from permaplug.core.variables import Variable

if TYPE_CHECKING:  # xarray/numpy are imported by the sources that use them, not by the contract
    import numpy as np
    import xarray as xr


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

    What a source provides is declared, not discovered: ``variables`` lists every variable the
    source can give (name, units, CF standard name, kind ``dynamic``/``static``/``target``;
    see :class:`permaplug.core.variables.Variable`), and :meth:`provides` narrows that list
    for one configured instance from its options alone, without reading data. The variables a
    run can use are the union of these declarations and the derived features'.

    Scenario sources also say how each variable relates to the reanalysis variable of the same
    name: ``scenario_notes`` (name -> how it is obtained, e.g. "CMIP tas, bias-corrected") and
    ``differs`` (name -> one line on why it does NOT mean what the reanalysis variable means).
    A run refuses, before training, to feed the projections a feature built on a ``differs``
    variable unless its recipe lists it in ``allow_inconsistent``
    (:mod:`permaplug.projection.consistency`).

    Two optional capabilities:

    * :meth:`open_cells` (static sources): the features sampled at given grid cells, used by
      gridded mode (``--spatial grid``); without it each cell gets its band's value;
    * :meth:`fetch` (download): a source that overrides it gets a ``permaplug fetch <name>``
      sub-command whose options are built from the method's signature.
    """

    name: ClassVar[str] = ""
    role: ClassVar[str] = "reanalysis"
    description: ClassVar[str] = ""
    variables: ClassVar[tuple[Variable, ...]] = ()
    scenario_notes: ClassVar[dict[str, str]] = {}
    differs: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        self.options = options

    def provides(self) -> tuple[Variable, ...]:
        """The variables this configured source gives (default: every declared one).

        Override to narrow the declaration from the options (e.g. a ``variables`` option);
        must not read data files (it is asked before a run reads anything).
        """
        return tuple(self.variables)

    @abc.abstractmethod
    def open(self) -> xr.Dataset:
        """Read the data and return it in the canonical schema (lazy where possible)."""

    def open_cells(self, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset | None:
        """Static sources: the features at ``N`` grid cells, or None (the default) when the
        source cannot sample per cell (the table then gives each cell its band's values).

        ``lat``, ``lon``: float ``[N]``, cell centres in degrees north / east (-180..180); the
        cells are the centres of a regular grid (the spacing is the smallest step between
        distinct values). Returns the same variables, units and attributes as :meth:`open`
        with dims ``(cell,)`` of length ``N`` in the given order (no ``cell`` coordinate needed).
        Options are those of :meth:`open` (``self.options``).
        """
        return None

    @classmethod
    def fetch(cls, out: Path, **request: Any) -> list[Path]:
        """Download raw files from the provider into ``out``; return the paths written.

        A source that overrides this gets the sub-command ``permaplug fetch <name>``:
        ``out`` becomes ``--out`` and every keyword parameter annotated
        ``Annotated[T, "help text"]`` an option (``T``: ``str``, ``int``, ``float``, ``bool``, a
        ``Literal`` of strings, or ``list[str]`` given comma-separated; ``T | None`` allowed);
        a parameter without a default is a required option. Other parameters (e.g. a test
        ``client``) are not exposed. The docstring's first paragraph is the sub-command's help.
        Credentials come from the provider's standard configuration, never from options.
        """
        raise FetchError(f"source {cls.name!r} has no download support")

    @classmethod
    def can_fetch(cls) -> bool:
        """True when the source overrides :meth:`fetch` (has a download sub-command)."""
        return getattr(cls.fetch, "__func__", None) is not Source.fetch.__func__
