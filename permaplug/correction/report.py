"""The correction report: tables (CSV, Markdown) and the Figure-11-like PNG, naming the data."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import schema
from permaplug.core.atomic import write_text_atomic
from permaplug.correction.evaluate import DEFAULT_PERIODS, bias_table, spread_table, summary
from permaplug.correction.figure import figure_title, plot_correction
from permaplug.correction.pipeline import Correction, calibration_slice

FIGURE_NAME = "figure11_correction.png"


@dataclass
class CorrectionReport:
    """Bias/KS per variable and unit, the scenario spread (``high - low`` of the scenario
    pair, :mod:`permaplug.core.scenarios`), a summary, and metadata."""

    bias: pd.DataFrame
    spread: pd.DataFrame
    summary: pd.DataFrame
    meta: dict[str, str] = field(default_factory=dict)

    def to_markdown(self) -> str:
        m = self.meta
        lines = [
            f"# Bias correction report: {m['corrector']}",
            "",
            f"data: {m['data']}",
            f"reference: {m['reference']}",
            f"calibration: {m['calibration']} (historical run continued by {m['continuation']})",
            f"correctors compared: {m['labels']}",
            "",
            ("Bias = mean(model - reference) and KS = Kolmogorov-Smirnov distance over the "
             f"calibration months; spread = {m['spread']} over each period."),
            "",
            "## Summary (mean over units)",
            "",
            markdown_table(self.summary),
            "",
            "## Bias and KS distance per variable and unit",
            "",
            markdown_table(self.bias),
            "",
            f"## Spread {m['spread']} per variable and unit",
            "",
            markdown_table(self.spread),
            "",
        ]
        if m.get("figure"):
            lines += [f"![reanalysis, raw and corrected scenarios]({m['figure']})", ""]
        return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "n/a"
        return f"{v:.4g}" if abs(v) >= 1e4 or (abs(v) < 1e-3 and v != 0) else f"{v:.3f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers to 4 significant digits)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def build_report(result: Correction, compare: Mapping[str, Correction] | None = None,
                 periods: tuple[tuple[int, int], ...] = DEFAULT_PERIODS) -> CorrectionReport:
    """Compute the tables for ``result`` (and further corrections ``compare``, side by side)."""
    name = result.corrector.name
    runs = {name: result, **{k: v for k, v in (compare or {}).items() if k != name}}
    sl = calibration_slice(result.calibration)

    def cal(ds: xr.Dataset) -> xr.Dataset:
        return ds.sel(scenario=result.continuation, time=sl).drop_vars("scenario")

    model = {"raw": cal(result.raw), **{k: cal(r.corrected) for k, r in runs.items()}}
    obs = result.obs.sel(time=sl)
    bias = bias_table(obs, model, result.variables)
    scen = {"raw": result.raw, **{k: r.corrected for k, r in runs.items()}}
    spread = spread_table(scen, result.variables, periods, result.pair)
    meta = {
        "spread": (f"mean({result.pair[1]}) - mean({result.pair[0]})" if result.pair
                   else "none (a single scenario)"),
        "corrector": name, "data": schema.data_label(result.raw),
        "reference": schema.data_label(result.obs),
        "calibration": f"{result.calibration[0]}-{result.calibration[1]}",
        "continuation": result.continuation, "labels": ", ".join(["raw", *runs]),
    }
    return CorrectionReport(bias, spread, summary(bias, spread), meta)


def write_report(report: CorrectionReport, result: Correction, out_dir: Path,
                 compare: Mapping[str, Correction] | None = None) -> list[Path]:
    """Write ``bias.csv``, ``spread.csv``, ``summary.csv``, the figure and ``report.md``.

    Every file names the data (a ``# data: ...`` first line in the CSVs, the figure title).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    header = f"# data: {report.meta['data']}; reference: {report.meta['reference']}\n"
    for stem, df in (("bias", report.bias), ("spread", report.spread),
                     ("summary", report.summary)):
        written.append(write_text_atomic(out_dir / f"{stem}.csv",
                                         header + df.to_csv(index=False)))
    extra = {k: r.corrected for k, r in (compare or {}).items()
             if k != result.corrector.name}
    fig = plot_correction(result.obs, result.raw, result.corrected, result.variables,
                          out_dir / FIGURE_NAME,
                          figure_title(result.corrector.name, result.obs, result.raw), extra,
                          start_year=result.calibration[0] - 20)
    written.append(fig)
    report.meta["figure"] = fig.name
    written.append(write_text_atomic(out_dir / "report.md", report.to_markdown()))
    return written
