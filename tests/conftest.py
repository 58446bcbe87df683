"""Shared fixtures: a private cache folder for the whole session, a small demo catalog built
once, and a factory of tiny ERA5-Land catalogs (CDS NetCDF layout) that tests can damage.

Nothing here writes into the repository or the real user cache.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

matplotlib.use("Agg")

ERA5_UNITS: dict[str, str] = {
    "t2m": "K", "skt": "K", "tp": "m", "sf": "m",
    "strd": "J m**-2", "ssrd": "J m**-2", "slhf": "J m**-2", "sshf": "J m**-2",
    **{f"swvl{i}": "m**3 m**-3" for i in range(1, 5)},
    **{f"stl{i}": "K" for i in range(1, 5)},
}
"""CDS short name -> units attribute, as the Climate Data Store writes them."""

TINY_CATALOG = """version: 2
metadata: {description: tiny ERA5-Land test catalog}
entries:
  era5land:
    kwargs: {plugin: era5land, options: {paths: "{CATALOG_DIR}/era5/*.nc"}}
    metadata: {role: reanalysis, data_label: tiny ERA5-Land fixture}
"""


def era5_dataset(start: str = "2001-01", end: str = "2004-12", seed: int = 0) -> xr.Dataset:
    """A CDS-layout ERA5-Land monthly-means dataset over Alaska (1 x 3 degree cells).

    Dims ``(valid_time, latitude, longitude)``; latitude descending 70.5..60.5 N (every band
    has cells), longitude -160..-145 E. Temperatures in K with a seasonal cycle damped with
    depth, water in m (mean daily accumulation), energy in J m-2, soil water in m3 m-3.
    """
    time = pd.date_range(start, end, freq="MS")
    lat = np.arange(70.5, 59.4, -1.0)
    lon = np.arange(-160.0, -142.0, 3.0)
    rng = np.random.default_rng(seed)
    shape = (time.size, lat.size, lon.size)
    season = np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12)[:, None, None]
    north = (lat[None, :, None] - 65.0) / 6.0
    data = {}
    for v, units in ERA5_UNITS.items():
        noise = rng.normal(size=shape)
        if units == "K":
            depth = int(v[-1]) if v.startswith("stl") else 0
            val = 268.0 - 6.0 * north + 15.0 * season / (1 + depth) + noise
        elif units == "m":
            val = 0.002 + 0.0005 * np.abs(noise)
        elif units.startswith("J"):
            val = 1e6 * (5.0 + 3.0 * season + 0.3 * noise)
        else:
            val = 0.3 + 0.02 * noise
        data[v] = (("valid_time", "latitude", "longitude"), val, {"units": units})
    return xr.Dataset(data, coords={"valid_time": time, "latitude": lat, "longitude": lon})


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """PERMAPLUG_CACHE_DIR points at a temporary folder for the whole session; the read cache
    (``permaplug.core.read_cache``) is off, so that every test reads its sources (tests that
    patch a reader must not be answered from a copy): ``tests/test_read_cache.py`` turns it
    on."""
    cache = tmp_path_factory.mktemp("permaplug-cache")
    old = os.environ.get("PERMAPLUG_CACHE_DIR")
    os.environ["PERMAPLUG_CACHE_DIR"] = str(cache)
    os.environ["PERMAPLUG_READ_CACHE"] = "0"
    yield cache
    if old is None:
        os.environ.pop("PERMAPLUG_CACHE_DIR", None)
    else:
        os.environ["PERMAPLUG_CACHE_DIR"] = old


@pytest.fixture()
def one_torch_thread():
    """One torch thread, as ``permaplug run`` trains (``configure_threads``): small networks
    train fastest so, and a forked child may only be made then; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def tiny_catalog(tmp_path) -> Callable[..., Path]:
    """Factory: ``make(ds=None, name="era5.nc", catalog=TINY_CATALOG) -> catalog path``.

    Writes ``ds`` (default :func:`era5_dataset`) as ``<folder>/era5/<name>`` and the catalog
    next to it; each call uses a new folder under ``tmp_path``.
    """
    count = [0]

    def make(ds: xr.Dataset | None = None, name: str = "era5.nc",
             catalog: str = TINY_CATALOG, **to_netcdf) -> Path:
        count[0] += 1
        folder = tmp_path / f"tiny{count[0]}"
        (folder / "era5").mkdir(parents=True)
        (era5_dataset() if ds is None else ds).to_netcdf(folder / "era5" / name, **to_netcdf)
        (folder / "catalog.yaml").write_text(catalog, encoding="utf-8")
        return folder / "catalog.yaml"

    return make


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory) -> Path:
    """A small demo data set (1.5 degree grid, one emulator step per month), built once per
    session (about 20 s on 2 cores): ``catalog.yaml`` path. Treat it as read-only."""
    from permaplug.demo import build_demo

    out = tmp_path_factory.mktemp("demo-small") / "demo"
    return build_demo(out, seed=0, resolution=1.5, steps_per_month=1, progress=False)


RUN_FAST = ["--model", "gru", "--hparam", "hidden_size=8", "--epochs", "1",
            "--train-years", "2001-2004", "--test-years", "2005-2006",
            "--no-project", "--no-explain", "--no-report", "--quiet"]
"""``permaplug run`` options for a one-epoch GRU on a tiny 2001-2006 catalog."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished run folder (GRU, one epoch, plus the baselines) on a tiny 2001-2006 catalog.
    Treat it as read-only (copy it to damage it)."""
    from click.testing import CliRunner

    from permaplug.cli import cli

    folder = tmp_path_factory.mktemp("tinyrun")
    (folder / "era5").mkdir()
    era5_dataset("2001-01", "2006-12").to_netcdf(folder / "era5" / "era5.nc")
    (folder / "catalog.yaml").write_text(TINY_CATALOG, encoding="utf-8")
    out = folder / "run"
    res = CliRunner().invoke(cli, ["run", "--catalog", str(folder / "catalog.yaml"), *RUN_FAST,
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out
