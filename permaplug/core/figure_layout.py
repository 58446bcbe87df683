"""Figure margins in inches, set without drawing the figure.

``Figure.tight_layout`` draws the whole figure once to measure its labels before the real
draw: on a panel grid of 24 axes that is about 1 s, as much as writing the PNG. The package's
figures use fixed fonts and label lengths, so their margins are known in inches (measured
once with ``tight_layout``) and are set directly with :func:`set_margins`.
"""
from __future__ import annotations

from matplotlib.figure import Figure


def set_margins(fig: Figure, *, left: float, right: float, bottom: float, top: float,
                wspace: float = 0.2, hspace: float = 0.2) -> None:
    """Place the subplot grid of ``fig`` leaving ``left``/``right``/``bottom``/``top`` inches
    at the edges; ``wspace``/``hspace``: gaps as fractions of the mean axes width/height."""
    width, height = fig.get_size_inches()
    if left + right >= width or bottom + top >= height:
        raise ValueError(f"margins {left}+{right} x {bottom}+{top} in do not fit a "
                         f"{width:g} x {height:g} in figure")
    fig.subplots_adjust(left=left / width, right=1.0 - right / width, bottom=bottom / height,
                        top=1.0 - top / height, wspace=wspace, hspace=hspace)
