"""Forked children in the demo build: shared results, errors, same data as in one process."""
from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from permaplug.core.errors import DataError
from permaplug.demo import build as B
from permaplug.demo import emulator as E
from permaplug.demo import forked
from permaplug.demo.grid import demo_grid
from permaplug.demo.simulate import simulate

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="needs fork")


def test_children_write_shared_memory_in_parallel_processes():
    out = forked.shared_zeros((3, 2), np.int64)

    def task(i: int):
        def run() -> None:
            out[i] = (i + 1, os.getpid())
        return run

    forked.run_forked([task(i) for i in range(3)], "test tasks")
    assert out[:, 0].tolist() == [1, 2, 3]
    assert len(set(out[:, 1].tolist()) | {os.getpid()}) == 4  # three children, not this process


def test_a_failing_child_is_one_clear_error():
    def fail() -> None:
        raise ValueError("bad block 7")

    with pytest.raises(DataError, match="truth run failed: ValueError: bad block 7"):
        forked.run_forked([lambda: None, fail], "truth run")


@pytest.fixture(scope="module")
def sims():
    """A small grid simulated with the truth runs in one process and in two forked children."""
    grid = demo_grid(2.0)
    return {w: simulate(grid, progress=False, steps_per_month=1, workers=w) for w in (1, 2)}


def test_forked_truth_runs_equal_the_in_process_runs(sims):
    """Spin-up and 2001-2023 on two groups of cells in two children, the truth runs in two
    children: every monthly mean equal to the one-process run, to the last bit."""
    for k in E.MonthlyOutput.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(sims[1].output, k), getattr(sims[2].output, k),
                                      err_msg=f"2001-2023 {k}")
    assert list(sims[1].truth) == list(sims[2].truth)
    for s in sims[1].truth:
        for k in E.MonthlyOutput.__dataclass_fields__:
            a, b = getattr(sims[1].truth[s][1], k), getattr(sims[2].truth[s][1], k)
            assert a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b, err_msg=f"{s} {k}")


def test_truth_files_written_by_forked_children_equal_the_serial_ones(sims, tmp_path):
    sim = sims[2]
    B._write_truth(sim, tmp_path / "serial", "test", True)
    writers = B._start_truth_writers(sim, tmp_path / "forked", "test", True, 2)
    assert writers is not None and len(writers.children) == 2
    writers.join()
    for s in sim.truth:
        with xr.open_dataset(tmp_path / "serial" / B.truth_file(s)) as a, \
                xr.open_dataset(tmp_path / "forked" / B.truth_file(s)) as b:
            assert set(a.variables) == set(b.variables)
            for v in a.data_vars:
                np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=f"{s} {v}")
                assert a[v].encoding["zlib"] == b[v].encoding["zlib"]
    assert B._start_truth_writers(sim, tmp_path / "one", "test", True, 1) is None


def test_truth_fields_continue_the_observed_derivation(sims):
    """The truth files' 2001-2023 part is derived once (it is the reanalysis file's) and the
    truth run's part continues its soil-water bucket: the same numbers, keys and dtypes as
    deriving 2001-2100 at once."""
    from permaplug.demo import derive
    from permaplug.demo.forcing import CellForcing

    sim = sims[2]
    for s in list(sim.truth)[:2]:
        forcing, output = sim.truth[s]
        def both(a, b, k):
            return np.concatenate([getattr(a, k), getattr(b, k)])

        whole_forcing = CellForcing(sim.forcing.time.append(forcing.time),
                                    *(both(sim.forcing, forcing, k) for k in ("t2m", "d2m", "tp")))
        whole_output = E.MonthlyOutput(*(both(sim.output, output, k)
                                         for k in E.MonthlyOutput.__dataclass_fields__))
        at_once = derive.era5land_fields(sim.grid.cell_lat, whole_forcing, whole_output, sim.soil)
        fields = B.truth_fields(sim, s, True)
        assert list(fields) == [k for k in at_once if not k.startswith("_")]
        for k, v in fields.items():
            expected = np.asarray(at_once[k])
            assert v.dtype == expected.dtype, k
            np.testing.assert_array_equal(v, expected, err_msg=f"{s} {k}")
        assert fields["swvl1"].shape[0] == len(whole_forcing.time)


@pytest.mark.parametrize("step", [12, 204, 1200])
def test_truth_rows_a_stretch_at_a_time_equal_the_truth_fields(sims, step):
    """The truth writers derive the truth run's fields a chunk of months at a time, each stretch
    continuing the soil-water bucket (chunks of a year, of 17 years straddling 2023/2024, all at
    once): the numbers of :func:`truth_fields` to the last bit; asking out of order is refused."""
    sim = sims[2]
    s = list(sim.truth)[-1]
    expected = B.truth_fields(sim, s, True)
    rows = B.TruthRows(sim, s, B.observed_fields(sim))
    fields = rows.fields()
    assert list(fields) == list(expected)
    nt = len(expected["t2m"])
    for t0 in range(0, nt, step):
        t1 = min(t0 + step, nt)
        for k, f in fields.items():
            got = f(t0, t1)
            assert got.dtype == expected[k].dtype, k
            np.testing.assert_array_equal(got, expected[k][t0:t1], err_msg=f"{k} {t0}")
    if step == 12:
        with pytest.raises(ValueError, match="asked out of time order"):
            fields["t2m"](600, 612)
