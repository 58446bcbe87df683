"""``permaplug.core.read_cache``: a source's dataset stored once, re-read while its files and
the code are unchanged, never when the copy would not be the same."""
from __future__ import annotations

import os
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import read_cache as rc


@pytest.fixture()
def cache_on(monkeypatch, tmp_path):
    """The read cache switched on, in a folder of its own."""
    monkeypatch.setenv("PERMAPLUG_READ_CACHE", "1")
    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "reads"


class Counted:
    """A source class stand-in: ``read(path)`` counts its calls."""

    calls = 0

    @classmethod
    def read(cls, path, attrs=None, time_unit="ns") -> xr.Dataset:
        cls.calls += 1
        frame = pd.read_csv(path, parse_dates=["time"])
        frame["time"] = frame["time"].astype(f"datetime64[{time_unit}]")
        ds = frame.set_index(["time", "band"]).to_xarray()
        ds["snd"].attrs = {"units": "m"}
        ds.attrs.update(attrs or {"provenance": f"csv: {path}"})
        return ds


def _csv(path, scale=1.0):
    time = pd.date_range("2001-01-01", periods=4, freq="MS")
    rows = [(t, b, scale * (i + b)) for i, t in enumerate(time) for b in range(3)]
    pd.DataFrame(rows, columns=["time", "band", "snd"]).to_csv(path, index=False)
    return path


def _read(path, **kw):
    opts = {"path": str(path)}
    return rc.cached_read("counted", Counted, opts, lambda: Counted.read(path, **kw))


def test_a_second_read_comes_from_the_cache_and_is_identical(cache_on, tmp_path):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    first = _read(path)
    second = _read(path)
    assert Counted.calls == 1
    xr.testing.assert_identical(first, second)
    assert all(second[k].dtype == first[k].dtype for k in first.variables)
    assert all(not v.encoding for v in second.variables.values())  # as a fresh read
    assert len(list(cache_on.glob("counted-*.nc"))) == 1


def test_a_changed_file_is_read_again(cache_on, tmp_path):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    _read(path)
    _csv(path, scale=2.0)  # new values (and size / modification time)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = _read(path)
    assert Counted.calls == 2
    assert float(again["snd"].max()) == pytest.approx(2.0 * 5)


def test_other_options_are_another_entry(cache_on, tmp_path):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    _read(path)
    rc.cached_read("counted", Counted, {"path": str(path), "scale": 2},
                   lambda: Counted.read(path))
    assert Counted.calls == 2


@pytest.mark.parametrize("option", ["https://example.org/snd.csv", "/no/such/file.csv",
                                    "/no/such/folder/*.csv"])
def test_reads_not_named_by_local_files_are_not_cached(cache_on, tmp_path, option):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    for _ in range(2):
        rc.cached_read("counted", Counted, {"path": str(path), "extra": option},
                       lambda: Counted.read(path))
    assert Counted.calls == 2 and not cache_on.exists()


def test_a_dataset_netcdf_cannot_hold_is_returned_but_not_cached(cache_on, tmp_path):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    for _ in range(2):
        ds = _read(path, attrs={"flags": {"a": 1}})  # a dict attribute: not NetCDF
    assert ds.attrs["flags"] == {"a": 1}
    assert Counted.calls == 2 and not list(cache_on.glob("*.nc"))


def test_a_dataset_whose_dtypes_would_change_is_not_cached(cache_on, tmp_path):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    for _ in range(2):  # NetCDF gives times back in ns: the copy would not be the same
        ds = _read(path, time_unit="s")
    assert ds["time"].dtype == np.dtype("datetime64[s]")
    assert Counted.calls == 2 and not list(cache_on.glob("*.nc"))


def test_switched_off_by_the_environment(cache_on, tmp_path, monkeypatch):
    monkeypatch.setenv("PERMAPLUG_READ_CACHE", "0")
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    _read(path)
    _read(path)
    assert Counted.calls == 2 and not cache_on.exists()


