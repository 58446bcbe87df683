"""Figures of the demo data: the seasonal cycle per band and layer, and the scenario truth."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from permaplug.core import scenarios, schema
from permaplug.core.atomic import atomic_path

MONTHS = "JFMAMJJASOND"


def seasonal_cycle_figure(catalog: Path | str | None, out: Path) -> Path:
    """PNG of the 2001-2023 mean annual cycle of ``stl1..4`` (and ``t2m``) in each band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from permaplug.core.catalog import load_catalog
    from permaplug.demo.build import ensure_demo_catalog

    ds = load_catalog(catalog or ensure_demo_catalog()).open("era5land")
    label = schema.data_label(ds)
    clim = ds[["t2m", *schema.TARGETS]].groupby("time.month").mean("time").load()
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True, sharey=True)
    colors = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4"]
    for b, ax in enumerate(axes.ravel()):
        ax.plot(range(1, 13), clim["t2m"].sel(band=b), color="0.6", ls="--", label="t2m (air)")
        for layer, c in zip(schema.TARGETS, colors):
            top, bot = schema.LAYERS[int(layer[-1]) - 1]
            ax.plot(range(1, 13), clim[layer].sel(band=b), color=c,
                    label=f"{layer} ({top * 100:g}-{bot * 100:g} cm)")
        ax.axhline(0, color="k", lw=0.5)
        lo, hi = schema.BAND_EDGES[b], schema.BAND_EDGES[b + 1]
        ax.set_title(f"band {b}: {lo:.1f}-{hi:.1f} N", fontsize=10)
        ax.set_xticks(range(1, 13), list(MONTHS))
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("temperature (degC)")
    axes[0, 0].legend(fontsize=7, loc="lower center")
    fig.suptitle(f"Mean annual cycle 2001-2023 per band and ERA5-Land layer (data: {label})")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out


def truth_figure(catalog: Path | str | None, out: Path) -> Path:
    """PNG of annual-mean ``stl1`` and ``stl4`` 2001-2100 under each scenario (emulator
    truth), per band group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from permaplug.core.catalog import load_catalog
    from permaplug.demo.build import ensure_demo_catalog

    cat = load_catalog(catalog or ensure_demo_catalog())
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=False)
    truth = {str(cat.entry(n).metadata["scenario"]): n for n in cat.find_all("scenario_truth")}
    colors = scenarios.colours(truth, ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"))
    label = "unknown data"
    for s, c in colors.items():
        ds = cat.open(truth[s])
        label = schema.data_label(ds)
        annual = ds[["stl1", "stl4"]].groupby("time.year").mean().load()
        for ax, band in zip(axes, (0, 3, 5)):
            ax.plot(annual["year"], annual["stl4"].sel(band=band), color=c, label=f"{s} stl4")
            ax.plot(annual["year"], annual["stl1"].sel(band=band), color=c, lw=0.6, alpha=0.6)
    for ax, band in zip(axes, (0, 3, 5)):
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(2023.5, color="0.5", ls=":")
        ax.set_title(f"band {band} (thin: stl1, thick: stl4)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("annual mean (degC)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Emulator truth under the scenarios (data: {label})")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out


def annual_amplitude(ds) -> np.ndarray:
    """(layer, band) amplitude (max - min of the mean annual cycle) of stl1..4, degC."""
    clim = ds[list(schema.TARGETS)].groupby("time.month").mean("time")
    return np.stack([(clim[v].max("month") - clim[v].min("month")).values for v in schema.TARGETS])
