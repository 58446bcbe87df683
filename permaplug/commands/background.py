"""Work of ``permaplug run``'s later steps that does not need the trained networks, done in a
second process while the networks train (torch trains on one thread: the other core is free).

:class:`Background` runs one function call in a fresh (``spawn``) process and hands its result
back. :class:`Prefetch` collects keyed calls and runs them one after the other in one such
process; whoever later needs a result asks for it by key (:meth:`Prefetch.take`) and computes it
itself when the key was not prefetched or the process died. ``permaplug run`` prefetches, once
the table is stored and the normaliser fitted:

* the band projection's corrected scenarios and scenario truth
  (:func:`permaplug.projection.scenario_sets.scenario_sets`, handed to ``project_run``);
* for a demo catalog, the emulator rerun of the sensitivity test (:class:`PrefetchedRerun`
  around the rerun the command line hands down, :func:`permaplug.demo.sensitivity.rerun`).

Same functions, same arguments, same machine code (numba's cache): the same values as when the
steps compute them themselves.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable, Hashable, Sequence
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
        conn.send(("error", BackgroundLost(f"background result not transferable: {exc}")))
    finally:
        conn.close()


class BackgroundLost(RuntimeError):
    """The background process ended without sending a result (killed, crashed)."""


class Background:
    """``fn(*args, **kwargs)`` started now in a spawned process; :meth:`result` waits for it.

    ``fn`` must be importable by name (a module-level function); arguments that cannot be
    pickled raise here, at the start. :meth:`result` returns the value or raises the call's
    exception; :class:`BackgroundLost` when the process died without an answer. :meth:`close`
    stops a process still running (nobody wants its result).
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_call, args=(child, fn, args, kwargs), daemon=True,
                                 name=f"permaplug-background-{getattr(fn, '__name__', 'call')}")
        try:
            self._proc.start()
        finally:
            child.close()  # the parent keeps only its end: a dead child means EOF, not a hang

    def ready(self) -> bool:
        """True when the answer (or the process's end) has arrived: :meth:`result` will not
        wait."""
        try:
            return self._conn.poll()
        except (OSError, ValueError):  # already closed
            return True

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


def _run_calls(calls: list[tuple[Callable[..., Any], tuple, dict]]) -> list[tuple[str, Any]]:
    """Child side of :class:`Prefetch`: each call in turn, ``("ok", value)`` or
    ``("error", exception)``, at a lower CPU priority (nice +10: on a busy machine the command's
    own process goes first)."""
    import os
    import threading

    from tqdm import tqdm

    with contextlib.suppress(AttributeError, OSError):
        os.nice(10)
    # progress bars lock with a thread lock here: tqdm's default is a multiprocessing semaphore,
    # which a process stopped unfinished would leave to the resource tracker ("leaked
    # semaphore" warning when the command ends)
    tqdm.set_lock(threading.RLock())
    out: list[tuple[str, Any]] = []
    for fn, args, kwargs in calls:
        try:
            out.append(("ok", fn(*args, **kwargs)))
        except Exception as exc:  # noqa: BLE001 - raised again where the result is taken
            out.append(("error", exc))
    return out


_MISSING = object()


class Prefetch:
    """Keyed calls run one after the other in one background process (:meth:`start`).

    :meth:`take` hands a prefetched result out once (raising the call's exception if it
    failed) and returns ``default`` for a key never added, already taken, or lost with its
    process; the caller then computes the value itself. A process that has not finished when
    the first result is asked for is stopped and counts as lost (on an idle core it finishes
    long before training does; on a busy machine waiting for it would cost more than computing
    in the command's own process)."""

    def __init__(self) -> None:
        self._calls: list[tuple[Hashable, Callable[..., Any], tuple, dict]] = []
        self._job: Background | None = None
        self._results: dict[Hashable, tuple[str, Any]] | None = None

    def add(self, key: Hashable, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(*args, **kwargs)`` under ``key`` (before :meth:`start`)."""
        if self._job is not None:
            raise RuntimeError("Prefetch.add after start")
        self._calls.append((key, fn, args, kwargs))

    def start(self) -> bool:
        """Start the queued calls in a background process; False (nothing prefetched) when
        there are none or they cannot be handed to another process (e.g. a lambda)."""
        if not self._calls or self._job is not None:
            return False
        try:
            self._job = Background(_run_calls, [(fn, a, k) for _, fn, a, k in self._calls])
        except Exception:  # noqa: BLE001 - not picklable (a lambda, a closure), no process
            self._calls.clear()
            return False
        return True

    def take(self, key: Hashable, default: Any = None) -> Any:
        """The result of the call queued under ``key`` (waiting for the process), once."""
        if self._job is None or not any(k == key for k, *_ in self._calls):
            return default
        if self._results is None:
            try:
                if not self._job.ready():
                    self._job.close()  # not done yet: computed here instead
                answers = self._job.result()
            except BackgroundLost:
                answers = [("lost", None)] * len(self._calls)
            self._results = {k: a for (k, *_), a in zip(self._calls, answers, strict=True)}
        status, value = self._results.pop(key, ("lost", None))
        self._calls = [c for c in self._calls if c[0] != key]
        if status == "error":
            raise value
        return value if status == "ok" else default

    def close(self) -> None:
        """Stop the background process if it still runs; nothing more is handed out."""
        if self._job is not None:
            self._job.close()
        self._calls.clear()
        self._results = {}


def _rerun_key(metadata: Any, periods: Sequence, window: int, deltas: Sequence[float]) -> tuple:
    return ("emulator-rerun", tuple(sorted((str(k), repr(v)) for k, v in dict(metadata).items())),
            tuple(tuple(p) for p in periods), int(window), tuple(float(d) for d in deltas))


class PrefetchedRerun:
    """An emulator rerun (the signature of :data:`permaplug.projection.rerun.EmulatorRerun`)
    answered from ``prefetch`` when called with arguments queued by :meth:`add`, else computed
    by ``rerun`` in this process."""

    def __init__(self, rerun: Callable[..., Any], prefetch: Prefetch) -> None:
        self.rerun = rerun
        self.prefetch = prefetch

    def add(self, metadata: Any, periods: Sequence, window: int, deltas: Sequence[float]
            ) -> None:
        """Queue ``rerun`` for these arguments (progress off) in the prefetch."""
        periods = [tuple(p) for p in periods]
        self.prefetch.add(_rerun_key(metadata, periods, window, deltas), self.rerun,
                          dict(metadata), periods, int(window), tuple(deltas), progress=False)

    def __call__(self, metadata: Any, periods: Sequence, window: int,
                 deltas: Sequence[float], progress: bool = True) -> Any:
        got = self.prefetch.take(_rerun_key(metadata, periods, window, deltas), _MISSING)
        if got is not _MISSING:
            return got
        return self.rerun(metadata, periods, window, deltas, progress=progress)
