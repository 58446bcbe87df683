"""A dask.distributed client for data building, correction and inference.

``dask_client(None)`` (or ``"local"``) starts a :class:`distributed.LocalCluster` on this
machine and closes it on exit; any other address (``tcp://host:8786``, ``scheduler.json``
file) connects to a running scheduler, e.g. one started by ``dask scheduler`` / ``dask worker``
or dask-jobqueue on a cluster. While the context is open, every dask computation (``.load()``,
``.compute()``, ``to_netcdf``, ``to_zarr``) runs on that cluster.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from permaplug.core.errors import ConfigError, NotAvailableError

LOCAL = "local"
"""Address meaning "a LocalCluster on this machine" (the default of ``--dask-scheduler``)."""


def _distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - distributed is a test dependency
        raise NotAvailableError("--dask-scheduler needs the 'distributed' package "
                                "(pip install 'permaplug[dist]')") from None
    return distributed


def local_workers(n_workers: int | None = None) -> int:
    """Workers of a LocalCluster: ``n_workers`` or one per CPU core (at most 8)."""
    if n_workers is not None:
        if n_workers < 1:
            raise ConfigError(f"--dask-workers {n_workers}: need at least 1 worker")
        return n_workers
    return max(1, min(os.cpu_count() or 1, 8))


@contextlib.contextmanager
def dask_client(address: str | None = None, n_workers: int | None = None,
                processes: bool = False, memory_limit: str | None = "auto",
                timeout: float | str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: a LocalCluster when ``address`` is None or ``"local"``.

    LocalCluster: ``n_workers`` workers (default one per core) with one thread each,
    in threads of this process (``processes=False``, cheap to start) or in worker processes;
    no dashboard. Remote: ``address`` is a scheduler address (``tcp://...``) or a scheduler
    JSON file. Everything started here is closed on exit. ConfigError when the scheduler cannot
    be reached within ``timeout`` (default: dask's ``distributed.comm.timeouts.connect``).
    """
    dist = _distributed()
    if address in (None, "", LOCAL):
        cluster = dist.LocalCluster(n_workers=local_workers(n_workers), threads_per_worker=1,
                                    processes=processes, dashboard_address=None,
                                    memory_limit=memory_limit)
        client = dist.Client(cluster, set_as_default=True)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if timeout is None:
        import dask

        timeout = dask.config.get("distributed.comm.timeouts.connect")
    kwargs: dict[str, Any] = {"timeout": timeout, "set_as_default": True}
    if str(address).endswith(".json"):
        if not Path(address).exists():
            raise ConfigError(f"--dask-scheduler {address}: scheduler file not found")
        kwargs["scheduler_file"] = str(address)
        target = None
    else:
        target = str(address)
    try:
        client = dist.Client(target, **kwargs)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--dask-scheduler {address}: cannot connect to the dask scheduler "
                          f"({type(exc).__name__}: {exc})") from None
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def maybe_dask_client(address: str | None, echo=None, **kwargs: Any) -> Iterator[Any]:
    """:func:`dask_client` when ``address`` is given (``"local"`` = LocalCluster), else nothing
    (dask's default threaded scheduler). Echoes where the work runs when ``echo`` is given."""
    if address is None:
        yield None
        return
    with dask_client(address, **kwargs) as client:
        if echo is not None:
            echo(f"dask: {describe(client)}")
        yield client


def describe(client: Any) -> str:
    """One line: scheduler address, number of workers and threads."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
    return f"scheduler {info.get('address', '?')}, {len(workers)} workers, {threads} threads"
