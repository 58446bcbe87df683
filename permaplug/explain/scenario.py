"""Scenario windows to explain: the highest scenario's last projected decade.

A projection folder (``RUN/projections/<corrector>-<end>/``) holds ``scenario_inputs.nc``, the
model inputs of every projected window per scenario (:mod:`permaplug.training.model_inputs`).
The explained scenario is the high end of the projection's scenario pair (``summary.json``
``scenario_pair``; else the highest forcing label, :mod:`permaplug.core.scenarios`), the windows
those predicting a month of the last ten projected years (``end - 9 .. end``, after the
historical end). No scenario name is written here: they all come from the data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from permaplug.core import scenarios as scenario_roles
from permaplug.core.errors import ConfigError
from permaplug.training.model_inputs import FILE, load_model_inputs
from permaplug.training.windows import SeriesArrays, window_index

DECADE = 10


@dataclass
class ScenarioWindows:
    """The scenario windows of one projection: arrays, window index ``[N, 2]`` and labels."""

    arrays: SeriesArrays
    index: np.ndarray
    scenario: str
    years: tuple[int, int]
    projection: str
    data_label: str


def projection_dirs(run_dir: Path) -> list[Path]:
    """Projection folders of a run that hold stored scenario inputs, latest ``end`` last."""
    dirs = [p.parent for p in (Path(run_dir) / "projections").glob(f"*/{FILE}")]

    def end(d: Path) -> tuple[int, str]:
        try:
            return int(json.loads((d / "summary.json").read_text(encoding="utf-8"))["end"]), d.name
        except (OSError, ValueError, KeyError, TypeError):
            return int(d.name.rsplit("-", 1)[-1]) if d.name[-4:].isdigit() else 0, d.name

    return sorted(dirs, key=end)


def find_projection(run_dir: Path, name: str | None = None) -> Path | None:
    """The projection folder ``name`` (ConfigError when it has no stored inputs), else the one
    projected furthest (None when the run has none)."""
    dirs = projection_dirs(run_dir)
    if name is not None:
        chosen = [d for d in dirs if d.name == name]
        if not chosen:
            raise ConfigError(f"--projection {name}: no projection with stored scenario inputs "
                              f"in {Path(run_dir) / 'projections'} (have: "
                              f"{', '.join(d.name for d in dirs) or 'none'})")
        return chosen[0]
    return dirs[-1] if dirs else None


def highest_scenario(names: list[str], proj_dir: Path,
                     pair: tuple[str, str] | None = None) -> str:
    """The high end of the projection's scenario pair (``pair``, else its ``summary.json``'s),
    else the highest forcing label."""
    if pair is None:
        try:
            pair = json.loads((proj_dir / "summary.json").read_text(encoding="utf-8")).get(
                "scenario_pair")
        except (OSError, ValueError):
            pair = None
    if pair and len(pair) == 2 and str(pair[1]) in names:
        return str(pair[1])
    return scenario_roles.ordered(names)[-1]


def scenario_windows(proj_dir: Path, window: int,
                     pair: tuple[str, str] | None = None) -> ScenarioWindows:
    """Windows of the highest scenario whose target month lies in the last projected decade
    (``pair``: the projection's scenario pair when its ``summary.json`` is not written yet)."""
    per, attrs = load_model_inputs(proj_dir / FILE)
    scen = highest_scenario(list(per), proj_dir, pair)
    arrays = per[scen]
    end = int(attrs.get("end", pd.DatetimeIndex(arrays.time)[-1].year))
    hist_end = np.datetime64(pd.Timestamp(str(attrs.get("historical_end", "1000-01"))), "ns")
    first_year = int(pd.Timestamp(hist_end).year) + (1 if pd.Timestamp(hist_end).month == 12
                                                     else 0)
    years = (max(end - DECADE + 1, first_year), end)
    index = window_index(arrays, years, window, need_target=False)
    index = index[arrays.time[index[:, 1] + 1] > hist_end]
    return ScenarioWindows(arrays, index, scen, years, proj_dir.name, arrays.data_label)
