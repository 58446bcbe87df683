"""Real data: IPSL-CM5A-MR ``tas`` (CMIP5, Alaska land box) against real ERA5 points.

* ``shared/data/cmip5_alaska_box`` (Goldenson et al. 2018): monthly land means over
  193-219 E, 58-71 N; historical run1 1850-2005 continued by each RCP's run1 2006-2099; read
  with the cmip source's table reader (``cmip.open_region_table``), the box value given to
  every band.
* ``shared/data/era5_alaska_points``: ERA5 monthly 2 m temperature at 14 points (64-70 N), read
  with ``climate_reanalyzer.read_points`` and averaged per band (bands 2-5 hold points).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _naive_correction import naive_periods, naive_reorder

from permaplug.core import schema
from permaplug.correction.pipeline import correct_dataset
from permaplug.plugins.sources.climate_reanalyzer import points_to_bands, read_points
from permaplug.plugins.sources.cmip import open_region_table

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
BOX, POINTS = DATA / "cmip5_alaska_box", DATA / "era5_alaska_points"
pytestmark = pytest.mark.skipif(not (BOX.is_dir() and POINTS.is_dir()),
                                reason="shared/data real files absent")


@pytest.fixture(scope="module")
def real():
    scen, _ = open_region_table(BOX, model="IPSL-CM5A-MR", run="run1", variables=["tas"],
                                spatial="bands", start="1950-01-01")
    obs = points_to_bands(read_points(POINTS, ("temp",)))
    bands = [b for b in range(schema.N_BANDS) if int(obs["n_points"][b]) > 0]
    obs = obs[["t2m"]].isel(band=bands)
    scen = scen[["t2m"]].sel(band=obs.band.values)
    scen.attrs[schema.DATA_LABEL_ATTR] = "IPSL-CM5A-MR (real, CMIP5 Alaska land box)"
    return scen, obs


def test_reader_gives_the_file_values(real):
    """An independent parse of one file: January 2090 of RCP 8.5, run1, K -> degC."""
    scen, _ = real
    raw = pd.read_csv(BOX / "timeSeriesLO_tas_Alaska_Monthly_rcp85.csv", header=None)
    col = next(i for i in range(1, raw.shape[1])
               if raw.iloc[0, i] == "IPSL-CM5A-MR" and raw.iloc[1, i] == "run1")
    row = raw[raw[0].astype(str).str.startswith("2090-01")].iloc[0]
    expect = float(row[col]) - 273.15
    got = scen["t2m"].sel(scenario="rcp85", time="2090-01-01").values
    assert got == pytest.approx([expect] * got.size, abs=1e-6)


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


def test_real_preserve_order_is_the_monthly_reordering_of_qm(real):
    """preserve_order (xsdba's reordering) = the qm output handed out in the model's order
    within each calendar month, computed here by a naive loop; within 1e-6 degC."""
    scen, obs = real
    plain = correct_dataset(scen, obs, "qm", (2001, 2023), ["t2m"], "rcp85").corrected["t2m"]
    ranked = correct_dataset(scen, obs, "qm", (2001, 2023), ["t2m"], "rcp85",
                             {"preserve_order": True}).corrected["t2m"]
    raw = scen["t2m"].transpose(*plain.dims)
    axes = [d for d in plain.dims if d != "time"] + ["time"]
    expect = naive_reorder(raw.transpose(*axes).values, plain.transpose(*axes).values,
                           raw["time"].dt.month.values)
    got = ranked.transpose(*axes).values
    np.testing.assert_allclose(got, expect, atol=1e-6, equal_nan=True)
    assert np.abs(got - plain.transpose(*axes).values).max() > 0.01  # order was restored


def test_real_qdm_periods_are_one_adjust_per_block(real):
    """QDM's moving periods (xsdba stack_periods/unstack_periods) = one plain adjust per
    10-year block on the 30-year period centred on it; real CMIP5 tas 1950-2099."""
    scen, obs = real
    res = correct_dataset(scen, obs, "qdm", (2001, 2023), ["t2m"], "rcp85")
    adj = res.corrector.fitted["t2m"]
    sim = scen["t2m"].sel(scenario="rcp45").astype("float64")
    assert sim.sizes["time"] % 12 == 0 and int(sim.time.dt.month[0]) == 1  # whole years
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expect = naive_periods(adj, sim, 30, 10)
    got = res.corrected["t2m"].sel(scenario="rcp45", time=sim.time)
    np.testing.assert_allclose(got.transpose(*expect.dims).values, expect.values, atol=1e-6)
