"""``permaplug.core.figure_layout``: margins in inches without a layout draw."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from permaplug.core.figure_layout import set_margins


def test_margins_are_set_in_inches():
    fig = Figure(figsize=(10.0, 5.0))
    fig.subplots(2, 3)
    set_margins(fig, left=0.8, right=0.2, bottom=1.0, top=0.5, wspace=0.3, hspace=0.1)
    p = fig.subplotpars
    assert p.left == pytest.approx(0.08) and p.right == pytest.approx(0.98)
    assert p.bottom == pytest.approx(0.2) and p.top == pytest.approx(0.9)
    assert (p.wspace, p.hspace) == (0.3, 0.1)
    x0, _, _, y1 = fig.axes[0].get_position().extents  # first row, first column
    assert x0 == pytest.approx(0.08) and y1 == pytest.approx(0.9)


def test_margins_that_do_not_fit_are_refused():
    fig = Figure(figsize=(3.0, 2.0))
    with pytest.raises(ValueError, match="do not fit a 3 x 2 in figure"):
        set_margins(fig, left=1.0, right=0.5, bottom=1.2, top=0.9)
