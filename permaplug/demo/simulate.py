"""Run the emulator on the real forcing: spin-up, 2001-2023, and the four scenario truth runs."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from permaplug.core import progress as bars
from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.demo import emulator as E
from permaplug.demo import forked, worker
from permaplug.demo import surface as S
from permaplug.demo.cache import DEMO_VERSION
from permaplug.demo.forcing import (
    CellForcing,
    Gradients,
    ipsl_box_series,
    reanalysis_forcing,
    scenario_forcing,
)
from permaplug.demo.grid import DemoGrid
from permaplug.demo.params import EmulatorParams, params_for
from permaplug.demo.soil import Soil, StaticFields, soil_from_statics, static_fields

SPINUP_STEPS_PER_MONTH = 2  # spin-up 1940-1990: 15-day steps (deep equilibrium, not output)
TRUTH_YEARS = (2024, 2100)


@dataclass
class Simulation:
    """Everything the writers need: land-cell forcing and output for 2001-2023 (``obs``), the
    truth runs (scenario -> (forcing, output) for 2024-2100), soil, statics, gradients."""

    grid: DemoGrid
    statics: StaticFields
    soil: Soil
    forcing: CellForcing
    output: E.MonthlyOutput
    truth: dict[str, tuple[CellForcing, E.MonthlyOutput]]
    gradients: Gradients
    box: dict[str, pd.DataFrame]
    forcing_all: CellForcing


def snow_density(lat: np.ndarray, params: EmulatorParams | None = None) -> np.ndarray:
    """Snow density (kg m-3) at ``lat`` for ``params`` (default: the current demo version's;
    version 1: 300 in the taiga, rising to 380 on the wind-packed tundra north of 70 N)."""
    return (params or params_for(DEMO_VERSION)).snow_density(lat)


def surface_for(lat: np.ndarray, soil: Soil, params: EmulatorParams) -> E.Surface:
    """The emulator's surface parameters at ``lat`` (n,) for ``soil`` and ``params``."""
    return E.Surface(density=snow_density(lat, params), n_thaw=soil.n_thaw,
                     snow_k_factor=params.snow_k_factor, ddf=params.ddf)


def snowfall(f: CellForcing) -> np.ndarray:
    """Snowfall (nt, ncell) mm per month: ``tp`` times the snow share at ``t2m``."""
    return f.tp * S.snowfall_share(f.t2m)


def month_days(f: CellForcing) -> np.ndarray:
    """Days in each month of ``f`` (nt,)."""
    return f.time.days_in_month.to_numpy(float)


def _truth_worker(state: E.State, col, surface: E.Surface, t2m: np.ndarray, sf: np.ndarray,
                  days: np.ndarray, steps: int, engine: str = "compiled",
                  out: E.MonthlyOutput | None = None) -> E.MonthlyOutput:
    """Run stacked scenario columns (module-level so a worker process can import it); ``out``:
    see :func:`permaplug.demo.emulator.run`."""
    _, out = E.run(state, col, surface, t2m, sf, days, steps_per_month=steps, record=True,
                   engine=engine, out=out)
    return out


