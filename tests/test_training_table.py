"""A small synthetic table in the canonical schema, shared by the training, model and run tests.

Soil temperatures follow the air temperature through first-order lags that slow with depth,
so a window of past forcing predicts next month's layers much better than persistence.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.data import features as F


def synthetic_table(start: str = "2001-01", end: str = "2023-12", n_bands: int = schema.N_BANDS,
                    seed: int = 0, label: str = "synthetic test table") -> xr.Dataset:
    """Dims (time, band); every DYNAMIC feature, static features and stl1..4 (degC)."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, end, freq="MS")
    nt = len(time)
    month = time.month.to_numpy()
    seasonal = -np.cos(2 * np.pi * (month - 0.5) / 12)  # coldest in January
    coords = {"time": time, "band": np.arange(n_bands),
              "lat_min": ("band", np.asarray(schema.BAND_EDGES[:-1])[:n_bands]),
              "lat_max": ("band", np.asarray(schema.BAND_EDGES[1:])[:n_bands])}
    data = {}
    anomaly = np.zeros((nt, n_bands))
    for t in range(1, nt):
        anomaly[t] = 0.6 * anomaly[t - 1] + rng.normal(0, 1.5, n_bands)
    trend = 0.05 * (time.year.to_numpy() - 2001)[:, None]
    t2m = -6 - 2.0 * np.arange(n_bands)[None, :] + 16 * seasonal[:, None] + anomaly + trend
    data["t2m"] = t2m
    data["skt"] = t2m - 1 + rng.normal(0, 0.3, t2m.shape)
    data["tp"] = 40 + 20 * seasonal[:, None] + rng.gamma(2, 5, t2m.shape)
    data["sf"] = np.clip(30 - 25 * seasonal[:, None] + rng.normal(0, 5, t2m.shape), 0, None)
    data["strd"] = 6.5e8 + 2.5e8 * seasonal[:, None] + 1e7 * anomaly
    data["ssrd"] = 3e8 + 3e8 * seasonal[:, None] + rng.normal(0, 2e7, t2m.shape)
    data["slhf"] = -5e7 - 4e7 * seasonal[:, None] + rng.normal(0, 5e6, t2m.shape)
    data["sshf"] = -1e7 + 2e7 * seasonal[:, None] + rng.normal(0, 5e6, t2m.shape)
    layers = np.zeros((4, nt, n_bands))
    alpha = (0.35, 0.55, 0.75, 0.9)
    for k, a in enumerate(alpha):
        drive = t2m if k == 0 else layers[k - 1]
        layers[k, 0] = drive[0]
        for t in range(1, nt):
            layers[k, t] = a * layers[k, t - 1] + (1 - a) * drive[t - 1]
    for k in range(4):
        data[f"stl{k + 1}"] = layers[k] + 1.0
        data[f"swvl{k + 1}"] = 0.3 + 0.05 * seasonal[:, None] + rng.normal(0, 0.01, t2m.shape)
    ds = xr.Dataset({k: (("time", "band"), v.astype(np.float32)) for k, v in data.items()},
                    coords=coords)
    ds["year"] = ("time", time.year.to_numpy().astype(float))
    ds["month_sin"] = ("time", np.sin(2 * np.pi * month / 12))
    ds["month_cos"] = ("time", np.cos(2 * np.pi * month / 12))
    for i, name in enumerate(F.PAPER_STATIC):
        ds[name] = ("band", rng.uniform(0, 100, n_bands) + i)
    ds.attrs[schema.DATA_LABEL_ATTR] = label
    ds.attrs["provenance"] = "tests/test_training_table.py"
    return ds


def test_synthetic_table_has_the_canonical_variables():
    ds = synthetic_table()
    for name in F.PAPER_DYNAMIC + schema.TARGETS + F.PAPER_STATIC:
        assert name in ds, name
    assert ds.sizes == {"time": 276, "band": 6}
    assert schema.data_label(ds) == "synthetic test table"


def test_synthetic_layers_damp_with_depth():
    ds = synthetic_table()
    amp = [float(ds[f"stl{k}"].std()) for k in range(1, 5)]
    assert amp == sorted(amp, reverse=True)
    assert amp[0] > 2 * amp[3]
