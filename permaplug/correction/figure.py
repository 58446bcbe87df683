"""A figure like the paper's Figure 11: reanalysis history, raw and corrected scenarios.

One panel per variable: annual means averaged over the spatial units; the reanalysis in black,
each scenario raw (thin dashed) and corrected (solid), in the scenario's colour.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from permaplug.core import scenarios as scenario_roles
from permaplug.core import schema
from permaplug.core.atomic import atomic_path

PALETTE = ("#2166ac", "#67a9cf", "#ef8a62", "#b2182b", "#1b7837", "#762a83")
"""Scenario colours, given in forcing order (:func:`permaplug.core.scenarios.colours`)."""


def annual_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean over every dim but ``time`` (and ``scenario``), then per calendar year."""
    space = [d for d in da.dims if d not in ("time", "scenario")]
    return da.mean(space).groupby("time.year").mean()


def plot_correction(obs: xr.Dataset, raw: xr.Dataset, corrected: xr.Dataset,
                    variables: Sequence[str], path: Path, title: str,
                    extra: Mapping[str, xr.Dataset] | None = None,
                    start_year: int | None = None) -> Path:
    """Write the Figure-11-like PNG to ``path`` (atomically) and return it.

    Colour = scenario; line style = raw (dashed), corrected (solid), ``extra`` corrections
    (dotted, e.g. QDM next to QM); black = reanalysis. Years before ``start_year`` are not shown.
    """
    n = len(variables)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    # matplotlib's object API: no pyplot state, no backend switch (renders with Agg)
    fig = Figure(figsize=(5.2 * ncol, 2.6 * nrow + 1.0), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False, sharex=True)
    styles = [("raw", raw, {"ls": "--", "lw": 0.7, "alpha": 0.6}),
              (corrected.attrs.get("bias_correction", "corrected"), corrected, {"lw": 1.2})]
    for (lab, ds), ls in zip((extra or {}).items(), [":", "-.", (0, (1, 3)), (0, (5, 1))]):
        styles.append((lab, ds, {"ls": ls, "lw": 1.1}))
    scenarios = [str(s) for s in raw.scenario.values]
    colours = scenario_roles.colours(scenarios, PALETTE)
    for ax, var in zip(axes.ravel(), variables):
        for _, ds, style in styles:
            a = annual_mean(ds[var])
            if start_year is not None:
                a = a.sel(year=a.year >= start_year)
            for s in scenarios:
                ax.plot(a.year, a.sel(scenario=s), color=colours[s], **style)
        o = annual_mean(obs[var])
        if start_year is not None:
            o = o.sel(year=o.year >= start_year)
        ax.plot(o.year, o, color="black", lw=1.6)
        units = obs[var].attrs.get("units", "")
        ax.set_title(f"{var} ({units})" if units else var, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colours[s], lw=2, label=s) for s in scenarios]
    handles += [Line2D([], [], color="dimgrey", label=lab, **style) for lab, _, style in styles]
    handles.append(Line2D([], [], color="black", lw=1.6, label="reanalysis"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 10),
               fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return Path(path)


def figure_title(corrector: str, obs: xr.Dataset, raw: xr.Dataset) -> str:
    """The figure's title, naming the data."""
    return (f"Bias correction ({corrector}): annual means over units\n"
            f"data: {schema.data_label(raw)}; reference: {schema.data_label(obs)}")
