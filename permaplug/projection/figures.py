"""Figures of projections: bands x layers panels per model (paper Figures 5-9) and thaw depth
against year per scenario. Every title names the data (``data: <label>``)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from permaplug.core import scenarios
from permaplug.core.atomic import atomic_path
from permaplug.core.figure_layout import set_margins
from permaplug.projection.indicators import DEEPEST_MID_M, RESOLUTION_NOTE


def _colour(scenario: str, names: list[str]) -> str:
    """The scenario's colour among ``names`` (by forcing order, :mod:`permaplug.core.scenarios`)."""
    return scenarios.colours(names)[str(scenario)]


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as PNG at 110 dpi, as laid out (one render: no ``bbox_inches="tight"``,
    which draws the figure a second time; the layouts keep legend and notes inside)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _margins(fig: plt.Figure, bottom_in: float, top_in: float) -> tuple[float, float]:
    """Figure fractions leaving ``bottom_in`` / ``top_in`` inches for legend, notes and title."""
    height = fig.get_figheight()
    return bottom_in / height, 1.0 - top_in / height


def by_band(da: xr.DataArray) -> xr.DataArray:
    """Gridded arrays (a ``cell`` dim with a ``band`` coordinate) averaged per band; others
    returned unchanged."""
    if "cell" not in da.dims:
        return da
    return da.groupby("band").mean("cell")


def scenario_panels(proj: xr.DataArray, model: str, data_label: str, path: Path,
                    observed: xr.DataArray | None = None, context_years: int = 2) -> Path:
    """Bands x layers panels of one model's projection, one line per scenario.

    ``proj``: (time, unit, layer, scenario, model) degC. ``observed`` (time, unit, layer) adds
    the last ``context_years`` of the historical record in black. Horizons longer than 15
    years are drawn as 12-month running means (the whole observed record too). Gridded
    projections are averaged per band.
    """
    p = by_band(proj.sel(model=model))
    observed = by_band(observed) if observed is not None else None
    udim = next(d for d in p.dims if d not in ("time", "layer", "scenario"))
    units, layers = p[udim].values, p["layer"].values
    names = [str(s) for s in p["scenario"].values]
    years = pd.DatetimeIndex(p["time"].values).year
    smooth = years.max() - years.min() + 1 > 15
    if smooth:  # once for every panel (rolling along time only: the same values per panel)
        p = p.rolling(time=12, center=True, min_periods=12).mean()
    lines = p.transpose(udim, "layer", "scenario", "time").values
    ptime = p["time"].values
    if observed is not None:
        if smooth:  # the whole record, smoothed like the projection
            observed = observed.rolling(time=12, center=True, min_periods=12).mean()
        else:
            observed = observed.sel(time=observed["time"].dt.year
                                    > int(observed["time"].dt.year.max()) - context_years)
        observed = observed.sel({udim: units, "layer": layers}).transpose(udim, "layer", "time")
    fig, axes = plt.subplots(len(units), len(layers), figsize=(3.2 * len(layers),
                             1.9 * len(units) + 0.7), sharex=True, squeeze=False)
    colours = [_colour(n, names) for n in names]
    for i, u in enumerate(units):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            if observed is not None:
                ax.plot(observed["time"].values, observed.values[i, j], color="black", lw=0.9,
                        label="observed")
            for k, scen in enumerate(names):
                ax.plot(ptime, lines[i, j, k], color=colours[k], lw=0.9, label=scen)
            ax.axhline(0.0, color="grey", lw=0.5, ls=":")
            if i == 0:
                ax.set_title(str(layer), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{udim} {u}\ndegC", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=len(labels),
               bbox_to_anchor=(0.5, 0.0))
    what = "12-month running mean" if smooth else "monthly"
    for ax in axes[-1]:  # the inner rows share these x labels (sharex hides theirs)
        ax.tick_params(axis="x", labelrotation=30, labelrotation_mode="xtick")
    # margins as tight_layout measured them (labels of fixed size): no layout draw
    set_margins(fig, left=0.78, right=0.15, bottom=0.80, top=0.69, wspace=0.174,
                hspace=0.135)
    fig.suptitle(f"{model}: projected soil temperature ({what}); data: {data_label}", fontsize=10,
                 y=1.0 - 0.08 / fig.get_figheight(), va="top")
    return _save(fig, path)


