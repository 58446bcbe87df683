"""A figure like the paper's Figure 11: reanalysis history, raw and corrected scenarios.

One panel per variable: annual means averaged over the spatial units; the reanalysis in black,
each scenario raw (thin dashed) and corrected (solid), in the scenario's colour.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from permaplug.core import schema  # noqa: E402
from permaplug.core.atomic import atomic_path  # noqa: E402

COLOURS = {"rcp26": "#2166ac", "rcp45": "#67a9cf", "rcp60": "#ef8a62", "rcp85": "#b2182b"}


def annual_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean over every dim but ``time`` (and ``scenario``), then per calendar year."""
    space = [d for d in da.dims if d not in ("time", "scenario")]
    return da.mean(space).groupby("time.year").mean()


def plot_correction(obs: xr.Dataset, raw: xr.Dataset, corrected: xr.Dataset,
                    variables: Sequence[str], path: Path, title: str,
                    extra: Mapping[str, xr.Dataset] | None = None) -> Path:
    """Write the Figure-11-like PNG to ``path`` (atomically) and return it.

    ``extra`` adds further corrected datasets (dotted lines), e.g. QDM next to QM.
    """
    n = len(variables)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.0 * nrow), squeeze=False,
                             sharex=True)
    styles = [("raw", raw, dict(ls="--", lw=0.8, alpha=0.7)),
              (corrected.attrs.get("bias_correction", "corrected"), corrected, dict(lw=1.3))]
    for lab, ds in (extra or {}).items():
        styles.append((lab, ds, dict(ls=":", lw=1.2)))
    for ax, var in zip(axes.ravel(), variables):
        for label, ds, style in styles:
            a = annual_mean(ds[var])
            for s in a.scenario.values:
                ax.plot(a.year, a.sel(scenario=s), color=COLOURS.get(str(s), "grey"), **style,
                        label=f"{s} {label}")
        o = annual_mean(obs[var])
        ax.plot(o.year, o, color="black", lw=1.6, label="reanalysis")
        units = obs[var].attrs.get("units", "")
        ax.set_title(f"{var} ({units})" if units else var, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7,
               frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) > 6), 1, 0.97))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def figure_title(corrector: str, obs: xr.Dataset, raw: xr.Dataset) -> str:
    """The figure's title, naming the data."""
    return (f"Bias correction ({corrector}): annual means over units -- data: "
            f"{schema.data_label(raw)}; reference: {schema.data_label(obs)}")