def _run_jobs(jobs: list[tuple]) -> list[E.MonthlyOutput]:
    """Run each job in its own ``python -m permaplug.demo.worker`` process (npz in and out)."""
    with tempfile.TemporaryDirectory(prefix="permaplug-demo-") as tmp:
        procs = []
        for i, job in enumerate(jobs):
            job_file, out_file = Path(tmp) / f"job{i}.npz", Path(tmp) / f"out{i}.npz"
            worker.save_job(job_file, *job)
            procs.append((subprocess.Popen(
                [sys.executable, "-m", "permaplug.demo.worker", str(job_file), str(out_file)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out_file))
        results = []
        for proc, out_file in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
                raise DataError(f"demo emulator worker failed: {tail[0]}")
            results.append(worker.load_output(out_file))
    return results


def _run_forked(jobs: list[Callable[[], tuple]], shapes: list[tuple[int, int]]
                ) -> list[E.MonthlyOutput]:
    """Run each job (a function returning :func:`_truth_worker`'s arguments, called in the
    child, so both children stack their inputs at once) in its own forked child
    (:mod:`permaplug.demo.forked`) whose monthly means, ``shapes`` (nt, ncell), go into shared
    memory (the emulator records straight into it); the children see the parent's arrays
    without copying."""
    outs = []
    for nt, ncell in shapes:
        outs.append(E.MonthlyOutput(
            *(forked.shared_zeros((nt, schema.N_LAYERS, ncell), np.float32) for _ in range(2)),
            *(forked.shared_zeros((nt, ncell), np.float32) for _ in range(4))))

    def task(job: Callable[[], tuple], out: E.MonthlyOutput) -> Callable[[], None]:
        def run() -> None:
            _truth_worker(*job(), out=out)
        return run

    forked.run_forked([task(job, out) for job, out in zip(jobs, outs)],
                      "demo emulator truth run")
    return outs


def _split(out: E.MonthlyOutput, n: int) -> list[E.MonthlyOutput]:
    parts = [np.split(getattr(out, k), n, axis=-1) for k in E.MonthlyOutput.__dataclass_fields__]
    return [E.MonthlyOutput(*(p[i] for p in parts)) for i in range(n)]


def default_workers(ncell: int) -> int:
    """Processes the demo build uses on a grid of ``ncell`` land cells: up to 2 CPUs on real
    grids (200 cells or more: below that, starting processes costs more than it saves)."""
    return min(2, os.cpu_count() or 1) if ncell >= 200 else 1


@dataclass
class Setup:
    """The emulator's inputs on a grid's land cells: statics, soil column, surface parameters,
    the 1940-2023 reanalysis forcing and its gradients (what :func:`simulate` and the
    sensitivity rerun, :mod:`permaplug.demo.sensitivity`, start from)."""

    grid: DemoGrid
    statics: StaticFields
    soil: Soil
    surface: E.Surface
    forcing: CellForcing
    gradients: Gradients


def setup(grid: DemoGrid, seed: int = 0, params: EmulatorParams | None = None) -> Setup:
    """Statics, soil, surface and forcing of ``grid``'s land cells for ``seed`` and ``params``
    (default: the current demo version's)."""
    lat, lon = grid.cell_lat, grid.cell_lon
    statics = static_fields(lat, lon, seed)
    params = params or params_for(DEMO_VERSION)
    soil = soil_from_statics(statics, params)
    forcing, grad = reanalysis_forcing(lat, lon, seed)
    return Setup(grid, statics, soil, surface_for(lat, soil, params), forcing, grad)


def spin_up(s: Setup, steps_per_month: int = E.STEPS_PER_MONTH, progress: bool = True,
            engine: str = "compiled") -> E.State:
    """The state at the end of 2000: 1940-1959 cycled once, then 1940-2000 (15-day steps
    through 1990, ``steps_per_month`` after), from a conductive steady state."""
    return _spin_up(s.soil.column, s.surface, s.forcing, steps_per_month, progress, engine)


def _spin_up(col, surface: E.Surface, forcing: CellForcing, steps_per_month: int,
             progress: bool, engine: str) -> E.State:
    """:func:`spin_up` of the cells of ``col``, ``surface`` and ``forcing`` (1940-2023)."""
    state = E.initial_state(col, forcing.sel("1940-01", "1969-12").t2m.mean(axis=0))
    spin = min(SPINUP_STEPS_PER_MONTH, steps_per_month)
    stages = [("1940-01", "1959-12", spin, "spin-up (cycle)"),
              ("1940-01", "1990-12", spin, "spin-up 1940-1990"),
              ("1991-01", "2000-12", steps_per_month, "spin-up 1991-2000")]
    for start, end, steps, desc in stages:
        f = forcing.sel(start, end)
        state, _ = E.run(state, col, surface, f.t2m, snowfall(f), month_days(f), steps,
                         record=False, progress=progress, desc=desc, engine=engine)
    return state


def _history(col, surface: E.Surface, forcing: CellForcing, steps_per_month: int,
             progress: bool, engine: str) -> tuple[E.State, E.MonthlyOutput]:
    """Spin-up, then the recorded 2001-2023 run: the end-2023 state and the monthly means."""
    state = _spin_up(col, surface, forcing, steps_per_month, progress, engine)
    obs = forcing.sel("2001-01", "2023-12")
    return E.run(state, col, surface, obs.t2m, snowfall(obs), month_days(obs), steps_per_month,
                 progress=progress, desc="2001-2023", engine=engine)


def _load_kernel(s: Setup, steps_per_month: int) -> None:
    """Load (or, on a fresh installation, compile) the compiled heat kernel in this process by
    running one cell for one month, so forked children inherit it instead of each loading it."""
    one = slice(0, 1)
    col = s.soil.column.cells(one)
    f = s.forcing.sel("2001-01", "2001-01").cells(one)
    E.run(E.initial_state(col, f.t2m[0]), col, s.surface.cells(one), f.t2m, snowfall(f),
          month_days(f), steps_per_month)


def _start_history(s: Setup, steps_per_month: int, progress: bool, engine: str,
                   parts: int) -> tuple[forked.Forked, E.State, E.MonthlyOutput]:
    """Start :func:`_history` of ``parts`` contiguous groups of cells, each in a forked child
    writing its end state and monthly means into shared memory; returns the children (to
    :meth:`~permaplug.demo.forked.Forked.join`) and the arrays they fill. Each cell's result
    does not depend on the others (its Newton iterations stop at its own convergence), so this
    equals one run of all cells to the last bit; only the first child shows progress bars."""
    col, ncell = s.soil.column, s.grid.ncell
    nz = col.dz.size
    nt = len(s.forcing.sel("2001-01", "2023-12").time)
    T, H = forked.shared_zeros((nz, ncell), float), forked.shared_zeros((nz, ncell), float)
    swe = forked.shared_zeros((ncell,), float)
    out = E.MonthlyOutput(
        *(forked.shared_zeros((nt, schema.N_LAYERS, ncell), np.float32) for _ in range(2)),
        *(forked.shared_zeros((nt, ncell), np.float32) for _ in range(4)))
    edges = np.linspace(0, ncell, parts + 1).round().astype(int)

    def task(i: int) -> Callable[[], None]:
        part = slice(edges[i], edges[i + 1])

        def run() -> None:
            state, res = _history(col.cells(part), s.surface.cells(part), s.forcing.cells(part),
                                  steps_per_month, progress and i == 0, engine)
            T[:, part], H[:, part], swe[part] = state.T, state.H, state.swe
            for k in E.MonthlyOutput.__dataclass_fields__:
                getattr(out, k)[..., part] = getattr(res, k)
        return run

    children = forked.Forked([task(i) for i in range(parts)],
                             "demo emulator spin-up and 2001-2023")
    return children, E.State(T, H, swe), out


def simulate(grid: DemoGrid, seed: int = 0, progress: bool = True,
             steps_per_month: int = E.STEPS_PER_MONTH, workers: int | None = None,
             params: EmulatorParams | None = None, engine: str = "compiled") -> Simulation:
    """Spin up (1940-1959 cycled once, then 1940-2000), run 2001-2023, then each RCP to 2100.

    With ``workers`` > 1 (and ``fork``), spin-up and 2001-2023 run on that many groups of cells
    in forked children. The four truth runs start from the end-2023 state; they run as two
    stacked batches in two forked child processes (:mod:`permaplug.demo.forked`;
    ``python -m permaplug.demo.worker`` processes where the platform cannot fork) when
    ``workers`` (default: up to 2 CPUs) allows, else as one batch in this process. Cells are
    independent, so the numbers do not depend on ``workers``. ``params``: the emulator's uncertain
    parameters (default: the current demo version's, :mod:`permaplug.demo.params`). ``engine``:
    see :data:`permaplug.demo.emulator.ENGINES` (both give the same data within rounding).
    """
    inputs = setup(grid, seed, params)
    statics, soil, surface = inputs.statics, inputs.soil, inputs.surface
    forcing, grad = inputs.forcing, inputs.gradients
    col = soil.column
    if workers is None:
        workers = default_workers(grid.ncell)
    children = None
    if workers > 1 and forked.can_fork() and grid.ncell >= workers:
        if engine == "compiled":
            _load_kernel(inputs, steps_per_month)
        children, state, output = _start_history(inputs, steps_per_month, progress, engine,
                                                 workers)
    else:
        state, output = _history(col, surface, forcing, steps_per_month, progress, engine)
    obs = forcing.sel("2001-01", "2023-12")

    box = ipsl_box_series()  # the scenarios' forcing, while the children run
    names = [s for s in box if s != "historical"]
    scen_forcing = {s: scenario_forcing(forcing, box, s, *TRUTH_YEARS) for s in names}
    if children is not None:
        children.join()
    half = (len(names) + 1) // 2
    batches = [names[:half], names[half:]] if workers > 1 and len(names) > 1 else [names]
    def job(batch: list[str]) -> Callable[[], tuple]:
        """The stacked inputs of ``batch``'s truth runs, built when called."""
        def make() -> tuple:
            fs = [scen_forcing[s] for s in batch]
            return (state.tile(len(batch)), col.tile(len(batch)), surface.tile(len(batch)),
                    np.concatenate([f.t2m for f in fs], axis=1),
                    np.concatenate([snowfall(f) for f in fs], axis=1), month_days(fs[0]),
                    steps_per_month, engine)
        return make

    jobs = [job(batch) for batch in batches]
    shapes = [(len(scen_forcing[batch[0]].time), grid.ncell * len(batch)) for batch in batches]
    truth_out: dict[str, E.MonthlyOutput] = {}
    bar = tqdm(total=len(names), desc="scenario truth runs", unit="run",
               disable=bars.disabled(progress), leave=False)
    if workers > 1:  # forked children where the platform forks, else python -m workers
        results = (_run_forked(jobs, shapes) if forked.can_fork()
                   else _run_jobs([make() for make in jobs]))
    else:
        results = [_truth_worker(*make()) for make in jobs]
    for batch, res in zip(batches, results):
        for s, part in zip(batch, _split(res, len(batch))):
            truth_out[s] = part
            bar.update()
    bar.close()
    truth = {s: (scen_forcing[s], truth_out[s]) for s in names}
    return Simulation(grid, statics, soil, obs, output, truth, grad, box, forcing)
