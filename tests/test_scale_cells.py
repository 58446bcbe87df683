"""Gridded mode helpers: cell chunking, nearest-model-cell mapping, per-cell correction."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.data import features as F
from permaplug.scale.cells import cell_blocks, chunk_cells, nearest_cells, to_cells
from permaplug.scale.correction import correct_on_cells

FEATURES = F.PAPER_FORCING + schema.SOIL_WATER
UNITS = {"t2m": "degC", "skt": "degC", "tp": "mm", "sf": "mm", "strd": "J m-2",
         "ssrd": "J m-2", "slhf": "J m-2", "sshf": "J m-2", **{v: "m3 m-3" for v in
                                                              schema.SOIL_WATER}}


def _series(rng, time, offset: float, bias: float, n: int) -> dict[str, np.ndarray]:
    """Plausible monthly values (time, n) of every feature; ``bias`` shifts temperatures."""
    season = -np.cos(2 * np.pi * (time.month.to_numpy() - 0.5) / 12)[:, None]
    shape = (len(time), n)
    t2m = -8 + offset + 15 * season + bias + rng.normal(0, 1.5, shape)
    out = {"t2m": t2m, "skt": t2m - 1 + rng.normal(0, 0.3, shape),
           "tp": (1 + 0.3 * bias / 3) * rng.gamma(4, 10, shape),
           "sf": np.clip(20 - 15 * season + rng.normal(0, 3, shape), 0.5, None),
           "strd": 6e8 + 2e8 * season + 1e7 * rng.normal(size=shape),
           "ssrd": 3e8 + 2.5e8 * season + 1e7 * rng.normal(size=shape),
           "slhf": -4e7 - 3e7 * season + 3e6 * rng.normal(size=shape),
           "sshf": -1e7 + 1e7 * season + 3e6 * rng.normal(size=shape)}
    for i in range(1, 5):
        out[f"swvl{i}"] = np.clip(0.3 + 0.03 * i + 0.04 * season + rng.normal(0, 0.01, shape),
                                  0.05, 0.6)
    return out


def grid_table(n_cells: int = 6, seed: int = 0) -> xr.Dataset:
    """Observed gridded table 2001-2012: cells along a meridian, 1 degC colder per degree N."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01", "2012-12", freq="MS")
    lat = np.linspace(60.2, 70.2, n_cells)
    lon = np.full(n_cells, -150.0) + np.arange(n_cells) * 0.1
    data = _series(rng, time, offset=-(lat - 60)[None, :], bias=0.0, n=n_cells)
    ds = xr.Dataset({k: (("time", "cell"), v, {"units": UNITS[k]}) for k, v in data.items()},
                    coords={"time": time, "cell": np.arange(n_cells), "lat": ("cell", lat),
                            "lon": ("cell", lon), "band": ("cell", schema.band_of_latitude(lat))})
    ds.attrs[schema.DATA_LABEL_ATTR] = "synthetic observations"
    return ds


