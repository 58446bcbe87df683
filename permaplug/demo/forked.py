"""Run independent parts of the demo build in forked child processes, sharing memory.

A forked child starts as a copy of this process: it sees every array already computed (copy on
write, nothing is serialised, no imports or compilation to redo) and hands large results back
through anonymous shared memory allocated before the fork (:func:`shared_zeros`). The demo
build uses it for the two stacked truth runs and for writing the truth files while the main
process writes the other files. Where ``fork`` is not available (Windows), :func:`can_fork` is
False and callers run the parts in this process or in ``python -m`` workers instead.
"""
from __future__ import annotations

import mmap
import multiprocessing as mp
import traceback
from collections.abc import Callable, Sequence

import numpy as np

from permaplug.core.errors import DataError


def can_fork() -> bool:
    """True where child processes can be forked (Linux, macOS)."""
    return "fork" in mp.get_all_start_methods()


def shared_zeros(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A zero-filled array in anonymous shared memory: what a forked child writes into it, the
    parent sees."""
    count = int(np.prod(shape))
    buf = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))  # MAP_SHARED | MAP_ANONYMOUS
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


def _child(task: Callable[[], None], conn) -> None:
    """Run ``task``; send ``None`` or the error's last line back, then exit."""
    try:
        task()
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        tail = traceback.format_exc().strip().splitlines()[-3:]
        conn.send(f"{line} ({' | '.join(t.strip() for t in tail[:-1])})")
        raise SystemExit(1) from None
    conn.send(None)


class Forked:
    """Tasks (callables without arguments; their results go to files or shared arrays) started
    at once, each in its own forked child; :meth:`join` waits for all and raises
    :class:`permaplug.core.errors.DataError` naming ``what`` if one failed."""

    def __init__(self, tasks: Sequence[Callable[[], None]], what: str) -> None:
        ctx = mp.get_context("fork")
        self.what = what
        self.children = []
        for task in tasks:
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(task, send), daemon=True)
            proc.start()
            send.close()
            self.children.append((proc, recv))

    def join(self) -> None:
        errors = []
        for proc, recv in self.children:
            try:
                message = recv.recv()
            except EOFError:  # killed (out of memory, signal) before it could report
                message = "no message"
            proc.join()
            if proc.exitcode != 0 or message is not None:
                errors.append(message or f"exit code {proc.exitcode}")
        if errors:
            raise DataError(f"{self.what} failed: {errors[0]}")


def run_forked(tasks: Sequence[Callable[[], None]], what: str) -> None:
    """Run ``tasks`` in parallel forked children and wait for them (see :class:`Forked`)."""
    Forked(tasks, what).join()
