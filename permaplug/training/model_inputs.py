"""Model inputs stored as NetCDF: what the networks saw, in physical units, per scenario.

The projection step writes ``scenario_inputs.nc`` (``projections/<corrector>-<end>/``) with
:func:`save_model_inputs`; ``explain`` reads it back with :func:`load_model_inputs` to attribute
scenario windows without correcting the scenarios or recomputing any feature again. Layout::

    dynamic  (scenario, <unit>, time, feature)  float32, physical units, every model input
    static   (<unit>, static_feature)           float32
    band_index (<unit>,)                        int64, the band embedding index
    attrs: permaplug_data (label), unit_dim, historical_end (YYYY-MM), end (year)

``time`` runs from the first input month of the first projected window to December ``end``
(the last target month), so every projected month's window is inside.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import DataError
from permaplug.training.windows import SeriesArrays

FILE = "scenario_inputs.nc"


def save_model_inputs(per_scenario: dict[str, SeriesArrays], path: Path, historical_end: str,
                      end: int) -> Path:
    """Write the ``arrays`` of every scenario (same units, months and features) to ``path``."""
    names = list(per_scenario)
    if not names:
        raise DataError("no scenario inputs to store")
    first = per_scenario[names[0]]
    udim = first.unit_dim
    ds = xr.Dataset(
        {"dynamic": (("scenario", udim, "time", "feature"),
                     np.stack([per_scenario[s].dynamic for s in names]).astype(np.float32)),
         "static": ((udim, "static_feature"), first.static.astype(np.float32)),
         "band_index": ((udim,), first.band.astype(np.int64))},
        coords={"scenario": names, udim: first.units,
                "time": first.time.astype("datetime64[ns]"),
                "feature": list(first.dynamic_names),
                "static_feature": list(first.static_names)},
        attrs={schema.DATA_LABEL_ATTR: first.data_label, "unit_dim": udim,
               "historical_end": historical_end, "end": int(end),
               "content": "model inputs in physical units, as the networks received them"},
    )
    enc = {"dynamic": {"zlib": True, "complevel": 1}}
    with atomic_path(Path(path)) as tmp:
        ds.to_netcdf(tmp, encoding=enc)
    return Path(path)


def load_model_inputs(path: Path) -> tuple[dict[str, SeriesArrays], dict]:
    """``{scenario: SeriesArrays}`` (targets NaN) and the file's attributes."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no stored scenario inputs (project the run again)")
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a permaplug scenario-inputs file ({exc})") from None
    udim = str(ds.attrs.get("unit_dim", ""))
    if "dynamic" not in ds or udim not in ds.dims:
        raise DataError(f"{path}: not a permaplug scenario-inputs file (no 'dynamic' or unit dim)")
    time = np.asarray(ds["time"].values).astype("datetime64[ns]")
    n_units = ds.sizes[udim]
    out = {}
    for scen in [str(s) for s in ds["scenario"].values]:
        out[scen] = SeriesArrays(
            time=time, month=np.array(pd.DatetimeIndex(time).month), unit_dim=udim,
            units=np.asarray(ds[udim].values), band=np.asarray(ds["band_index"].values, np.int64),
            dynamic=np.asarray(ds["dynamic"].sel(scenario=scen).transpose(udim, "time", "feature")
                               .values, np.float32),
            static=np.asarray(ds["static"].transpose(udim, "static_feature").values, np.float32),
            target=np.full((n_units, len(time), len(schema.TARGETS)), np.nan, np.float32),
            dynamic_names=tuple(str(f) for f in ds["feature"].values),
            static_names=tuple(str(f) for f in ds["static_feature"].values),
            data_label=str(ds.attrs.get(schema.DATA_LABEL_ATTR, "unknown data")),
        )
    return out, dict(ds.attrs)
