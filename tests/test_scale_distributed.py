"""dask.distributed: a LocalCluster by default, a scheduler address otherwise."""
from __future__ import annotations

import dask.array as da
import pytest
from distributed import wait

from permaplug.core.errors import ConfigError
from permaplug.scale.distributed import dask_client, describe, local_workers, maybe_dask_client


def test_local_cluster_with_two_workers_runs_dask_work():
    with dask_client(None, n_workers=2) as client:
        info = client.scheduler_info()
        assert len(info["workers"]) == 2
        assert "2 workers, 2 threads" in describe(client)
        x = da.arange(10_000, chunks=1_000)
        assert int((x * 2).sum().compute()) == 2 * sum(range(10_000))  # on the cluster
        # results live on the cluster's workers
        y = (x + 1).persist()
        wait(y)
        assert sum(len(v) for v in client.has_what().values()) == 10
        assert int(y.sum().compute()) == sum(range(1, 10_001))
    assert client.status == "closed"


def test_maybe_client_is_a_no_op_without_an_address():
    lines = []
    with maybe_dask_client(None, echo=lines.append) as client:
        assert client is None
    assert lines == []


def test_an_unreachable_scheduler_is_one_clear_error():
    with (pytest.raises(ConfigError, match="--dask-scheduler tcp://127.0.0.1:9: cannot connect"),
          dask_client("tcp://127.0.0.1:9", timeout=1)):
        pass
    with (pytest.raises(ConfigError, match="scheduler file not found"),
          dask_client("/nonexistent/scheduler.json")):
        pass


def test_worker_count():
    assert local_workers(3) == 3
    assert 1 <= local_workers() <= 8
    with pytest.raises(ConfigError, match="at least 1 worker"):
        local_workers(0)
