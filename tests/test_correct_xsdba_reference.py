"""The ``qm`` corrector equals a direct xsdba call on xsdba's own reference data.

Data: ``shared/data/xsdba_reference`` (Ouranosinc/xclim-testdata, MIT): daily CanESM2
historical+RCP8.5 and AHCCD station observations at Vancouver, Kugluktuk (67.8 N) and Amos.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import xsdba

from permaplug.core.plugins import get_corrector

REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "xsdba_reference"
if not REF_DIR.is_dir():
    REF_DIR = Path("/work/shared/data/xsdba_reference")
pytestmark = pytest.mark.skipif(not REF_DIR.is_dir(), reason="shared/data/xsdba_reference absent")

CAL = slice("1981-01-01", "2010-12-31")


@pytest.fixture(scope="module")
def ref_data():
    with xr.open_dataset(REF_DIR / "CanESM2_1950-2100.nc") as m, \
            xr.open_dataset(REF_DIR / "ahccd_1950-2013.nc") as o:
        model = m.load()
        obs = o.load().transpose("time", "location")
    # canonical names and units: tasmax in degC, precipitation as daily totals in mm;
    # the calibration period and the following 50 years keep the test fast
    model = model.sel(time=slice("1981-01-01", "2060-12-31"))
    sim = xr.Dataset({
        "tasmax": (model.tasmax - 273.15).assign_attrs(units="degC"),
        "tp": (model.pr * 86400.0).assign_attrs(units="mm"),
    }, attrs={"permaplug_data": "CanESM2 (xclim-testdata, real)"})
    ref = xr.Dataset({
        "tasmax": obs.tasmax.assign_attrs(units="degC"),
        "tp": obs.pr.assign_attrs(units="mm"),
    }, attrs={"permaplug_data": "AHCCD (xclim-testdata, real)"}).sel(time=CAL)
    return sim, ref


def test_qm_equals_direct_xsdba_eqm_temperature(ref_data):
    sim, ref = ref_data
    hist = sim.sel(time=CAL)
    c = get_corrector("qm")(variables=["tasmax"]).fit(hist, ref)
    ours = c.apply(sim)["tasmax"]

    direct = xsdba.EmpiricalQuantileMapping.train(
        ref.tasmax.astype("float64"), hist.tasmax.astype("float64"), nquantiles=50,
        group="time.month", kind="+",
    ).adjust(sim.tasmax.astype("float64"), interp="nearest", extrapolation="constant")
    # identical up to the cast back to the input's float32
    np.testing.assert_allclose(ours.values, direct.transpose(*ours.dims).values.astype("float32"),
                               rtol=0, atol=0)
    # the correction is real: the model's Kugluktuk cold-season bias is large and removed
    kug = {"location": "Kugluktuk"}
    raw_bias = float((hist.tasmax.sel(kug) - ref.tasmax.sel(kug)).mean())
    cor_bias = float((ours.sel(time=CAL, **kug) - ref.tasmax.sel(kug)).mean())
    assert abs(raw_bias) > 1.0 and abs(cor_bias) < 0.1


def test_qm_equals_direct_xsdba_eqm_precipitation_with_frequency_adaptation(ref_data):
    sim, ref = ref_data
    hist = sim.sel(time=CAL)
    c = get_corrector("qm")(variables=["tp"], seed=7).fit(hist, ref)
    ours = c.apply(sim)["tp"]

    np.random.seed(7)
    eqm = xsdba.EmpiricalQuantileMapping.train(
        ref.tp.astype("float64"), hist.tp.astype("float64"), nquantiles=50, group="time.month",
        kind="*", adapt_freq_thresh="1 mm", jitter_under_thresh_value="0.01 mm",
    )
    np.random.seed(7)
    direct = eqm.adjust(sim.tp.astype("float64"), interp="nearest", extrapolation="constant")
    direct = direct.where(direct >= 0.01, 0.0).clip(0.0).transpose(*ours.dims)
    np.testing.assert_allclose(ours.values, direct.values.astype(ours.dtype), rtol=1e-6, atol=1e-6)
    # dry-day frequency of the corrected model matches the observations'
    wet = lambda da: float((da >= 1.0).mean())
    assert abs(wet(ours.sel(time=CAL)) - wet(ref.tp)) < 0.02
    assert float(ours.min()) >= 0.0
