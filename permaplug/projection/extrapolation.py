"""Extrapolation guard: how far a projection's inputs lie outside what the networks were
trained on.

For each scenario and each model input (dynamic and static, physical units), over the inputs
the networks see for the projected months -- every month after the historical end that enters
a projection window (the historical months in the first windows were seen in training or
testing already) -- two numbers:

* ``share_outside``: the share of those values outside the training range (min..max over the
  training years of the run's stored table, the months the normaliser's statistics come from;
  static features: over the units);
* ``max_sd``: the largest distance from the training mean in training standard deviations (the
  normaliser's statistics stored with the run).

A feature is flagged when it passes :data:`GUARD_SD` standard deviations *and* lies outside the
training range (a wide but in-range feature is not extrapolation). Written to
``extrapolation.csv`` next to ``projections.nc``; :func:`warning_line` gives the one line the
CLI prints. The training range is computed from the table stored with the run, so run folders
written before this guard existed are checked too.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core.atomic import write_text_atomic
from permaplug.training.windows import SeriesArrays

GUARD_SD = 3.0
"""A feature further than this many training standard deviations (and outside the training
range) is reported as extrapolated."""
FILE = "extrapolation.csv"
COLUMNS = ("scenario", "feature", "kind", "units", "share_outside", "max_sd", "train_min",
           "train_max", "projected_min", "projected_max", "train_mean", "train_sd")


def training_ranges(run, table: xr.Dataset) -> dict[str, np.ndarray]:
    """Min and max of every input over the training years of ``table`` (the run's own).

    Returns ``dynamic_min``/``dynamic_max`` ``[F]`` and ``static_min``/``static_max`` ``[S]``
    in physical units, features in the normaliser's order.
    """
    arrays = run.arrays(table)
    y0, y1 = run.normaliser.train_years
    sel = (arrays.years >= y0) & (arrays.years <= y1)
    dyn = arrays.dynamic[:, sel].reshape(-1, arrays.dynamic.shape[-1])
    stat = arrays.static
    return {"dynamic_min": np.nanmin(dyn, axis=0), "dynamic_max": np.nanmax(dyn, axis=0),
            "static_min": np.nanmin(stat, axis=0) if stat.shape[1] else np.zeros(0),
            "static_max": np.nanmax(stat, axis=0) if stat.shape[1] else np.zeros(0)}


def _row(scenario: str, feature: str, kind: str, units: str, values: np.ndarray, lo: float,
         hi: float, mean: float, sd: float) -> dict:
    v = values[np.isfinite(values)]
    outside = (v < lo) | (v > hi)
    return {"scenario": scenario, "feature": feature, "kind": kind, "units": units,
            "share_outside": float(outside.mean()) if v.size else float("nan"),
            "max_sd": float(np.max(np.abs(v - mean)) / sd) if v.size else float("nan"),
            "train_min": float(lo), "train_max": float(hi),
            "projected_min": float(v.min()) if v.size else float("nan"),
            "projected_max": float(v.max()) if v.size else float("nan"),
            "train_mean": float(mean), "train_sd": float(sd)}


def _units(table: xr.Dataset, name: str) -> str:
    if name in table.variables:
        return str(table[name].attrs.get("units", ""))
    from permaplug.data.features import feature_classes

    cls = feature_classes().get(name)
    return str(getattr(cls, "units", "") or "") if cls is not None else ""


def extrapolation_frame(run, table: xr.Dataset, per_scenario: dict[str, SeriesArrays]
                        ) -> pd.DataFrame:
    """One row per scenario and input feature (:data:`COLUMNS`), over the months after the
    historical end of ``table`` that are inputs of a projected window (all but the last month
    of ``per_scenario``'s arrays: :func:`.scenario_inputs.scenario_arrays`)."""
    norm = run.normaliser
    ranges = training_ranges(run, table)
    hist_end = np.datetime64(pd.DatetimeIndex(table["time"].values)[-1], "ns")
    rows = []
    for scen, arrays in per_scenario.items():
        sel = (arrays.time > hist_end) & (arrays.time < arrays.time[-1])
        for f, name in enumerate(norm.dynamic_names):
            rows.append(_row(scen, name, "dynamic", _units(table, name),
                             arrays.dynamic[:, sel, f].ravel(), ranges["dynamic_min"][f],
                             ranges["dynamic_max"][f], norm.dynamic_mean[f], norm.dynamic_std[f]))
        for s, name in enumerate(norm.static_names):
            rows.append(_row(scen, name, "static", _units(table, name), arrays.static[:, s],
                             ranges["static_min"][s], ranges["static_max"][s],
                             norm.static_mean[s], norm.static_std[s]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def flagged(frame: pd.DataFrame, limit: float = GUARD_SD) -> pd.DataFrame:
    """Per feature, its worst scenario among the rows beyond ``limit`` SD and outside the
    training range; sorted by ``max_sd`` (largest first). Empty when nothing is flagged."""
    bad = frame[(frame["max_sd"] > limit) & (frame["share_outside"] > 0)]
    if bad.empty:
        return bad
    worst = bad.sort_values("max_sd", ascending=False).drop_duplicates("feature")
    return worst.reset_index(drop=True)


def summary(frame: pd.DataFrame, limit: float = GUARD_SD) -> dict:
    """For ``summary.json``: the limit and the flagged features with their worst scenario."""
    worst = flagged(frame, limit)
    return {"limit_sd": limit, "file": FILE,
            "flagged": [{"feature": r.feature, "scenario": r.scenario,
                         "max_sd": round(float(r.max_sd), 3),
                         "share_outside": round(float(r.share_outside), 4)}
                        for r in worst.itertuples()]}


def _percent(share: float) -> str:
    """``0.37`` -> ``'37 %'``; a share above 0 but below 0.5 % -> ``'<1 %'``."""
    return "<1 %" if 0 < share < 0.005 else f"{100 * share:.0f} %"


def warning_text(frame: pd.DataFrame, limit: float = GUARD_SD, shown: int = 4) -> str | None:
    """One line naming the worst flagged features, or None when no feature is flagged."""
    worst = flagged(frame, limit)
    if worst.empty:
        return None
    parts = [f"{r.feature} {r.max_sd:.1f} SD ({r.scenario}, {_percent(r.share_outside)} "
             "outside)" for r in worst.head(shown).itertuples()]
    more = f" and {len(worst) - shown} more" if len(worst) > shown else ""
    return (f"projection inputs beyond {limit:g} training SD and outside the training range: "
            f"{', '.join(parts)}{more}; the networks extrapolate there")


def write_table(frame: pd.DataFrame, out_dir: Path, data_label: str) -> Path:
    """``out_dir/extrapolation.csv`` with the ``# data:`` line and a ``data`` column."""
    buf = io.StringIO()
    buf.write(f"# data: {data_label}\n")
    buf.write(f"# share_outside: share of the projected months' inputs outside the training "
              f"min..max; max_sd: largest |value - training mean| / training SD; flagged when "
              f"max_sd > {GUARD_SD:g} and share_outside > 0\n")
    frame.assign(data=data_label).to_csv(buf, index=False, float_format="%.6g")
    return write_text_atomic(Path(out_dir) / FILE, buf.getvalue())


def read_table(proj_dir: Path) -> pd.DataFrame | None:
    """The ``extrapolation.csv`` of a projection folder, or None when it has none."""
    path = Path(proj_dir) / FILE
    return pd.read_csv(path, comment="#") if path.exists() else None


def warning_line(proj_dir: Path) -> str | None:
    """The CLI's one-line warning for a projection folder (None: nothing flagged or no table)."""
    frame = read_table(proj_dir)
    if frame is None:
        return None
    text = warning_text(frame)
    return f"warning: {text} (see {Path(proj_dir) / FILE})" if text else None


def guard(run, table: xr.Dataset, per_scenario: dict[str, SeriesArrays], out_dir: Path,
          data_label: str) -> dict:
    """Compute, write ``extrapolation.csv`` and return the :func:`summary`."""
    frame = extrapolation_frame(run, table, per_scenario)
    write_table(frame, out_dir, data_label)
    return summary(frame)
