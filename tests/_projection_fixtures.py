"""Synthetic canonical tables for projection/explain/report tests (no model quality implied)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.data import features as F
from permaplug.training.windows import calendar_features


def hist_table(start: str = "2001-01-01", end: str = "2023-12-01", seed: int = 0,
               label: str = "test synthetic") -> xr.Dataset:
    """(time, band) table: forcing, soil water, calendar, targets (degC) and statics."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, end, freq="MS")
    nb = schema.N_BANDS
    season = np.cos(2 * np.pi * (time.month.values - 7) / 12)[:, None]
    lat = np.arange(nb)[None, :]
    dvars = {}
    for i, name in enumerate(F.PAPER_FORCING + schema.SOIL_WATER):
        noise = rng.normal(0, 1, (len(time), nb))
        dvars[name] = (("time", "band"), (10 + i) * season - lat + noise)
    cal = calendar_features(time.values)
    for name in F.PAPER_CALENDAR:
        dvars[name] = (("time",), cal[name])
    for k, name in enumerate(schema.TARGETS):
        amp = 12.0 / (k + 1)
        noise = rng.normal(0, .3, (len(time), nb))
        dvars[name] = (("time", "band"), amp * season - 2 * lat - k + noise)
    for j, name in enumerate(F.PAPER_STATIC[:3]):
        dvars[name] = (("band",), np.linspace(1, 2, nb) * (j + 1))
    ds = xr.Dataset(dvars, coords={"time": time.values, **schema.band_coords()})
    ds.attrs[schema.DATA_LABEL_ATTR] = label
    return ds


def scenarios(start: str = "2006-01-01", end: str = "2100-12-01", seed: int = 1,
              warming: dict[str, float] | None = None, label: str = "test synthetic") -> xr.Dataset:
    """(scenario, time, band) corrected features with a linear warming per scenario."""
    warming = warming or {"rcp26": 0.0, "rcp85": 0.1}
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, end, freq="MS")
    nb = schema.N_BANDS
    season = np.cos(2 * np.pi * (time.month.values - 7) / 12)[:, None]
    years = (time.year.values - 2006)[:, None]
    out = {}
    for i, name in enumerate(F.PAPER_FORCING + schema.SOIL_WATER):
        per = [(10 + i) * season - np.arange(nb)[None, :] + w * years
               + rng.normal(0, 1, (len(time), nb)) for w in warming.values()]
        out[name] = (("scenario", "time", "band"), np.stack(per))
    ds = xr.Dataset(out, coords={"scenario": list(warming), "time": time.values,
                                 **schema.band_coords()})
    ds.attrs[schema.DATA_LABEL_ATTR] = label
    ds.attrs["historical_end"] = "2005-12"
    return ds


_RUNS: dict[str, object] = {}


def tiny_run(root) -> object:
    """A real run folder with a 1-epoch 8-unit GRU trained on :func:`hist_table` (built once
    per test session under ``root``, a pytest tmp folder); returns the loaded Run."""
    from pathlib import Path

    from permaplug.training.config import RunConfig
    from permaplug.training.runs import execute_run, load_run

    if "run" not in _RUNS:
        cfg = RunConfig(source="test", models=["gru"], epochs=1, use_z=False,
                        train_years=[2015, 2018],
                        hparams={"gru": {"hidden_size": 8, "num_layers": 1}})
        out = execute_run(cfg, Path(root) / "run", table=hist_table(start="2013-01-01"),
                          progress=False, echo=lambda _m: None)
        _RUNS["run"] = load_run(out)
    return _RUNS["run"]