def thaw_depth_figure(per_year: pd.DataFrame, model: str, data_label: str, path: Path) -> Path:
    """Thaw depth against year, one panel per unit, one line per scenario (and observed).

    ``per_year``: indicator rows with ``year``, unit column, ``series`` (``observed`` or a
    scenario), ``thaw_depth_m``. Depths below the deepest layer's mid-depth (1.945 m, where
    four layers cannot place the crossing) are drawn there with triangles; the depth axis
    points down; the resolution note (``indicators.RESOLUTION_NOTE``) is printed under the
    panels. Gridded rows (a ``cell`` column) are summarised
    by the median over each band's cells.
    """
    ucol = "band"
    if "cell" in per_year:  # gridded: the median over each band's cells
        per_year = (per_year.groupby(["series", "band", "year"], sort=False)["thaw_depth_m"]
                    .median().reset_index())
    units = sorted(per_year[ucol].unique())
    ncol = min(3, len(units))
    nrow = int(np.ceil(len(units) / ncol))
    width = max(4.2 * ncol, 8.0)  # room for the title and the note under one panel
    note = textwrap.fill(RESOLUTION_NOTE, min(150, int(18 * width)))
    note_in = 0.08 + 0.13 * (note.count("\n") + 1)  # inches under the legend for the note
    fig, axes = plt.subplots(nrow, ncol, figsize=(width, 2.8 * nrow + note_in + 0.7),
                             sharey=True, squeeze=False)
    series = list(dict.fromkeys(per_year["series"]))
    scen_names = [str(s) for s in series if s != "observed"]
    for n, u in enumerate(units):
        ax = axes[n // ncol, n % ncol]
        for s in series:
            rows = per_year[(per_year[ucol] == u) & (per_year["series"] == s)].sort_values("year")
            if rows.empty:
                continue
            d = rows["thaw_depth_m"].to_numpy(float)
            deep = np.isinf(d)
            colour = "black" if s == "observed" else _colour(s, scen_names)
            ax.plot(rows["year"], np.where(deep, DEEPEST_MID_M, d), color=colour, lw=1,
                    marker=".", ms=3, label=s)
            if deep.any():
                ax.plot(rows["year"][deep], np.full(deep.sum(), DEEPEST_MID_M), "v",
                        color=colour, ms=5)
        ax.axhline(DEEPEST_MID_M, color="grey", lw=0.5, ls="--")
        ax.set_title(f"{ucol} {u}", fontsize=9)
        ax.tick_params(labelsize=7)
    for n in range(len(units), nrow * ncol):
        axes[n // ncol, n % ncol].set_visible(False)
    axes[0, 0].set_ylabel("thaw depth (m)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=len(labels),
               bbox_to_anchor=(0.5, note_in / fig.get_figheight()))
    axes[0, 0].set_ylim(DEEPEST_MID_M + 0.25, 0.0)  # depth down, surface at the top
    bottom, top = _margins(fig, note_in + 0.35, 0.35)
    fig.tight_layout(rect=(0, bottom, 1, top))
    fig.suptitle(f"{model}: thaw depth of the annual-maximum profile (v: below "
                 f"{DEEPEST_MID_M:g} m); data: {data_label}", fontsize=10,
                 y=1.0 - 0.08 / fig.get_figheight(), va="top")
    fig.text(0.5, (note_in - 0.04) / fig.get_figheight(), note, ha="center", va="top",
             fontsize=7, color="0.3")
    return _save(fig, path)
