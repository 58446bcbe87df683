"""Figure of the climate sensitivity test: per period and layer, the response (mean over units)
against the warming step, one line per network and the emulator in bold black."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from permaplug.core.atomic import atomic_path

EMULATOR = "emulator"


def sensitivity_figure(rows: pd.DataFrame, data_label: str, path: Path) -> Path:
    """Rows of ``sensitivity.csv`` (pooled ``unit == "all"`` used) as a periods x layers grid of
    panels: response (degC) against dK (K), the origin included; a dotted 1:1 line."""
    pooled = rows[rows["unit"].astype(str) == "all"]
    periods = list(dict.fromkeys(pooled["period"]))
    layers = list(dict.fromkeys(pooled["layer"]))
    sources = list(dict.fromkeys(pooled["source"]))
    fig, axes = plt.subplots(max(len(periods), 1), max(len(layers), 1),
                             figsize=(3.0 * max(len(layers), 1), 2.7 * max(len(periods), 1)),
                             sharex=True, sharey=True, squeeze=False)
    top = float(pooled["delta_K"].max()) if len(pooled) else 1.0
    for i, period in enumerate(periods):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            ax.plot([0, top], [0, top], ls=":", color="0.6", lw=0.8, label="1:1")
            for src in sources:
                sub = pooled[(pooled["period"] == period) & (pooled["layer"] == layer)
                             & (pooled["source"] == src)].sort_values("delta_K")
                if not len(sub):
                    continue
                x = [0.0, *sub["delta_K"]]
                y = [0.0, *sub["response_degC"]]
                emu = src == EMULATOR
                ax.plot(x, y, marker="o", ms=3, lw=2.8 if emu else 1.2,
                        color="black" if emu else None, label=src, zorder=3 if emu else 2)
            ax.set_title(f"{layer}, {period}", fontsize=9)
            if i == len(periods) - 1:
                ax.set_xlabel("air (and skin) temperature + dK (K)")
            if j == 0:
                ax.set_ylabel("soil response (degC)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    right = 1.0
    if handles:
        legend = fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False)
        width = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi  # inches
        right = 1.0 - (width + 0.1) / fig.get_figwidth()
    fig.suptitle(f"Climate sensitivity: mean response per layer (data: {data_label})",
                 fontsize=10)
    # the panels leave the legend its measured width: saved as laid out, in one render
    # (no bbox_inches="tight", which draws the figure a second time)
    fig.tight_layout(rect=(0, 0, right, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
