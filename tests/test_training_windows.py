"""Windows are index views with no leakage; normalisation uses the training years only."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_training_table import synthetic_table

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data import features as F
from permaplug.training.normalise import Normaliser
from permaplug.training.predict import window_set
from permaplug.training.windows import table_arrays, target_windows, window_index

STATIC = ("lith_water", "bdod_l1")


@pytest.fixture(scope="module")
def table():
    return synthetic_table("2001-01", "2010-12", n_bands=3)


@pytest.fixture(scope="module")
def arrays(table):
    return table_arrays(table, F.PAPER_DYNAMIC, STATIC)


def test_a_window_never_contains_its_target_month(arrays):
    idx = window_index(arrays, (2003, 2008))
    months = arrays.time.astype("datetime64[M]")
    for unit, last in idx:
        inputs = months[last - schema.WINDOW + 1 : last + 1]
        target = months[last + 1]
        assert len(inputs) == schema.WINDOW
        assert target not in inputs
        assert (inputs < target).all()
        assert target - inputs[-1] == np.timedelta64(1, "M")
    years = pd.DatetimeIndex(arrays.time[idx[:, 1] + 1]).year
    assert years.min() == 2003 and years.max() == 2008
    # every (unit, target month) of 2003-2008 exactly once
    assert len(idx) == 3 * 72 and len({tuple(r) for r in idx}) == len(idx)


def test_first_target_month_needs_a_full_window(arrays):
    idx = window_index(arrays, (2001, 2010))
    first = pd.Timestamp(arrays.time[idx[:, 1].min() + 1])
    assert first == pd.Timestamp("2003-01-01")  # 24 months after 2001-01


def test_windows_are_views_into_the_monthly_arrays(arrays):
    norm = Normaliser.fit(arrays, (2001, 2008))
    ws = window_set(arrays, norm, window_index(arrays, (2009, 2010)))
    assert ws._windows.untyped_storage().data_ptr() == ws.dynamic.untyped_storage().data_ptr()
    x, band, static, y = ws.batch(slice(0, 7))
    for n, (u, last) in enumerate(ws.index[:7].tolist()):
        expect = norm.dynamic(arrays.dynamic[u, last - 23 : last + 1])
        np.testing.assert_allclose(x[n].numpy(), expect, rtol=1e-6)
        np.testing.assert_allclose(y[n].numpy(), norm.target(arrays.target[u, last + 1]), rtol=1e-6)
        assert band[n] == arrays.band[u]
        np.testing.assert_allclose(static[n].numpy(), norm.static(arrays.static[u]), rtol=1e-6)


def test_normalisation_uses_training_years_only(table, arrays):
    norm = Normaliser.fit(arrays, (2001, 2008))
    years = arrays.years
    train = (years >= 2001) & (years <= 2008)
    np.testing.assert_allclose(norm.target_mean, arrays.target[:, train].mean(axis=(0, 1)),
                               rtol=1e-5)
    np.testing.assert_allclose(norm.dynamic_std, arrays.dynamic[:, train].std(axis=(0, 1)),
                               rtol=1e-4)
    changed = table.copy(deep=True)
    late = changed["time"].dt.year > 2008
    for v in ("t2m", "stl1", "stl4"):
        changed[v] = changed[v].where(~late, changed[v] + 40.0)
    norm2 = Normaliser.fit(table_arrays(changed, F.PAPER_DYNAMIC, STATIC), (2001, 2008))
    assert norm2.to_dict() == norm.to_dict()


def test_normaliser_json_round_trip(arrays, tmp_path):
    norm = Normaliser.fit(arrays, (2001, 2008))
    norm.save(tmp_path / "n.json")
    assert Normaliser.load(tmp_path / "n.json") == norm
    (tmp_path / "bad.json").write_text("{\"x\": 1}")
    with pytest.raises(DataError, match="bad.json"):
        Normaliser.load(tmp_path / "bad.json")


def test_windows_with_missing_inputs_or_targets_are_dropped(table):
    gappy = table.copy(deep=True)
    gappy["t2m"][{"time": 40, "band": 1}] = np.nan
    gappy["stl2"][{"time": 60, "band": 2}] = np.nan  # one layer missing: the window stays
    for v in schema.TARGETS:  # every layer missing: the window goes
        gappy[v][{"time": 70, "band": 0}] = np.nan
    arrays = table_arrays(gappy, F.PAPER_DYNAMIC, STATIC)
    counts: dict = {}
    idx = window_index(arrays, (2003, 2010), counts=counts)
    full = window_index(table_arrays(table, F.PAPER_DYNAMIC, STATIC), (2003, 2010))
    hit_input = (idx[:, 0] == 1) & (idx[:, 1] >= 40) & (idx[:, 1] - 23 <= 40)
    assert not hit_input.any()
    assert ((idx[:, 0] == 2) & (idx[:, 1] + 1 == 60)).sum() == 1  # masked in the loss instead
    assert not ((idx[:, 0] == 0) & (idx[:, 1] + 1 == 70)).any()
    assert len(full) - len(idx) == 24 + 1
    assert counts == {"candidates": len(full), "dropped_missing_inputs": 24,
                      "dropped_missing_targets": 1, "kept": len(idx)}


def test_calendar_features_are_derived_when_absent(table):
    bare = table.drop_vars(list(F.PAPER_CALENDAR))
    a = table_arrays(bare, F.PAPER_DYNAMIC, STATIC)
    b = table_arrays(table, F.PAPER_DYNAMIC, STATIC)
    np.testing.assert_allclose(a.dynamic, b.dynamic, atol=1e-5)


def test_missing_variables_and_bad_tables_name_the_problem(table):
    with pytest.raises(DataError, match="'t2m'"):
        table_arrays(table.drop_vars("t2m"), F.PAPER_DYNAMIC, STATIC)
    with pytest.raises(DataError, match="'bdod_l1'"):
        table_arrays(table.drop_vars("bdod_l1"), F.PAPER_DYNAMIC, STATIC)
    with pytest.raises(DataError, match="gap-free"):
        table_arrays(table.isel(time=[0, 1, 3]), F.PAPER_DYNAMIC, STATIC)


def test_target_windows_for_months_after_the_table(arrays):
    idx = target_windows(arrays, pd.date_range("2010-06", "2011-01", freq="MS"))
    assert len(idx) == 8 * 3
    assert idx[-1, 1] == len(arrays.time) - 1  # 2011-01 is predicted from 2009-01..2010-12
    with pytest.raises(DataError, match="needs 24 input months"):
        target_windows(arrays, pd.DatetimeIndex(["2002-06-01"]))


def test_gridded_tables_use_the_cell_dim_and_band_coordinate(table):
    cells = table.rename({"band": "cell"}).drop_vars(["lat_min", "lat_max"])
    cells = cells.assign_coords(band=("cell", np.array([0, 0, 5])))
    arrays = table_arrays(cells, F.PAPER_DYNAMIC, STATIC)
    assert arrays.unit_dim == "cell"
    assert arrays.band.tolist() == [0, 0, 5]
    assert torch.as_tensor(arrays.band).dtype == torch.int64


def test_z_is_one_value_per_window_taken_at_the_last_input_month(table):
    from permaplug.training.zsignal import fit_z, z_series

    stats = fit_z(table, (2001, 2008), schema.WINDOW)
    z = z_series(table, stats)
    arrays = table_arrays(table, (*F.PAPER_DYNAMIC, "z"), STATIC, z)
    idx = window_index(arrays, (2001, 2008))
    # z needs 24 months of strd: exactly the months a window needs anyway
    assert pd.Timestamp(arrays.time[idx[:, 1].min() + 1]) == pd.Timestamp("2003-01-01")
    norm = Normaliser.fit(arrays, (2001, 2008), z_stats=stats)
    ws = window_set(arrays, norm, idx)
    x, *_ = ws.batch(slice(0, 10))
    zc = len(F.PAPER_DYNAMIC)
    for n, (u, last) in enumerate(idx[:10]):
        expect = (z.isel(band=u).values[last] - norm.dynamic_mean[zc]) / norm.dynamic_std[zc]
        np.testing.assert_allclose(x[n, :, zc].numpy(), np.full(24, expect), rtol=1e-5)
    # the other features still vary along the window
    assert float(x[0, :, 0].std()) > 0.1
