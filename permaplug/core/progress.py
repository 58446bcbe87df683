"""Progress bars: only on a terminal, never under ``--quiet``.

Every ``tqdm`` in permaplug passes ``disable=disabled(progress)``: ``None`` lets tqdm show the
bar only when its stream (stderr) is a terminal, so logs and pipes never fill with bars;
``True`` hides it when the caller asked for no progress or a command runs under :func:`quiet`
(the CLI's ``--quiet``), which also reaches bars deep inside plugins (correctors).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_QUIET: ContextVar[bool] = ContextVar("permaplug_quiet", default=False)


def disabled(progress: bool = True) -> bool | None:
    """tqdm's ``disable``: True when bars are off, else None (shown on a terminal only)."""
    return True if (not progress or _QUIET.get()) else None


def set_quiet(on: bool = True) -> None:
    """Bars off from now on in this context (the CLI's ``--quiet``; the CLI's :func:`scope`
    restores the previous state when the command ends)."""
    if on:
        _QUIET.set(True)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Whatever :func:`set_quiet` does inside the block is undone when it ends."""
    token = _QUIET.set(_QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)


@contextlib.contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """No progress bar anywhere inside the block when ``on``."""
    token = _QUIET.set(bool(on) or _QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)
