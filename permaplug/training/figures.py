"""Figures of a run: observed vs predicted for the last test year in a bands x layers grid
(paper Figure 4) and the training-loss curves. Every title carries ``data: <label>``."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from permaplug.core import schema
from permaplug.core.atomic import atomic_path
from permaplug.core.figure_layout import set_margins

MAX_ROWS = 12  # gridded runs: show at most this many units


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def observed_vs_predicted(pred: pd.DataFrame, path: Path, label: str, unit_col: str = "band",
                          models: list[str] | None = None) -> Path:
    """Figure 4: rows = units (bands), columns = layers; the last test year, one line per model."""
    year = pd.DatetimeIndex(pred["time"]).year.max()
    sub = pred[pd.DatetimeIndex(pred["time"]).year == year]
    models = models or list(dict.fromkeys(sub["model"]))
    units = sorted(sub[unit_col].unique())[:MAX_ROWS]
    fig, axes = plt.subplots(len(units), len(schema.TARGETS), sharex=True, squeeze=False,
                             figsize=(3.2 * len(schema.TARGETS), 1.9 * len(units) + 1))
    for i, unit in enumerate(units):
        for j, layer in enumerate(schema.TARGETS):
            ax = axes[i, j]
            cell = sub[(sub[unit_col] == unit) & (sub["layer"] == layer)]
            obs = cell.drop_duplicates("time").sort_values("time")
            ax.plot(obs["time"], obs["observed"], color="black", lw=2.2, label="observed")
            for name in models:
                m = cell[cell["model"] == name].sort_values("time")
                ax.plot(m["time"], m["predicted"], lw=1.1, label=name)
            if i == 0:
                a, b = schema.LAYERS[j]
                ax.set_title(f"{layer} ({a:g}-{b:g} m)", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{unit_col} {unit}\ndegC", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%b"))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    fig.suptitle(f"Observed vs predicted soil temperature, {year} (data: {label})", fontsize=11)
    # margins as tight_layout measured them (labels of fixed size): no layout draw
    set_margins(fig, left=0.78, right=0.15, bottom=0.97, top=1.02, wspace=0.183, hspace=0.150)
    return _save(fig, path)


def loss_curves(histories: dict[str, dict], path: Path, label: str) -> Path:
    """Training (solid) and validation (dashed) MSE per epoch, normalised units, log scale."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, h in histories.items():
        (line,) = ax.plot(range(1, len(h["train"]) + 1), h["train"], label=f"{name} train")
        if h.get("val"):
            ax.plot(range(1, len(h["val"]) + 1), h["val"], ls="--", color=line.get_color(),
                    label=f"{name} validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (normalised units)")
    ax.set_title(f"Training loss (data: {label})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
