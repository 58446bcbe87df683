"""Work of ``permaplug run``'s later steps that does not need the trained networks, done in a
second process while the networks train (torch trains on one thread: the other core is free).

:class:`Background` runs one function call in a fresh (``spawn``) process and hands its result
back; :class:`PrefetchedRerun` uses it for the demo emulator's rerun of the sensitivity test
(:func:`permaplug.demo.sensitivity.rerun`, as the command line hands it down), which needs only the demo catalog's metadata, the
test years and the window, all known before training. The projection step then takes the
result computed in the background when it asks for the same arguments; for any other arguments
(``--end 2100`` adds the late-century period), or when the background process failed to start
or died, the rerun is computed in this process as before. Same function, same arguments, same
machine code (numba's cache): the same values.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
from collections.abc import Callable, Sequence
from typing import Any


def _call(conn, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Child side: ``fn(*args, **kwargs)`` sent back as ``("ok", result)`` or
    ``("error", exception)``."""
    try:
        out = ("ok", fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        out = ("error", exc)
    try:
        conn.send(out)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
        conn.send(("error", RuntimeError(f"background result not transferable: {exc}")))
    finally:
        conn.close()


class Background:
    """``fn(*args, **kwargs)`` started now in a spawned process; :meth:`result` waits for it.

    ``fn`` must be importable by name (a module-level function). :meth:`result` returns its
    value or raises its exception; it raises :class:`BackgroundLost` when the process died
    without an answer. :meth:`close` stops a process still running (the caller gave up on it).
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_call, args=(child, fn, args, kwargs), daemon=True,
                                 name=f"permaplug-background-{getattr(fn, '__name__', 'call')}")
        self._proc.start()
        child.close()  # the parent keeps only its end: a dead child means EOF, not a hang

    def result(self) -> Any:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise BackgroundLost(f"background process exited with code {self._proc.exitcode} "
                                 "without a result") from exc
        finally:
            self.close()
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)
        self._conn.close()


class BackgroundLost(RuntimeError):
    """The background process ended without sending a result (killed, crashed)."""


def _key(metadata: Any, periods: Sequence, window: int, deltas: Sequence[float]) -> tuple:
    return (tuple(sorted((str(k), repr(v)) for k, v in dict(metadata).items())),
            tuple(tuple(p) for p in periods), int(window), tuple(float(d) for d in deltas))


class PrefetchedRerun:
    """An emulator rerun (the signature of :data:`permaplug.projection.rerun.EmulatorRerun`)
    that answers from a background computation started earlier with :meth:`start` when called
    with the same ``metadata, periods, window, deltas``, and calls ``fallback`` otherwise."""

    def __init__(self, fallback: Callable[..., Any], target: Callable[..., Any] | None = None
                 ) -> None:
        self.fallback = fallback
        self.target = target or fallback
        self._pending: dict[tuple, Background] = {}

    def start(self, metadata: Any, periods: Sequence, window: int, deltas: Sequence[float]
              ) -> bool:
        """Start ``target`` (default: ``fallback``) for these arguments in a background process
        (progress off); False when it cannot be handed to another process (not importable by
        name, e.g. a lambda): the rerun is then computed here when asked for."""
        periods = [tuple(p) for p in periods]
        try:
            job = Background(self.target, dict(metadata), periods, int(window), tuple(deltas),
                             progress=False)
        except (AttributeError, TypeError, ValueError, OSError, pickle.PicklingError):
            return False
        self._pending[_key(metadata, periods, window, deltas)] = job
        return True

    def __call__(self, metadata: Any, periods: Sequence, window: int,
                 deltas: Sequence[float], progress: bool = True) -> Any:
        job = self._pending.pop(_key(metadata, periods, window, deltas), None)
        if job is not None:
            try:
                return job.result()
            except BackgroundLost:
                pass  # computed here instead
        return self.fallback(metadata, periods, window, deltas, progress=progress)

    def close(self) -> None:
        """Stop every background rerun nobody asked for."""
        for job in self._pending.values():
            job.close()
        self._pending.clear()
