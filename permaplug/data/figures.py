"""Figures of the assembled table: monthly series per band, the band layout over Alaska."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from permaplug.core import schema
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import DataError
from permaplug.data.region import load_region


def plot_table(table: xr.Dataset, out: str | Path,
               variables: Sequence[str] = ("t2m", "stl1", "stl4", "tp")) -> Path:
    """PNG: a map of the region and bands, then one panel per variable with a line per band.

    The title repeats ``data: <label>``. ``table`` dims (time, band).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "band" not in table.dims:
        raise DataError("plot: the table has no 'band' dimension (gridded tables: aggregate first)")
    variables = [v for v in variables if v in table.data_vars]
    if not variables:
        raise DataError("plot: none of the requested variables is in the table")
    fig, axes = plt.subplots(1 + len(variables), 1, figsize=(9, 2.4 * (1 + len(variables))),
                             gridspec_kw={"height_ratios": [1.6] + [1] * len(variables)})
    colors = plt.cm.viridis(np.linspace(0, 0.9, schema.N_BANDS))
    geom = load_region()
    ax = axes[0]
    for poly in getattr(geom, "geoms", [geom]):
        x, y = poly.exterior.xy
        ax.fill(x, y, color="0.9", edgecolor="0.4", lw=0.8)
    for b in range(schema.N_BANDS):
        lo, hi = schema.BAND_EDGES[b], schema.BAND_EDGES[b + 1]
        ax.axhspan(lo, hi, color=colors[b], alpha=0.25, lw=0)
        ax.text(-167.5, (lo + hi) / 2, f"band {b}", va="center", fontsize=8)
    ax.set_xlim(-169, -140)
    ax.set_ylim(54, 72)
    ax.set_aspect(1 / np.cos(np.deg2rad(65)))
    ax.set_title(f"Latitude bands over mainland Alaska -- data: {schema.data_label(table)}",
                 fontsize=10)
    for ax, v in zip(axes[1:], variables, strict=True):
        for b in range(table.sizes["band"]):
            ax.plot(table["time"].values, table[v].isel(band=b).values, lw=0.8,
                    color=colors[b % len(colors)], label=f"band {int(table['band'][b])}")
        units = table[v].attrs.get("units", "")
        ax.set_ylabel(f"{v} ({units})" if units else v)
    axes[1].legend(ncol=schema.N_BANDS, fontsize=7, loc="upper left")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(out)
