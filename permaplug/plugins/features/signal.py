"""The scenario signal ``z`` (paper eq. 2.1-2.2) as a derived feature of ``strd``.

z at month t standardises the mean ``strd`` of the window ending at t with the mean and
standard deviation of those window means over the training years, then signs-squares it
(:mod:`permaplug.correction.signal`). The training years' statistics are the feature's state:
the run folder keeps them, so every scenario is measured against the same reference.
Models see z at a window's last month repeated over the window (``training.windows``).
"""
from __future__ import annotations

from typing import ClassVar

import xarray as xr

from permaplug.core.errors import DataError
from permaplug.core.feature import Feature


class ScenarioSignal(Feature):
    """z = |z~| z~, z~ = (window-mean strd - mean) / std; unitless, dims of ``strd``."""

    name: ClassVar[str] = "z"
    units: ClassVar[str] = "1"
    long_name: ClassVar[str] = ("scenario signal: |z~| z~ of the window-mean standardised "
                                "thermal radiation")
    inputs: ClassVar[tuple[str, ...]] = ("strd",)
    scenario: ClassVar[str] = ("computed from the scenario's strd with the training years' "
                               "mean and standard deviation")

    def fit(self, ds: xr.Dataset, years: tuple[int, int], window: int) -> None:
        from permaplug.correction.signal import fit_signal

        self.state = fit_signal(ds["strd"], tuple(years), window).to_dict()

    def compute(self, ds: xr.Dataset) -> xr.DataArray:
        from permaplug.correction.signal import SignalStats, scenario_signal

        if not self.state:
            raise DataError("feature 'z' has no training statistics (fit it on the training "
                            "years first)")
        return scenario_signal(ds["strd"], SignalStats.from_dict(self.state))
