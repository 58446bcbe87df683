"""DistributedDataParallel under torchrun, a context of the one training loop: context,
sharding, and equality with one process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from permaplug.core.errors import ConfigError
from permaplug.training.config import RunConfig
from permaplug.training.ddp import DistContext
from permaplug.training.loop import TrainConfig, train_model
from permaplug.training.predict import predict_windows, window_set
from permaplug.training.runs import build_model, prepare

TESTS = Path(__file__).parent

WORKER = """
import json, sys
import torch
sys.path.insert(0, {tests!r})
from test_scale_ddp import train_once
from permaplug.training.ddp import ddp_session
torch.set_num_threads(1)
with ddp_session() as ctx:
    result = train_once(ctx)
    if ctx.is_main:
        result["world"] = ctx.world_size
        with open(sys.argv[1], "w") as f:
            json.dump(result, f)
"""


def train_once(dist: DistContext | None = None) -> dict:
    """Two epochs of a small GRU on the synthetic table through ``train_model`` in the context
    ``dist`` (None: the current one); loss history and test predictions."""
    from test_training_table import synthetic_table

    table = synthetic_table("2001-01", "2007-12", n_bands=6)
    cfg = RunConfig(models=["gru"], epochs=2, train_years=[2003, 2005], test_years=[2006, 2007],
                    hparams={"gru": {"hidden_size": 8, "num_layers": 1}}, batch_size=20)
    prep = prepare(table, cfg)
    model = build_model("gru", prep, cfg)
    train = window_set(prep.arrays, prep.normaliser, prep.train)
    tc = TrainConfig(epochs=2, batch_size=20, lr=1e-2, seed=0)
    hist = train_model(model, train, tc, progress=False, dist=dist)
    pred = predict_windows(model, prep.arrays, prep.normaliser, prep.test)
    return {"loss": hist.train, "pred": pred.tolist(), "n_train": len(train)}


def test_context_from_torchrun_environment():
    assert DistContext.from_env({}) == DistContext()
    assert not DistContext().active and DistContext().is_main
    ctx = DistContext.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.backend) == (1, 2, 1, "gloo")
    assert ctx.active and not ctx.is_main and ctx.device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="RANK=2 outside WORLD_SIZE=2"):
        DistContext.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="must be integers"):
        DistContext.from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_shard_splits_a_batch_and_keeps_empty_ranks_in_the_reduce():
    rows = torch.arange(5)
    a, wa = DistContext(0, 2).shard(rows)
    b, wb = DistContext(1, 2).shard(rows)
    assert a.tolist() == [0, 2, 4] and b.tolist() == [1, 3] and wa == wb == 1.0
    last, w = DistContext(1, 2).shard(torch.tensor([7]))
    assert last.tolist() == [7] and w == 0.0  # a stand-in row with zero weight
    # rank 0's 3 of 5 rows, averaged by DDP over 2 ranks, weigh 3/5 of the global batch
    assert DistContext(0, 2).loss_scale(3, 5, 1.0) / 2 == pytest.approx(3 / 5)
    assert DistContext(1, 2).loss_scale(1, 1, 0.0) == 0.0


def test_world_size_one_context_does_nothing():
    one, model, rows = DistContext(), torch.nn.Linear(2, 1), torch.arange(7)
    assert one.wrap(model) is model
    mine, weight = one.shard(rows)
    assert mine is rows and weight == 1.0
    assert one.loss_scale(7, 7, 1.0) == 1.0 and one.all_reduce_sum(2.5) == 2.5


# train_once() before the DDP loop became a context of train_model (commit 3b00bb9, the old
# single-process loop): the refactor must not change ordinary runs
BEFORE_LOSS = [0.9369175533453623, 0.4812169516528094]
BEFORE_PRED = [-19.454364776611328, -7.751893043518066, -7.085306167602539, -7.967155456542969]


def test_single_process_results_are_those_of_the_loop_before_the_refactor():
    torch.set_num_threads(1)
    implicit, explicit = train_once(), train_once(DistContext())
    assert explicit["loss"] == implicit["loss"] and explicit["pred"] == implicit["pred"]
    assert implicit["loss"] == pytest.approx(BEFORE_LOSS, rel=1e-9)
    np.testing.assert_allclose(np.ravel(implicit["pred"])[:4], BEFORE_PRED, atol=1e-6)


def test_resume_is_refused_under_torchrun(tmp_path):
    from test_training_table import synthetic_table

    table = synthetic_table("2001-01", "2004-12", n_bands=2)
    cfg = RunConfig(models=["gru"], epochs=1, train_years=[2003, 2003], test_years=[2004, 2004],
                    hparams={"gru": {"hidden_size": 4, "num_layers": 1}})
    prep = prepare(table, cfg)
    train = window_set(prep.arrays, prep.normaliser, prep.train)
    with pytest.raises(ConfigError, match="--resume is not supported under torchrun"):
        train_model(build_model("gru", prep, cfg), train, TrainConfig(epochs=1), resume=True,
                    checkpoint_dir=tmp_path, progress=False, dist=DistContext(0, 2))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent /
                    "torchrun").exists(), reason="torchrun not installed")
def test_torchrun_two_processes_match_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(TESTS)))
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29533",
                          str(script), str(tmp_path / "ddp.json")], capture_output=True,
                         text=True, env=env, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    torch.set_num_threads(1)
    one = train_once()
    assert ddp["world"] == 2
    np.testing.assert_allclose(ddp["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(ddp["pred"], one["pred"], atol=1e-3)  # degC
