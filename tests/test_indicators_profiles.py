"""Permafrost indicators on hand-made profiles with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.core.schema import LAYER_MIDPOINTS_M
from permaplug.projection import indicators as ind


def _series(peaks: list[list[float]], start: str = "2001-01-01") -> xr.DataArray:
    """Monthly (time, band, layer): a sine year per layer whose maximum is ``peaks[band][layer]``
    in July and whose minimum is 20 degC below it."""
    years = 2
    time = pd.date_range(start, periods=12 * years, freq="MS")
    month = time.month.values
    shape = 0.5 * (1 + np.cos(2 * np.pi * (month - 7) / 12))  # 1 in July, 0 in January
    peaks_a = np.asarray(peaks, dtype=float)
    data = peaks_a[None, :, :] - 20.0 * (1 - shape)[:, None, None]
    return xr.DataArray(data, dims=("time", "band", "layer"),
                        coords={"time": time, "band": np.arange(len(peaks))})


def test_thaw_depth_interpolates_between_midpoints():
    # Layer 1 max +2, layer 2 max -2: crossing halfway between 0.035 and 0.175 m.
    temps = _series([[2.0, -2.0, -5.0, -6.0], [4.0, 3.0, 1.0, -3.0]])
    amax = ind.annual_max(temps)
    np.testing.assert_allclose(amax.sel(year=2001, band=0).values, [2.0, -2.0, -5.0, -6.0])
    depth = ind.thaw_depth(amax).sel(year=2001)
    m = LAYER_MIDPOINTS_M
    assert depth.sel(band=0).item() == pytest.approx((m[0] + m[1]) / 2)
    # Band 1: layer 3 at +1, layer 4 at -3: a quarter of the way from m[2] to m[3].
    assert depth.sel(band=1).item() == pytest.approx(m[2] + 0.25 * (m[3] - m[2]))


def test_thaw_depth_all_layers_thaw_and_none_thaw():
    temps = _series([[5.0, 4.0, 3.0, 0.5], [-1.0, -2.0, -3.0, -4.0]])
    depth = ind.thaw_depth(ind.annual_max(temps)).sel(year=2002)
    assert np.isinf(depth.sel(band=0).item())
    assert depth.sel(band=1).item() == 0.0
    # all four maxima above 0: the crossing lies below the deepest mid-depth, unresolved
    assert ind.format_thaw_depth(depth.sel(band=0).item()) == "> 1.945 m"
    assert ind.format_thaw_depth(depth.sel(band=1).item()) == "< 0.035 m"
    assert ind.format_thaw_depth(0.5234) == "0.52 m"


def test_thaw_depth_takes_first_crossing_from_surface():
    # A warm deep layer under a frozen one: the active layer ends at the first crossing.
    temps = _series([[1.0, -1.0, 2.0, 2.0]])
    depth = ind.thaw_depth(ind.annual_max(temps)).sel(year=2001, band=0).item()
    m = LAYER_MIDPOINTS_M
    assert depth == pytest.approx((m[0] + m[1]) / 2)


def test_months_above_zero_counts_each_layer():
    temps = _series([[2.0, -2.0, 25.0, -30.0]])
    months = ind.months_above_zero(temps).sel(year=2001, band=0).values
    # Layer with peak +2: months where 2 - 20 (1 - s) > 0  <=> s > 0.9, i.e. only July (s=1)
    # and June/August (s=0.933) -> 3 months. Peak 25: always above 0 except when 25-20(1-s) <= 0
    # <=> s <= -0.25: never -> 12 months.
    assert months.tolist() == [3, 0, 12, 0]


def test_incomplete_year_is_dropped():
    temps = _series([[2.0, -2.0, -5.0, -6.0]]).isel(time=slice(0, 20))
    assert ind.annual_max(temps)["year"].values.tolist() == [2001]
    with pytest.raises(DataError, match="complete calendar year"):
        ind.annual_max(temps.isel(time=slice(0, 5)))


def _amax(per_year: list[list[float]], first: int = 2001) -> xr.DataArray:
    """Annual maxima ``(year, layer)`` from rows of four layer values."""
    return xr.DataArray(np.asarray(per_year, float), dims=("year", "layer"),
                        coords={"year": np.arange(first, first + len(per_year))})


def test_one_cold_year_between_warm_ones_is_not_permafrost():
    warm, cold = [1.0, 0.5, 0.2, 0.1], [1.0, 0.5, -0.2, -0.5]
    flag = ind.near_surface_permafrost(_amax([warm, cold, warm, warm]))
    assert flag.values.tolist() == [False, False, False, False]
    top = ind.permafrost_table_top(_amax([warm, cold, warm, warm]))
    assert np.isnan(top.values).all()
    # the single-year reading (min_years=1) would have called it permafrost
    assert ind.near_surface_permafrost(_amax([warm, cold, warm, warm]), 1).values.tolist() == [
        False, True, False, False]


def test_two_consecutive_cold_years_are_permafrost_both_years():
    warm, cold = [1.0, 0.5, 0.2, 0.1], [1.0, 0.5, -0.2, -0.5]
    flag = ind.near_surface_permafrost(_amax([warm, cold, cold, warm, cold]))
    # both years of the pair count; the last year is cold but no later year confirms it
    assert flag.values.tolist() == [False, True, True, False, False]
    top = ind.permafrost_table_top(_amax([warm, cold, cold, warm]))
    assert top.values[1] == pytest.approx(LAYER_MIDPOINTS_M[2])
    assert np.isnan(top.values[0]) and np.isnan(top.values[3])


def test_permafrost_needs_the_same_layer_and_adjacent_years():
    a, b = [1.0, 0.5, -0.2, 0.1], [1.0, 0.5, 0.2, -0.1]  # layer 3 cold, then layer 4 cold
    assert not ind.near_surface_permafrost(_amax([a, b])).any()
    # a gap in the years (an incomplete year dropped) breaks the run
    gap = _amax([a, a]).assign_coords(year=[2001, 2003])
    assert not ind.near_surface_permafrost(gap).any()
    assert ind.near_surface_permafrost(_amax([a, a])).all()


def test_exactly_zero_counts_as_frozen():
    zero = [1.0, 0.0, -1.0, -2.0]
    assert ind.near_surface_permafrost(_amax([zero, zero])).values.tolist() == [True, True]
    assert ind.permafrost_table_top(_amax([zero, zero])).values[0] == pytest.approx(
        LAYER_MIDPOINTS_M[1])


def test_near_surface_permafrost_with_other_dims_and_min_years():
    temps = _series([[2.0, 1.0, -0.5, -3.0], [3.0, 2.0, 1.0, 0.5]])
    amax = ind.annual_max(temps)
    flag = ind.near_surface_permafrost(amax)
    assert flag.dims == ("year", "band")
    assert flag.sel(year=2001).values.tolist() == [True, False]
    assert flag.sel(year=2002).values.tolist() == [True, False]
    three = ind.near_surface_permafrost(amax, min_years=3)
    assert not three.any()  # only two years in the record
    top = ind.permafrost_table_top(amax).sel(year=2001)
    assert top.sel(band=0).item() == pytest.approx(LAYER_MIDPOINTS_M[2])
    assert np.isnan(top.sel(band=1).item())
    with pytest.raises(DataError, match="min_years"):
        ind.near_surface_permafrost(amax, min_years=0)


def test_indicator_tables_carry_label_and_values():
    temps = _series([[3.0, -1.0, -5.0, -6.0]])
    per_layer, per_year = ind.indicator_tables(temps, "demo emulator")
    assert set(per_layer["data"]) == {"demo emulator"}
    row = per_layer[(per_layer.year == 2001) & (per_layer.layer == "stl2")].iloc[0]
    assert row.annual_max_degC == pytest.approx(-1.0)
    assert row.months_above_0 == 0
    yr = per_year[per_year.year == 2002].iloc[0]
    assert yr.thaw_depth_m == pytest.approx(0.035 + 0.14 * 3 / 4)
    assert yr.thaw_depth == "0.14 m"
    assert bool(yr.near_surface_permafrost) is True


def test_wrong_layer_count_is_refused():
    temps = _series([[2.0, -2.0, -5.0, -6.0]]).isel(layer=slice(0, 3))
    with pytest.raises(DataError, match="3 layers"):
        ind.annual_max(temps)
