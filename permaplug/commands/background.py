"""Work of ``permaplug run``'s later steps that does not need the trained networks, done in a
second process while the networks train (torch trains on one thread: the other core is free).

:class:`Prefetch` collects keyed calls and runs them one after the other in a fresh
(``spawn``) process; whoever later needs a result asks for it by key (:meth:`Prefetch.take`)
and computes it itself when the key was not prefetched or the process died. ``permaplug run`` prefetches, once
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
import queue
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any


class BackgroundLost(RuntimeError):
    """A background result that could not be handed back (e.g. not picklable)."""


def _stream_calls(conn, inbox) -> None:
    """Child side of :class:`Prefetch`: the calls (pickled, read from ``inbox``), each in turn,
    at a lower CPU priority (nice +10: on a busy machine the command's own process goes
    first), its answer ``(number, "ok", value)`` or ``(number, "error", exception)`` sent
    through ``conn`` as soon as it is done."""
    import os
    import threading
    from multiprocessing.reduction import ForkingPickler

    try:
        payload = inbox.recv_bytes()
    except (EOFError, OSError):  # the parent stopped before sending
        return
    finally:
        inbox.close()
    # unpickling imports what the calls need (xarray, the correction...): here, not while the
    # parent waits to hand the calls over
    calls = ForkingPickler.loads(payload)  # what Connection.recv does

    from tqdm import tqdm

    with contextlib.suppress(AttributeError, OSError):
        os.nice(10)
    # progress bars lock with a thread lock here: tqdm's default is a multiprocessing semaphore,
    # which a process stopped unfinished would leave to the resource tracker ("leaked
    # semaphore" warning when the command ends)
    tqdm.set_lock(threading.RLock())
    # answers go out from a thread: sending waits until the parent reads (a pipe holds 64 KiB,
    # an answer many MB), and the parent reads only when it needs the answer, after training;
    # meanwhile this thread goes on with the next call
    answers: queue.Queue = queue.Queue()
    sender = threading.Thread(target=_send_answers, args=(conn, answers), daemon=True)
    sender.start()
    try:
        for number, (fn, args, kwargs) in enumerate(calls):
            try:
                answers.put((number, "ok", fn(*args, **kwargs)))
            except Exception as exc:  # noqa: BLE001 - raised again where the result is taken
                answers.put((number, "error", exc))
    finally:
        answers.put(None)
        sender.join()
        conn.close()


def _send_answers(conn, answers: queue.Queue) -> None:
    """Send each answer of ``answers`` (until None) through ``conn``, in order."""
    while (answer := answers.get()) is not None:
        try:
            conn.send(answer)
        except (BrokenPipeError, EOFError, OSError):  # the parent stopped listening
            return
        except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
            conn.send((answer[0], "error",
                       BackgroundLost(f"background result not transferable: {exc}")))


def _hand_over(outbox, payload: bytes) -> None:
    """Write ``payload`` to ``outbox`` (waits while the child reads), then close it."""
    try:
        outbox.send_bytes(payload)
    except (OSError, ValueError):  # the child is gone: its calls count as lost
        pass
    finally:
        outbox.close()


class _CallStream:
    """The calls of a :class:`Prefetch` running in a spawned process; :attr:`answers` holds
    ``number -> (status, value)`` of the answers received so far."""

    def __init__(self, calls: list[tuple[Callable[..., Any], tuple, dict]]) -> None:
        import threading
        from multiprocessing.reduction import ForkingPickler

        # pickled here as Connection.send would (what cannot be pickled, e.g. a lambda, raises
        # now) and handed over by a thread: the pipe holds 64 KiB, and the child reads the rest
        # only as it unpickles, importing xarray and the rest (2-3 s the command's process
        # would otherwise wait)
        payload = bytes(ForkingPickler.dumps(calls))
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        inbox, outbox = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_stream_calls, args=(child, inbox), daemon=True,
                                 name="permaplug-background")
        self.n = len(calls)
        self.answers: dict[int, tuple[str, Any]] = {}
        self.ended = False
        try:
            self._proc.start()
        finally:
            child.close()  # the parent keeps only its ends: a dead child means EOF, not a hang
            inbox.close()
        threading.Thread(target=_hand_over, args=(outbox, payload), daemon=True,
                         name="permaplug-background-calls").start()

    def _arrived(self) -> bool:
        try:
            return self._conn.poll()
        except (OSError, ValueError):  # closed
            return True

    def collect(self, wait_for: int | None = None) -> None:
        """Take in the answers that have arrived; with ``wait_for``, wait until that call's
        answer is in (or the process has ended)."""
        while not self.ended and len(self.answers) < self.n and (
                (wait_for is not None and wait_for not in self.answers) or self._arrived()):
            try:
                number, status, value = self._conn.recv()
            except (EOFError, OSError, ValueError):
                self.ended = True
                break
            self.answers[number] = (status, value)

    def ready(self) -> bool:
        """True when every answer is in or the process has ended: nothing more to wait for."""
        self.collect()
        return self.ended or len(self.answers) == self.n

    def hurry(self) -> bool:
        """Run the process's threads at this process's priority from now on (someone waits
        for it); False where that is not allowed (raising a priority needs privileges)."""
        import os

        try:
            mine = os.getpriority(os.PRIO_PROCESS, 0)
            tasks = Path(f"/proc/{self._proc.pid}/task")
            tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [self._proc.pid]
            for tid in tids:  # Linux: a niceness is per thread
                with contextlib.suppress(ProcessLookupError):
                    os.setpriority(os.PRIO_PROCESS, tid, mine)
        except (AttributeError, OSError, ValueError):
            return False
        return True

    def close(self) -> None:
        """Stop the process if it still runs; no more answers."""
        self.ended = True
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)
        self._conn.close()


_MISSING = object()


class Prefetch:
    """Keyed calls run one after the other in one background process (:meth:`start`).

    :meth:`take` hands a prefetched result out once (raising the call's exception if it
    failed) and returns ``default`` for a key never added, already taken, or lost with its
    process; the caller then computes the value itself. Each answer is handed back as soon as
    its call is done. A call not done when its result is asked for is waited for at this
    process's priority when the background process can be raised to it (the caller would
    otherwise start the same work from the beginning); where that is not allowed, the process
    is stopped and its calls count as lost (the background process runs at nice +10: on a busy
    machine it may be far behind)."""

    def __init__(self) -> None:
        self._calls: list[tuple[Hashable, Callable[..., Any], tuple, dict]] = []
        self._job: _CallStream | None = None
        self._taken: set[int] = set()

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
            self._job = _CallStream([(fn, a, k) for _, fn, a, k in self._calls])
        except Exception:  # noqa: BLE001 - not picklable (a lambda, a closure), no process
            self._calls.clear()
            return False
        return True

    def take(self, key: Hashable, default: Any = None) -> Any:
        """The result of the call queued under ``key`` (waiting for it, see the class), once."""
        job = self._job
        number = next((i for i, (k, *_) in enumerate(self._calls)
                       if k == key and i not in self._taken), None)
        if job is None or number is None:
            return default
        self._taken.add(number)
        job.collect()
        if number not in job.answers and not job.ended:
            if job.hurry():
                job.collect(wait_for=number)
            else:
                job.close()  # not done yet: computed here instead
        status, value = job.answers.pop(number, ("lost", None))
        if len(self._taken) == len(self._calls) or job.ended:
            job.close()
        if status == "error":
            raise value
        return value if status == "ok" else default

    def close(self) -> None:
        """Stop the background process if it still runs; nothing more is handed out."""
        if self._job is not None:
            self._job.close()
            self._job.answers.clear()
        self._taken = set(range(len(self._calls)))


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
