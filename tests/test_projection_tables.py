"""The projection table: historical record continued by the corrected scenario."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _projection_fixtures import hist_table, scenarios

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data import features as F
from permaplug.projection.tables import projection_table
from permaplug.training.windows import WindowSet, calendar_features, table_arrays, target_windows

DYN = F.PAPER_FORCING + schema.SOIL_WATER + F.PAPER_CALENDAR
STA = F.PAPER_STATIC[:3]


def test_first_projected_window_is_the_last_24_historical_months():
    hist = hist_table()
    scen = scenarios().sel(scenario="rcp85")
    table = projection_table(hist, scen, end=2030)
    assert str(table["time"].values[-1])[:7] == "2030-12"
    arrays = table_arrays(table, DYN, STA, require_targets=False)
    first = pd.DatetimeIndex(["2024-01-01", "2024-02-01"])
    idx = target_windows(arrays, first)
    ws = WindowSet(arrays.dynamic, arrays.static, arrays.band, arrays.target, idx)
    x, band, static, _ = ws.batch(slice(None))
    n_units = schema.N_BANDS
    hist_last = hist.sel(time=slice("2022-01-01", "2023-12-01"))
    for u in range(n_units):
        win = x[u].numpy()  # first target month, unit u: [24, F]
        for f, name in enumerate(DYN):
            expect = hist_last[name].values if hist_last[name].dims == ("time",) \
                else hist_last[name].isel(band=u).values
            np.testing.assert_allclose(win[:, f], expect, rtol=1e-6, atol=1e-5)
    # The second month's window rolls one month into the scenario.
    second = x[n_units + 0].numpy()
    t2m = list(DYN).index("t2m")
    np.testing.assert_allclose(second[:-1, t2m], hist_last["t2m"].isel(band=0).values[1:],
                               rtol=1e-6)
    assert second[-1, t2m] == pytest.approx(float(scen["t2m"].sel(time="2024-01-01").isel(band=0)),
                                            rel=1e-6)
    np.testing.assert_allclose(static.numpy(), arrays.static[band.numpy()])


def test_future_months_get_calendar_scenario_features_and_no_targets():
    hist = hist_table()
    scen = scenarios().sel(scenario="rcp26")
    table = projection_table(hist, scen, end=2025)
    fut = table.sel(time=slice("2024-01-01", None))
    cal = calendar_features(fut["time"].values)
    np.testing.assert_allclose(fut["year"].values, cal["year"])
    np.testing.assert_allclose(fut["month_cos"].values, cal["month_cos"])
    assert fut["year"].values[0] == 2024.0
    np.testing.assert_allclose(fut["swvl2"].values, scen["swvl2"].sel(time=fut.time).values)
    assert np.isnan(fut["stl1"].values).all()
    np.testing.assert_allclose(table["lith_water"].values, hist["lith_water"].values)
    assert table.attrs["historical_end"] == "2023-12"
    assert table.attrs[schema.DATA_LABEL_ATTR] == "test synthetic"


def test_scenario_too_short_or_missing_variable_is_refused():
    hist = hist_table()
    scen = scenarios(end="2030-12-01").sel(scenario="rcp26")
    with pytest.raises(DataError, match="does not cover 2031-01..2040-12"):
        projection_table(hist, scen, end=2040)
    with pytest.raises(DataError, match="no variable.*sshf"):
        projection_table(hist, scen.drop_vars("sshf"), end=2030)


def test_cftime_scenario_calendar_is_accepted():
    hist = hist_table()
    scen = scenarios(end="2026-12-01").sel(scenario="rcp85")
    noleap = scen.convert_calendar("noleap", use_cftime=True)
    table = projection_table(hist, noleap, end=2026)
    np.testing.assert_allclose(table["t2m"].sel(time="2025-07-01").values,
                               scen["t2m"].sel(time="2025-07-01").values)


def test_missing_corrected_values_are_refused_with_the_first_one_named():
    hist = hist_table()
    scen = scenarios(end="2030-12-01").sel(scenario="rcp85")
    scen.attrs["bias_correction"] = "qdm"
    ssrd = scen["ssrd"].copy()
    ssrd.loc[{"time": "2025-12-01", "band": 5}] = np.nan
    ssrd.loc[{"time": "2026-12-01", "band": 5}] = np.nan
    scen["ssrd"] = ssrd
    with pytest.raises(DataError, match=r"\(corrector qdm\) has 2 missing value\(s\) of 'ssrd'"
                                        r".*first at 2025-12, band 5"):
        projection_table(hist, scen, end=2030)
