"""``permaplug run``'s explanation step alongside its projection, in a forked child process.

Once the networks are trained and saved, the explanation (SHAP) of the test windows needs
nothing else, and that of the scenario windows needs only the projection's stored scenario
inputs, which the projection writes before its figures, skill tables and sensitivity test.
:class:`ExplainAlongside` forks a child before training; the child loads what the explainer
needs (``prepare``: shap's import, ~2 s, while this process reads the data) and waits. Told
that the networks are saved (:meth:`ExplainAlongside.start`), it explains the test windows,
waits until the projection says where its inputs are
(:meth:`ExplainAlongside.projection_inputs`), then explains the scenario windows, while this
process writes the run's outputs and projects: the two steps share the machine's two cores
instead of running one after the other.

The child is a copy of this process (torch on one thread, the imported libraries) and reads
the trained networks from the run folder, as ``permaplug explain`` does: the explanation
computes the same values as in this process (the explainers seed their own draws). Whatever
goes wrong in the child, :meth:`ExplainAlongside.result` returns None and the caller explains
in its own process, as without the child.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: the explanation step: ``(run_dir, explainer, progress=..., wait_projection=...) -> folder``
ExplainStep = Callable[..., Path]
_START = "start"  # the parent's first message: the networks are trained and saved


def can_explain_alongside(device: str, threads: int | None) -> bool:
    """True when a forked child can explain alongside: ``fork`` exists, the second process is
    not switched off (``PERMAPLUG_BACKGROUND=0``), the networks run on the CPU (a CUDA context
    does not survive a fork) with one torch thread (an OpenMP pool of several threads may
    deadlock in a forked child)."""
    if os.environ.get("PERMAPLUG_BACKGROUND", "1") == "0":
        return False
    if "fork" not in mp.get_all_start_methods() or device != "cpu":
        return False
    return int(threads or 1) == 1


def _child(step: ExplainStep, run_dir: Path, explainer: str, prepare: Callable[[], Any] | None,
           inbox: Any, outbox: Any) -> None:
    """Child side: ``prepare()``, wait for the start, explain, waiting for the projection's
    message before the scenario windows; send ``("ok", folder)`` or ``("error", first line)``."""
    import dask

    # the parent's dask thread pool has no threads in this copy: compute in this thread
    dask.config.set(scheduler="synchronous")

    def receive() -> Any:
        try:
            return inbox.recv()
        except EOFError:  # the parent stopped: nothing more to wait for
            raise SystemExit(1) from None

    if prepare is not None:
        # a failure here is met (and reported) by the step itself
        with contextlib.suppress(Exception):
            prepare()
    if receive() != _START:  # not started (the parent stops the child)
        raise SystemExit(1)
    wait_projection = receive
    try:
        out = ("ok", str(step(run_dir, explainer, progress=False,
                              wait_projection=wait_projection)))
    except BaseException as exc:  # noqa: BLE001 - reported; the parent explains again itself
        out = ("error", f"{type(exc).__name__}: {exc}".splitlines()[0])
    outbox.send(out)


class ExplainAlongside:
    """``step(run_dir, explainer, progress=False, wait_projection=...)`` in a forked child.

    The child runs ``prepare()`` (if given) at once, then waits: :meth:`start` says the
    networks of ``run_dir`` are saved. Tell the child where the projection's scenario inputs
    are with :meth:`projection_inputs` (or that there are none: :meth:`no_projection`);
    :meth:`result` (which starts a child not started yet) waits for the child and returns the
    explanation folder, or None when the child failed or was stopped (the caller then explains
    in its own process). :meth:`close` stops a child still running.
    """

    def __init__(self, step: ExplainStep, run_dir: Path, explainer: str = "shap",
                 prepare: Callable[[], Any] | None = None) -> None:
        import torch

        if torch.get_num_threads() != 1:  # see can_explain_alongside
            raise RuntimeError(f"torch uses {torch.get_num_threads()} threads: not forked")
        ctx = mp.get_context("fork")
        inbox, self._to_child = ctx.Pipe(duplex=False)
        self._from_child, outbox = ctx.Pipe(duplex=False)
        self._started = self._told = False
        self._proc = ctx.Process(target=_child, args=(step, Path(run_dir), explainer, prepare,
                                                      inbox, outbox),
                                 daemon=True, name="permaplug-explain")
        self._proc.start()
        inbox.close()
        outbox.close()  # the parent keeps only its ends: a dead child means EOF, not a hang
        self.error: str | None = None

    def _send(self, message: Any) -> None:
        try:
            self._to_child.send(message)
        except (OSError, ValueError):  # the child is gone: result() says so
            pass

    def start(self) -> None:
        """The networks of the run folder are trained and saved: the child explains them."""
        if not self._started:
            self._started = True
            self._send(_START)

    def _tell(self, message: Any) -> None:
        self.start()
        if not self._told:
            self._told = True
            self._send(message)

    def projection_inputs(self, folder: Path, pair: tuple[str, str] | None) -> None:
        """The projection ``folder`` has stored its scenario inputs; ``pair``: its scenario
        pair (written to its ``summary.json`` only at the end)."""
        self._tell((Path(folder).name, tuple(pair) if pair else None))

    def no_projection(self) -> None:
        """No fresh projection: the child looks up the run's projections itself."""
        self._tell(None)

    def result(self) -> Path | None:
        """The explanation folder, or None (:attr:`error` says why) when the child failed."""
        self.no_projection()  # a projection that never reached its inputs
        try:
            status, value = self._from_child.recv()
        except (EOFError, OSError):
            status, value = "error", f"exit code {self._proc.exitcode}"
        finally:
            self.close()
        if status == "ok":
            return Path(value)
        self.error = str(value)
        return None

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)
        for conn in (self._to_child, self._from_child):
            conn.close()
