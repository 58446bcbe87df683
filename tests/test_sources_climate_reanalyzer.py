"""climate-reanalyzer source: the real ERA5 point exports and small files in the same format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.plugins.sources.climate_reanalyzer import (
    ClimateReanalyzerSource,
    parse_header,
    points_to_bands,
    read_points,
)

REAL = (Path(__file__).resolve().parents[1] / "permaplug" / "resources" / "real"
        / "era5_alaska_points")

HEADER = """=======================================================================================
ECMWF ERA5 (0.5x0.5 deg)
{title} ({units})
Values averaged across Specify Point ({lat}N; {lon}E)
---------------------------------------------------------------------------------------
This file was generated using Climate Reanalyzer (https://ClimateReanalyzer.org)
Climate Change Institute; University of Maine; USA (https://climatechange.umaine.edu)
=======================================================================================
Year,Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec,Ann
"""


def _write(folder: Path, name: str, var: str, units: str, lat: float, lon: float,
           rows: dict[int, list[float]]) -> None:
    text = HEADER.format(title=var, units=units, lat=lat, lon=lon)
    for year, vals in rows.items():
        text += f"{year}," + ",".join(f"{v:g}" for v in vals) + ",-999\n"
    (folder / f"{name}_{var}.csv").write_text(text)


def test_real_fairbanks_values():
    ds = read_points(REAL)
    assert ds.sizes["point"] == 14
    fb = ds.where(ds["name"] == "Fairbanks", drop=True).isel(point=0)
    assert float(fb["lat"]) == pytest.approx(64.86)
    assert float(fb["lon"]) == pytest.approx(212.28 - 360.0)
    jan1940 = fb.sel(time="1940-01-01")
    assert float(jan1940["t2m"]) == pytest.approx(-14.611)
    assert float(jan1940["tp"]) == pytest.approx(19.8)  # 0.0198 m -> mm
    assert np.isnan(float(fb["t2m"].sel(time="2024-09-01")))  # -999 in the file
    assert ds["tp"].attrs["units"] == "mm" and ds["t2m"].attrs["units"] == "degC"
    assert ds.attrs[schema.DATA_LABEL_ATTR].startswith("ERA5 (real")
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert ds["lat"].min() > 64 and ds["lon"].max() < -140


def test_fixture_roundtrip_and_bands(tmp_path):
    rows_a = {2001: list(np.arange(1, 13, dtype=float))}
    rows_b = {2001: list(np.arange(1, 13, dtype=float) + 10)}
    for var, units in (("temp", "deg C"), ("precip", "m")):
        _write(tmp_path, "A", var, units, 65.0, 212.0, rows_a)
        _write(tmp_path, "B", var, units, 66.0, 210.0, rows_b)
    ds = read_points(tmp_path, variables=("temp", "precip"))
    assert list(ds["name"].values) == ["A", "B"]
    assert float(ds["tp"].sel(time="2001-03-01").isel(point=1)) == pytest.approx(13000.0)
    bands = points_to_bands(ds)
    # A (65.0 N) is in band 2 (63.29-65.30 N), B (66.0 N) in band 3
    assert list(bands["n_points"].values) == [0, 0, 1, 1, 0, 0]
    assert float(bands["t2m"].sel(time="2001-05-01", band=2)) == pytest.approx(5.0)
    assert float(bands["t2m"].sel(time="2001-05-01", band=3)) == pytest.approx(15.0)
    assert np.isnan(bands["t2m"].sel(band=0)).all()


def test_wrong_units_and_bad_header(tmp_path):
    _write(tmp_path, "A", "precip", "mm", 65.0, 212.0, {2001: [1.0] * 12})
    with pytest.raises(DataError, match="A_precip.csv: units 'mm'"):
        read_points(tmp_path, variables=("precip",))
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a Climate Reanalyzer export"):
        parse_header(bad)


def test_source_plugin_options(tmp_path):
    with pytest.raises(DataError, match="option 'path'"):
        ClimateReanalyzerSource().open()
    ds = ClimateReanalyzerSource(path=str(REAL), variables=["temp"], spatial="bands").open()
    assert set(ds.data_vars) == {"t2m", "n_points"}
    assert ds.sizes["band"] == schema.N_BANDS