def model_scenarios(seed: int = 1) -> xr.Dataset:
    """Coarse model cells (lat 60..70 every 2.5 deg, 0..360 longitudes), 3 degC too warm."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01", "2030-12", freq="MS")
    lat = np.array([60.0, 62.5, 65.0, 67.5, 70.0])
    lon = np.full(lat.size, 210.0)  # = -150 E
    parts = []
    for s, extra in (("rcp26", 0.0), ("rcp85", 0.05)):
        trend = extra * (time.year.to_numpy() - 2001)[:, None]
        d = _series(rng, time, offset=-(lat - 60)[None, :] + trend, bias=3.0, n=lat.size)
        parts.append(xr.Dataset({k: (("time", "cell"), v, {"units": UNITS[k]})
                                 for k, v in d.items()}))
    ds = xr.concat(parts, dim=pd.Index(["rcp26", "rcp85"], name="scenario"))
    ds = ds.assign_coords(time=time, cell=np.arange(lat.size), lat=("cell", lat),
                          lon=("cell", lon))
    ds.attrs[schema.DATA_LABEL_ATTR] = "synthetic model"
    return ds


def test_nearest_cells_by_great_circle_distance():
    idx, dist = nearest_cells(np.array([60.0, 65.0, 70.0]), np.array([210.0, 210.0, 210.0]),
                              np.array([64.0, 69.9, 60.0]), np.array([-150.0, -150.0, -140.0]))
    assert idx.tolist() == [1, 2, 0]
    # one degree of latitude is 111.2 km on a sphere of radius 6371 km
    assert dist[0] == pytest.approx(111.19, abs=0.05)
    assert dist[1] == pytest.approx(11.12, abs=0.05)


def test_to_cells_takes_the_nearest_model_cell_and_keeps_table_coords():
    table = grid_table()
    scen = model_scenarios()
    mapped = to_cells(scen, table)
    assert mapped.sizes == {"scenario": 2, "time": 360, "cell": 6}
    np.testing.assert_array_equal(mapped["lat"], table["lat"])
    np.testing.assert_array_equal(mapped["band"], table["band"])
    # table latitudes 60.2, 62.2, 64.2, 66.2, 68.2, 70.2 -> model 60, 62.5, 65, 65, 67.5, 70
    expect = [0, 1, 2, 2, 3, 4]
    for c, m in enumerate(expect):
        np.testing.assert_array_equal(mapped["t2m"].isel(cell=c), scen["t2m"].isel(cell=m))
    assert "nearest of 5 model cells" in mapped.attrs["mapped_to_cells"]


def test_to_cells_block_by_block_is_lazy_and_equal():
    table, scen = grid_table(), model_scenarios()
    eager = to_cells(scen, table)
    lazy = to_cells(scen, table, cells_per_chunk=4)
    assert lazy["t2m"].chunks[lazy["t2m"].get_axis_num("cell")] == (4, 2)
    assert lazy["t2m"].chunks[lazy["t2m"].get_axis_num("time")] == (360,)
    xr.testing.assert_identical(lazy.compute(), eager)


def test_to_cells_refuses_cells_far_from_every_model_cell():
    table = grid_table().assign_coords(lon=("cell", np.full(6, -100.0)))
    with pytest.raises(DataError, match="km from the nearest model cell"):
        to_cells(model_scenarios(), table)


def test_chunk_cells_and_blocks():
    ds = chunk_cells(grid_table(), 4)
    assert ds["t2m"].chunks == ((144,), (4, 2))
    assert [(s.start, s.stop) for s in cell_blocks(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(DataError, match="no 'cell' dimension"):
        chunk_cells(grid_table().isel(cell=0))


def test_per_cell_correction_removes_each_cells_bias_whatever_the_chunking():
    table = grid_table()
    scen = model_scenarios()
    opts = {"nquantiles": 20, "variables": ["t2m", "tp"]}  # two rules: additive, multiplicative
    out, _ = correct_on_cells(scen, table, "qm", (2001, 2012), opts, 2)
    assert out["t2m"].chunks is not None and out["t2m"].chunks[-1] == (2, 2, 2)
    out = out.compute()
    cal = out["t2m"].sel(scenario="rcp85", time=slice("2001", "2012"))
    obs_clim = table["t2m"].groupby("time.month").mean()
    raw = to_cells(scen, table)["t2m"].sel(scenario="rcp85", time=slice("2001", "2012"))
    raw_err = abs(raw.groupby("time.month").mean() - obs_clim).mean()
    err = abs(cal.groupby("time.month").mean() - obs_clim)
    assert float(raw_err) > 2.5  # the model is 3 degC warm plus the cell's offset error
    assert float(err.max()) < 0.3  # corrected: every cell's own monthly climate
    # cells 2 and 3 share a model cell but get their own corrections (2 degC apart)
    gap = (out["t2m"].isel(cell=2) - out["t2m"].isel(cell=3)).mean()
    assert float(gap) == pytest.approx(2.0, abs=0.3)
    # chunking changes nothing but the random jitter of near-zero precipitation
    one = correct_on_cells(scen, table, "qm", (2001, 2012), opts, 100)[0].compute()
    xr.testing.assert_allclose(out["t2m"], one["t2m"])
    rel = abs(out["tp"].mean("time") - one["tp"].mean("time")) / one["tp"].mean("time")
    assert float(rel.max()) < 0.01
    tp_ratio = (out["tp"].sel(time=slice("2001", "2012")).mean("time")
                / table["tp"].mean("time"))
    np.testing.assert_allclose(tp_ratio.sel(scenario="rcp85"), 1.0, atol=0.05)
    xr.testing.assert_equal(out["skt"], to_cells(scen, table)["skt"].astype(out["skt"].dtype))
    assert out.attrs["bias_correction"] == "qm"


def test_gridded_precipitation_correction_repeats_run_to_run(tmp_path, monkeypatch):
    """Dry months make xsdba draw random numbers (frequency adaptation, jitter) while dask
    computes; two runs of the same call give the same precipitation and snowfall (the
    in-memory and the Zarr paths are different dask graphs: each repeats itself)."""
    import permaplug.scale.correction as corr

    table, scen = grid_table(), model_scenarios()
    for v in ("tp", "sf"):  # dry months: some in the reanalysis only, some in the model only
        table[v] = table[v].where(~table["time"].dt.month.isin([6, 7]), 0.0)
        scen[v] = scen[v].where(~scen["time"].dt.month.isin([8, 9, 10]), 0.0)
    monkeypatch.setattr(corr, "open_scenarios_grid",
                        lambda catalog, entry=None, start=None: scen.sel(time=slice(start, None)))
    opts = {"nquantiles": 20, "variables": ["t2m", "tp", "sf"]}
    runs = [xr.open_zarr(corr.correct_to_store(
        None, table, tmp_path / f"r{i}.zarr", "qm", (2001, 2012), options=opts,
        cells_per_chunk=3, progress=False)).load() for i in range(3)]
    for other in runs[1:]:
        xr.testing.assert_equal(runs[0][["tp", "sf"]], other[["tp", "sf"]])
    again = [corr.corrected_scenarios_grid(None, table, "qm", (2001, 2012), options=opts,
                                           cells_per_chunk=3)[0] for _ in range(2)]
    xr.testing.assert_equal(again[0][["tp", "sf"]], again[1][["tp", "sf"]])


def test_block_by_block_correction_equals_one_graph_and_writes_zarr(tmp_path, monkeypatch):
    import permaplug.scale.correction as corr
    from permaplug.core.errors import ConfigError

    table, scen = grid_table(), model_scenarios()
    monkeypatch.setattr(corr, "open_scenarios_grid",
                        lambda catalog, entry=None, start=None: scen.sel(time=slice(start, None)))
    opts = {"nquantiles": 20, "variables": ["t2m", "tp"]}
    whole = correct_on_cells(scen, table, "qm", (2001, 2012), opts, 100)[0].compute()

    blocks, fitted = corr.corrected_scenarios_grid(None, table, "qm", (2001, 2012), options=opts,
                                                   cells_per_chunk=4)
    assert len(fitted) == 2  # 6 cells in blocks of 4
    xr.testing.assert_allclose(blocks["t2m"], whole["t2m"])
    np.testing.assert_array_equal(blocks["lat"], table["lat"])

    store = corr.correct_to_store(None, table, tmp_path / "c.zarr", "qm", (2001, 2012),
                                  options=opts, cells_per_chunk=4, progress=False)
    written = xr.open_zarr(store).load()
    assert dict(written.sizes) == dict(whole.sizes)
    xr.testing.assert_allclose(written["t2m"], whole["t2m"])
    np.testing.assert_array_equal(written["band"], table["band"])

    with pytest.raises(ConfigError, match="Zarr store"):
        corr.correct_to_store(None, table, tmp_path / "c.nc", options=opts)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise DataError("second block failed")
        return correct_on_cells(*args, **kwargs)

    monkeypatch.setattr(corr, "correct_on_cells", failing)
    with pytest.raises(DataError, match="second block"):
        corr.correct_to_store(None, table, tmp_path / "d.zarr", "qm", (2001, 2012),
                              options=opts, cells_per_chunk=4, progress=False)
    assert not (tmp_path / "d.zarr").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c.zarr"]  # no temporary left behind
