"""Coarse model grids and short calibrations (issue 15, item 4): a band without a model
grid cell takes the nearest grid row (stated) or is an error naming it; a calibration with too
few months present is refused.

The 2.8 deg grid carries the real IPSL-CM5A-MR Alaska box series (``cmip5_alaska_box``) with a
latitude gradient, written as CMIP5 DRS NetCDF; the reanalysis is the real ERA5 points.
"""
from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.correction.pipeline import correct_dataset
from permaplug.plugins.sources.cmip import open_cmip, read_region_table

REAL = Path(__file__).resolve().parents[1] / "permaplug" / "resources" / "real"
LAT28 = np.array([58.6, 61.4, 64.2, 67.0, 69.8])   # bands 1, 2, 3, 5: bands 0 and 4 empty
LON28 = np.array([194.0, 196.8, 199.6, 202.4, 205.2, 208.0, 210.8, 213.6, 216.4])


def write_coarse(folder: Path, lat: np.ndarray = LAT28, years=(1996, 2015)) -> Path:
    """tas and pr of IPSL-CM5A-MR (real box means) on a 2.8 deg grid, historical + rcp85."""
    folder.mkdir(parents=True, exist_ok=True)
    box = REAL / "cmip5_alaska_box"
    for var, units, grad in (("tas", "K", -0.6), ("pr", "kg m-2 s-1", 0.0)):
        for exp in ("historical", "rcp85"):
            s = read_region_table(box / f"timeSeriesLO_{var}_Alaska_Monthly_{exp}.csv",
                                  "IPSL-CM5A-MR", "run1")
            s = s[(s.index.year >= years[0]) & (s.index.year <= years[1])]
            if var == "pr":
                s = s / 86400.0  # mm/day -> kg m-2 s-1
            times = [cftime.DatetimeNoLeap(t.year, t.month, 15) for t in s.index]
            data = (s.to_numpy()[:, None, None] + grad * (lat[None, :, None] - 64.0)
                    + np.zeros((1, lat.size, LON28.size)))
            t0, t1 = s.index[0], s.index[-1]
            ds = xr.Dataset({var: (("time", "lat", "lon"), data, {"units": units})},
                            coords={"time": times, "lat": lat, "lon": LON28})
            ds["time"].encoding.update(units="days since 1850-01-01", calendar="noleap")
            ds.to_netcdf(folder / f"{var}_Amon_IPSL-CM5A-MR_{exp}_r1i1p1_"
                                  f"{t0:%Y%m}-{t1:%Y%m}.nc")
    return folder


def test_bands_without_a_grid_cell_take_the_nearest_row_and_say_so(tmp_path):
    folder = write_coarse(tmp_path / "c")
    with pytest.warns(UserWarning, match=r"no grid cell in band 0 \(59.26-61.28 N\) <- nearest "
                                         r"grid row 61.40 N; band 4 \(67.31-69.32 N\) <- "
                                         r"nearest grid row 67.00 N \(nearest-row rule"):
        ds = open_cmip(folder)
    assert bool(ds["t2m"].notnull().all())
    # band 0 is the 61.4 N row, band 1 too (its only row): same values; band 4 = band 3
    np.testing.assert_allclose(ds["t2m"].sel(band=0), ds["t2m"].sel(band=1))
    np.testing.assert_allclose(ds["t2m"].sel(band=4), ds["t2m"].sel(band=3))
    assert not np.allclose(ds["t2m"].sel(band=4), ds["t2m"].sel(band=5))
    assert "nearest-row rule: band 0" in ds.attrs["provenance"]
    assert ds.attrs["bands_from_nearest_row"].count("nearest grid row") == 2


def test_empty_bands_error_names_the_band(tmp_path):
    folder = write_coarse(tmp_path / "c")
    with pytest.raises(DataError, match=r"band 0 \(59.26-61.28 N\) has no grid cell \(grid "
                                        r"spacing 2.80 deg in latitude\)"):
        open_cmip(folder, empty_bands="error")


def test_a_band_beyond_the_grid_is_an_error(tmp_path):
    folder = write_coarse(tmp_path / "c", lat=np.array([58.6, 61.4, 64.2, 67.0]))
    with pytest.raises(DataError, match=r"band 5 \(69.32-71.34 N\) has no grid cell, and the "
                                        r"nearest grid row \(67.00 N\) is 2.32 deg away"):
        open_cmip(folder)


def test_calibration_with_too_few_months_is_refused(tmp_path):
    from permaplug.core.catalog import load_catalog

    folder = write_coarse(tmp_path / "c", years=(1990, 2020))
    with pytest.warns(UserWarning, match="nearest-row rule"):
        scen = open_cmip(folder)
    obs = load_catalog("real-tables").open("era5-points")
    # an empty reanalysis band (no ERA5 point in it) is refused by name
    with pytest.raises(DataError, match=r"reanalysis: 't2m' has 0 of the 276 months .* in "
                                        r"band 0 \(0 %"):
        correct_dataset(scen, obs, "qm", (2001, 2023), ["t2m", "tp"])
    bands = [b for b in range(6) if bool(obs["t2m"].sel(band=b).notnull().any())]
    scen, obs = scen.sel(band=bands), obs.sel(band=bands)
    short = obs.sel(time=slice("2001-01-01", "2002-12-01"))
    with pytest.raises(DataError, match=rf"reanalysis: 't2m' has 24 of the 276 months of the "
                                        rf"calibration period 2001-2023 in band {bands[0]} "
                                        r"\(9 %; at least 90 % needed\)"):
        correct_dataset(scen, short, "qm", (2001, 2023), ["t2m", "tp"])
    with pytest.raises(DataError, match=r"scenario rcp85: 't2m' has 228 of the 276 months"):
        correct_dataset(scen.sel(time=slice(None, "2019-12-01")), obs, "qm", (2001, 2023),
                        ["t2m", "tp"], min_share=0.9)
    # the same data with a period they cover, or a lower share, are corrected
    res = correct_dataset(scen, obs, "qm", (2001, 2020), ["t2m", "tp"])
    assert bool(res.corrected["t2m"].notnull().all())
    low = correct_dataset(scen, short, "qm", (2001, 2023), ["t2m", "tp"], min_share=0.05)
    assert low.calibration == (2001, 2023)
    assert pd.Index(low.corrected["time"].values).is_monotonic_increasing
