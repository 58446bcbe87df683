"""Where the sensitivity test finds the emulator rerun (no heavy imports: the command line
sets it at start-up).

The projection layer does not import the demo (they are sibling layers), so the command line
hands :func:`permaplug.demo.sensitivity.rerun` down with :func:`set_emulator_rerun`; a library
user who wants emulator rows outside the command line does the same.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

EmulatorRerun = Callable[..., Any]
"""``fn(metadata, periods, window, deltas, progress=...) -> {period label: DataArray (delta_K,
time, band, layer) degC}``, ``delta_K`` 0 the base run; ``periods``: ``(start, end, scenario or
None)`` (the signature of :func:`permaplug.demo.sensitivity.rerun`)."""
_RERUN: list[EmulatorRerun | None] = [None]


def set_emulator_rerun(fn: EmulatorRerun | None) -> None:
    """Hand down the emulator rerun; None removes it."""
    _RERUN[0] = fn


def emulator_rerun() -> EmulatorRerun | None:
    """The emulator rerun handed down, or None."""
    return _RERUN[0]
