"""``none``: the raw climate model, for comparison."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from permaplug.core.corrector import Corrector
from permaplug.core.errors import ConfigError, DataError
from permaplug.core.schema import DATA_LABEL_ATTR
from permaplug.correction.xsdba_corrector import STATE_ATTR


class NoCorrection(Corrector):
    """Leaves the model's values unchanged (records what it was fitted on, for the report)."""

    name = "none"
    description = "no correction: the raw climate model, for comparison"

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - {"variables"}
        if unknown:
            raise ConfigError(f"corrector 'none': unknown option(s) {', '.join(sorted(unknown))}")
        super().__init__(**options)
        self.variables: list[str] = []
        self.info: dict[str, Any] = {}

    def fit(self, model_hist: xr.Dataset, obs_hist: xr.Dataset) -> NoCorrection:
        variables = self.options.get("variables") or [
            v for v in model_hist.data_vars if v in obs_hist.data_vars
        ]
        if not variables:
            raise DataError("model_hist and obs_hist share no variable")
        common = np.intersect1d(model_hist.time.values, obs_hist.time.values)
        self.variables = list(variables)
        self.info = {
            "calibration_start": str(common[0])[:7] if common.size else "",
            "calibration_end": str(common[-1])[:7] if common.size else "",
            "n_time": int(common.size),
            "obs_data": obs_hist.attrs.get(DATA_LABEL_ATTR, "unknown data"),
            "model_data": model_hist.attrs.get(DATA_LABEL_ATTR, "unknown data"),
        }
        return self

    def apply(self, scenario: xr.Dataset) -> xr.Dataset:
        out = scenario.copy()
        out.attrs = {**scenario.attrs, "bias_correction": "none",
                     "bias_corrected_variables": ""}
        return out

    def state(self) -> xr.Dataset:
        return xr.Dataset(attrs={
            STATE_ATTR: self.name, "options": json.dumps(self.options),
            "variables": json.dumps(self.variables), "info": json.dumps(self.info),
            DATA_LABEL_ATTR: self.info.get("model_data", "unknown data"),
        })

    @classmethod
    def from_state(cls, state: xr.Dataset) -> NoCorrection:
        if state.attrs.get(STATE_ATTR) != cls.name:
            raise ConfigError(f"corrector state is for {state.attrs.get(STATE_ATTR)!r}, not 'none'")
        obj = cls(**json.loads(state.attrs.get("options", "{}")))
        obj.variables = json.loads(state.attrs.get("variables", "[]"))
        obj.info = json.loads(state.attrs.get("info", "{}"))
        return obj
