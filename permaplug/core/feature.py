"""The Feature contract: a derived monthly input computed from other variables.

A feature plugin declares its name, units and the variables it needs (``inputs``: names a
source or another feature provides) and computes one monthly variable from a dataset holding
those inputs. The same ``compute`` builds the historical table and every scenario table, so a
feature means the same thing in history and in projections::

    import numpy as np
    import permaplug

    class ThawingDegreeDays(permaplug.Feature):
        \"\"\"Monthly thawing degree days: days in the month x max(t2m, 0).\"\"\"

        name = "tdd"
        units = "degC day"
        long_name = "thawing degree days of the month"
        inputs = ("t2m",)

        def compute(self, ds):
            days = ds["time"].dt.days_in_month
            return np.maximum(ds["t2m"], 0.0) * days

    @permaplug.hookimpl
    def register_features(register):
        register(ThawingDegreeDays)

A feature that needs reference values from the training years (for instance a standardised
anomaly) overrides :meth:`Feature.fit`, which stores JSON-ready numbers in ``self.state``; the run
folder keeps that state, so a projection uses the training years' reference, never its own.
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

from permaplug.core.variables import Variable

if TYPE_CHECKING:  # the feature plugins import xarray; the contract does not
    import xarray as xr


class Feature(abc.ABC):
    """Base class of derived-feature plugins.

    Class attributes: ``name`` (unique among features), ``units``, ``long_name``,
    ``standard_name`` (CF, where one exists), ``inputs`` (variable names it reads; sources' or
    other features'), ``kind`` (``dynamic``: monthly; ``static``: one value per band or cell),
    ``scenario`` (optional: how it is obtained for scenarios, when not simply by ``compute``).
    """

    name: ClassVar[str] = ""
    units: ClassVar[str] = "1"
    long_name: ClassVar[str] = ""
    standard_name: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "dynamic"
    scenario: ClassVar[str] = ""

    @classmethod
    def scenario_note(cls) -> str:
        """How the feature is obtained for a scenario: ``scenario`` when the plugin sets it,
        else computed by the same code from the scenario's inputs."""
        if cls.scenario:
            return cls.scenario
        if not cls.inputs:
            return "computed from the month's time stamp, as in history"
        return f"computed by the same code from the scenario's {', '.join(cls.inputs)}"

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = dict(state or {})

    @classmethod
    def variable(cls) -> Variable:
        """The declaration of what this feature provides."""
        return Variable(cls.name, cls.units, cls.standard_name, cls.long_name or cls.name,
                        kind=cls.kind)

    @classmethod
    def needs_fit(cls) -> bool:
        """True when the feature learns reference values from the training years."""
        return cls.fit is not Feature.fit

    def fit(self, ds: xr.Dataset, years: tuple[int, int], window: int) -> None:
        """Learn reference values from ``ds`` (inputs, dims ``(time, band|cell)``) over the
        training ``years`` (inclusive); store JSON-ready values in ``self.state``. ``window``:
        the run's input window in months. Default: nothing to learn."""

    @abc.abstractmethod
    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        """The feature for every month of ``ds``.

        ``ds`` holds at least the ``inputs`` (canonical units) and a monthly ``time`` coordinate
        (first day of the month), dims ``(time, band)`` or ``(time, cell)``. Return a DataArray
        with a ``time`` dim (a spatial dim is optional: it is broadcast), in ``units``.
        """
