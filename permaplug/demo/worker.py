"""Run a batch of emulator columns in another process: ``python -m permaplug.demo.worker IN OUT``.

``IN`` is an ``.npz`` (no pickle) holding the state (``T H swe``), the column properties
(``c_solid theta k_thawed k_frozen width f_res faces``), the surface (``density n_thaw
snow_k_factor ddf``), the forcing (``t2m sf days steps``) and the ``engine`` name; ``OUT``
receives the monthly output arrays. Used by
:func:`permaplug.demo.simulate.simulate` to run the scenario truth runs on two cores without
relying on ``multiprocessing`` (which needs a guarded ``__main__`` in the caller's script).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from permaplug.demo import emulator as E
from permaplug.demo import heat

COLUMN_KEYS = ("c_solid", "theta", "k_thawed", "k_frozen", "width", "f_res")


def save_job(path: Path, state: E.State, col: heat.Column, surface: E.Surface, t2m: np.ndarray,
             sf: np.ndarray, days: np.ndarray, steps: int, engine: str = "compiled") -> None:
    """Write a job file for :func:`run_job`."""
    np.savez(path, T=state.T, H=state.H, swe=state.swe, faces=col.faces,
             **{k: getattr(col, k) for k in COLUMN_KEYS}, density=surface.density,
             n_thaw=surface.n_thaw, snow_k_factor=surface.per_cell("snow_k_factor"),
             ddf=surface.per_cell("ddf"), t2m=t2m, sf=sf, days=days, steps=np.array(steps),
             engine=np.array(engine))


def run_job(job: Path, out: Path) -> None:
    """Run the job in ``job`` and write the monthly output to ``out`` (.npz)."""
    with np.load(job, allow_pickle=False) as z:
        col = heat.Column(*(z[k] for k in COLUMN_KEYS), faces=z["faces"])
        state = E.State(z["T"], z["H"], z["swe"])
        surface = E.Surface(*(z[k] for k in E.Surface.__dataclass_fields__))
        _, res = E.run(state, col, surface, z["t2m"], z["sf"], z["days"],
                       steps_per_month=int(z["steps"]), record=True,
                       engine=str(z["engine"]) if "engine" in z else "compiled")
    np.savez(out, **{k: getattr(res, k) for k in E.MonthlyOutput.__dataclass_fields__})


def load_output(path: Path) -> E.MonthlyOutput:
    """Read a worker's output file."""
    with np.load(path, allow_pickle=False) as z:
        return E.MonthlyOutput(*(z[k] for k in E.MonthlyOutput.__dataclass_fields__))


if __name__ == "__main__":  # pragma: no cover - exercised through simulate()
    run_job(Path(sys.argv[1]), Path(sys.argv[2]))
