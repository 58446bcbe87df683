"""Real data: IPSL-CM5A-MR ``tas`` (CMIP5, Alaska land box) against real ERA5 points.

* ``shared/data/cmip5_alaska_box`` (Goldenson et al. 2018): monthly land means over
  193-219 E, 58-71 N; historical run1 1850-2005 continued by each RCP's run1 2006-2099.
* ``shared/data/era5_alaska_points``: ERA5 monthly 2 m temperature at 14 points (64-70 N),
  read with the sources engineer's ``climate_reanalyzer.read_points`` and averaged per band.

The box CSVs are parsed here with pandas (three header rows: model, run, time).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.correction.pipeline import correct_dataset
from permaplug.plugins.sources.climate_reanalyzer import points_to_bands, read_points

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
BOX, POINTS = DATA / "cmip5_alaska_box", DATA / "era5_alaska_points"
pytestmark = pytest.mark.skipif(not (BOX.is_dir() and POINTS.is_dir()),
                                reason="shared/data real files absent")
MODEL, RUN = "IPSL-CM5A-MR", "run1"


def read_box(path: Path, model: str = MODEL, run: str = RUN) -> pd.Series:
    """One model/run column of a Goldenson box CSV as a monthly series (file units)."""
    head = pd.read_csv(path, header=None, nrows=2)
    cols = [i for i in range(1, head.shape[1])
            if head.iloc[0, i] == model and head.iloc[1, i] == run]
    assert cols, f"{path.name}: no {model} {run} column"
    body = pd.read_csv(path, header=None, skiprows=3)
    t = pd.to_datetime(body[0].str[:10], format="%Y-%m-%d").dt.to_period("M").dt.to_timestamp()
    return pd.Series(body[cols[0]].to_numpy(float), index=t)


@pytest.fixture(scope="module")
def real():
    hist = read_box(BOX / "timeSeriesLO_tas_Alaska_Monthly_historical.csv")
    series = []
    for s in schema.SCENARIOS:
        fut = read_box(BOX / f"timeSeriesLO_tas_Alaska_Monthly_{s}.csv")
        series.append(pd.concat([hist.loc["1950":], fut]).to_numpy() - 273.15)
    times = pd.concat([hist.loc["1950":], fut]).index.to_numpy()
    obs = points_to_bands(read_points(POINTS, ("temp",)))
    bands = [b for b in range(schema.N_BANDS) if int(obs["n_points"][b]) > 0]
    obs = obs[["t2m"]].isel(band=bands)
    values = np.repeat(np.stack(series)[:, :, None], len(bands), axis=2)
    scen = xr.Dataset(
        {"t2m": (("scenario", "time", "band"), values, schema.cf_attrs("t2m"))},
        coords={"scenario": list(schema.SCENARIOS), "time": times, "band": obs.band.values},
        attrs={schema.DATA_LABEL_ATTR: "IPSL-CM5A-MR (real, CMIP5 Alaska land box)",
               "historical_end": "2005-12"},
    )
    return scen, obs


def test_real_winter_bias_is_large(real):
    scen, obs = real
    raw = scen["t2m"].sel(scenario="rcp85", time=slice("2001", "2023"))
    diff = raw.groupby("time.month").mean() - obs["t2m"].sel(time=slice("2001", "2023")) \
        .groupby("time.month").mean()
    assert float(diff.max()) > 5.0  # the model is far too warm in some months and bands


def test_qm_matches_observed_monthly_means_within_0_1_degc(real):
    scen, obs = real
    res = correct_dataset(scen, obs, "qm", (2001, 2023), ["t2m"], "rcp85")
    cal = slice("2001", "2023")
    cor = res.corrected["t2m"].sel(scenario="rcp85", time=cal).groupby("time.month").mean()
    ref = obs["t2m"].sel(time=cal).groupby("time.month").mean()
    err = abs(cor - ref.transpose(*cor.dims))
    assert float(err.max()) < 0.1, float(err.max())
    assert res.corrected.attrs["bias_correction_continuation"] == "rcp85"
    assert res.corrected.attrs[schema.DATA_LABEL_ATTR].startswith("IPSL-CM5A-MR")


def test_qdm_keeps_the_raw_rcp85_minus_rcp26_change_within_10_percent(real):
    scen, obs = real
    res = correct_dataset(scen, obs, "qdm", (2001, 2023), ["t2m"], "rcp85")
    late = slice("2071", "2099")

    def change(ds):
        m = ds["t2m"].sel(time=late).mean("time")
        return m.sel(scenario="rcp85") - m.sel(scenario="rcp26")

    raw, cor = change(res.raw), change(res.corrected)
    assert float(raw.min()) > 2.0  # a real, several-degree scenario difference
    rel = abs(cor - raw) / abs(raw)
    assert float(rel.max()) < 0.10, rel.values