def test_input_files_follow_folders_globs_and_side_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/a.nc", "d/sub/b.nc", "map.shp", "map.dbf", "map.prj", "other.txt"):
        (tmp_path / name).write_text("x")
    files = rc.input_files({"paths": str(tmp_path / "d"), "map": str(tmp_path / "map.shp"),
                            "label": "demo emulator", "n": 3})
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "d/a.nc", "d/sub/b.nc", "map.dbf", "map.prj", "map.shp"]
    assert rc.input_files({"paths": str(tmp_path / "d" / "*.nc")}) == [tmp_path / "d" / "a.nc"]
    assert rc.input_files({"label": "no paths"}) == []


def test_the_key_follows_a_third_party_module(tmp_path, monkeypatch):
    mod = tmp_path / "thirdsrc.py"
    mod.write_text("class Src:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import thirdsrc

    data = _csv(tmp_path / "snd.csv")
    before = rc.read_key("third", thirdsrc.Src, {"path": str(data)})
    mod.write_text(textwrap.dedent("class Src:\n    version = 2\n"))
    after = rc.read_key("third", thirdsrc.Src, {"path": str(data)})
    sys.modules.pop("thirdsrc", None)
    assert before and after and before != after


def test_demo_entries_read_from_the_cache_equal_fresh_reads(cache_on, demo_catalog,
                                                            monkeypatch):
    from permaplug.core.catalog import load_catalog

    cat = load_catalog(demo_catalog)
    names = [n for n in ("era5land", "usgs-lithology", "openlandmap")]
    monkeypatch.setenv("PERMAPLUG_READ_CACHE", "0")
    fresh = {n: cat.open(n) for n in names}
    monkeypatch.setenv("PERMAPLUG_READ_CACHE", "1")
    for _ in range(2):  # the first stores, the second reads the copy
        for n in names:
            got = cat.open(n)
            xr.testing.assert_identical(got, fresh[n])
            for k in got.variables:
                assert got[k].dtype == fresh[n][k].dtype
                np.testing.assert_array_equal(got[k].values, fresh[n][k].values)
    assert len(list(cache_on.glob("*.nc"))) == len(names)


def test_only_the_most_recently_used_copies_are_kept(cache_on, tmp_path):
    import time

    Counted.calls = 0
    paths = [_csv(tmp_path / f"snd{i}.csv") for i in range(3)]
    for p in paths:
        _read(p)
        time.sleep(0.02)
    old_copy = min(cache_on.glob("*.nc"), key=lambda p: p.stat().st_mtime)
    _read(paths[0])  # a hit: the first copy is used again, the second is now the oldest
    rc.prune(cache_on, keep=2)
    assert len(list(cache_on.glob("*.nc"))) == 2 and old_copy.exists()
    calls = Counted.calls
    _read(paths[0])
    _read(paths[2])
    assert Counted.calls == calls  # kept: answered from their copies
    _read(paths[1])
    assert Counted.calls == calls + 1  # dropped: read again


def test_an_unusable_cache_folder_reads_as_without_the_cache(cache_on, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(blocker))
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    first, second = _read(path), _read(path)
    assert Counted.calls == 2
    xr.testing.assert_identical(first, second)


def test_a_damaged_copy_is_read_again_and_replaced(cache_on, tmp_path):
    path = _csv(tmp_path / "snd.csv")
    Counted.calls = 0
    fresh = _read(path)
    (copy,) = cache_on.glob("*.nc")
    copy.write_bytes(b"not a NetCDF file")
    again = _read(path)
    assert Counted.calls == 2
    xr.testing.assert_identical(again, fresh)
    xr.testing.assert_identical(_read(path), fresh)  # the replaced copy
    assert Counted.calls == 2


def test_the_package_digest_covers_bundled_data_files(monkeypatch):
    """Built-in sources read tables bundled with the package (the lithology unit table): the
    digest reads them as well as the modules, and no compiled cache."""
    from pathlib import Path

    import permaplug

    root = Path(permaplug.__file__).parent
    opened = []
    real = Path.read_bytes

    def spy(self):
        opened.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    rc.package_digest.cache_clear()
    digest = rc.package_digest()
    monkeypatch.undo()
    rc.package_digest.cache_clear()
    names = {p.relative_to(root).as_posix() for p in opened}
    assert "resources/lithology/unit_classes.csv" in names
    assert "core/read_cache.py" in names
    assert not any("__pycache__" in n for n in names)
    assert digest == rc.package_digest()  # the same files, the same digest
