"""Writing netCDF-4 variables a chunk at a time, shuffled and deflated by ISA-L (issue 16): any
reader gets the values back, the file declares the CDS's filters, edge chunks are padded."""
from __future__ import annotations

import zlib

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

from permaplug.demo import chunks


def _empty_file(path, nt: int, ny: int, nx: int):
    ds = xr.Dataset(coords={"t": np.arange(nt), "y": np.arange(ny), "x": np.arange(nx)})
    ds.to_netcdf(path, engine="netcdf4")


def test_time_rows_are_views_inside_a_piece_and_joined_across():
    a, b = np.arange(10.0).reshape(5, 2), np.arange(10.0, 16.0).reshape(3, 2)
    inside = chunks.time_rows((a, b), 1, 4)
    assert np.shares_memory(inside, a)
    np.testing.assert_array_equal(inside, a[1:4])
    np.testing.assert_array_equal(chunks.time_rows((a, b), 3, 8), np.concatenate([a, b])[3:8])
    np.testing.assert_array_equal(chunks.time_rows((a, b), 5, 8), b)
    for t0, t1 in [(6, 9), (-1, 2), (3, 3)]:
        with pytest.raises(ValueError, match="outside a series of 8 rows"):
            chunks.time_rows((a, b), t0, t1)


def test_shuffle_deflate_is_hdf5s_shuffle_then_a_zlib_stream():
    values = np.random.default_rng(0).normal(250.0, 20.0, (3, 4, 5)).astype(np.float32)
    raw = zlib.decompress(chunks.shuffle_deflate(values))  # a zlib stream: zlib reads it
    planes = np.frombuffer(raw, np.uint8).reshape(4, -1)  # byte k of every value, k = 0..3
    np.testing.assert_array_equal(planes.T.copy().view("<f4").reshape(values.shape), values)
    assert planes[3].tobytes() == values.view(np.uint8).reshape(-1, 4)[:, 3].tobytes()


@pytest.mark.parametrize("nt", [24, 30])
def test_written_chunks_read_back_with_netcdf4_xarray_and_h5py(tmp_path, nt):
    """Chunks of 12 rows; with 30 rows the last is padded with NaN: readers see 30 rows."""
    path = tmp_path / "c.nc"
    _empty_file(path, nt, 3, 4)
    rng = np.random.default_rng(nt)
    a = rng.normal(0.0, 1.0, (nt, 3, 4)).astype(np.float32)
    a[2, 1, 1] = np.nan
    b = rng.uniform(0.0, 1.0, (3, 4)).astype(np.float32)
    calls = []

    def rows(t0: int, t1: int) -> np.ndarray:
        calls.append((t0, t1))
        return a[t0:t1]

    chunks.write_deflated(path, [chunks.Variable("a", {"units": "K"}, rows),
                                 chunks.Variable("b", {"units": "1"}, b, dims=("y", "x"))],
                          ("t", "y", "x"), (12, 3, 4), nt)
    assert calls == [(t0, min(t0 + 12, nt)) for t0 in range(0, nt, 12)]  # a chunk at a time
    with netCDF4.Dataset(path) as ds:
        var = ds["a"]
        assert var.chunking() == [12, 3, 4]
        assert var.filters()["zlib"] and var.filters()["shuffle"] and var.filters()["complevel"] == 1
        assert var.getncattr("units") == "K" and np.isnan(var.getncattr("_FillValue"))
        np.testing.assert_array_equal(var[:].filled(np.nan), a)
        np.testing.assert_array_equal(ds["b"][:], b)
        assert "coordinates" not in ds.ncattrs()
    with xr.open_dataset(path) as ds:
        np.testing.assert_array_equal(ds["a"].values, a)
    with h5py.File(path) as h5:
        np.testing.assert_array_equal(h5["a"][...], a)
        assert h5["a"].id.get_num_chunks() == -(-nt // 12)


def test_rows_of_the_wrong_shape_or_type_are_refused_naming_the_variable(tmp_path):
    path = tmp_path / "w.nc"
    _empty_file(path, 12, 3, 4)
    bad = chunks.Variable("soil", {}, lambda t0, t1: np.zeros((t1 - t0, 3, 4)))  # float64
    with pytest.raises(ValueError, match=r"w.nc: soil rows 0..11 are float64 \(12, 3, 4\)"):
        chunks.write_deflated(path, [bad], ("t", "y", "x"), (12, 3, 4), 12)


def test_a_dataset_with_other_filters_is_refused(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as h5:
        dset = h5.create_dataset("x", (4, 4), "f4", chunks=(2, 4), compression="gzip")
        with pytest.raises(RuntimeError, match="expected shuffle then deflate"):
            chunks._check_filters(path, dset)


_FULL_DISK = r"""
import resource, signal, sys
from pathlib import Path
import numpy as np, pandas as pd
from permaplug.demo import formats
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))
time = pd.date_range("2001-01-01", periods=120, freq="MS")
rng = np.random.default_rng(0)
fields = {"ssrd": rng.normal(100.0, 50.0, (120, 20, 30)), "tp": rng.gamma(2.0, 30.0, (120, 20, 30))}
formats.write_era5land(Path(sys.argv[1]), time, np.linspace(70, 60, 20),
                       np.linspace(-160, -140, 30), fields, np.ones((20, 30), bool), "test")
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_write_that_runs_out_of_room_is_one_clear_error_and_leaves_nothing(tmp_path):
    """A file-size limit stands in for a full disk: the writer fails with one line naming the
    file, the cause and the variable, and leaves no file, temporary or final, behind."""
    import subprocess
    import sys

    target = tmp_path / "era5land.nc"
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(target)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("OSError: [Errno 27] File too large (writing "), last
    assert last.endswith(f"'{target}'"), last
    assert list(tmp_path.iterdir()) == []
