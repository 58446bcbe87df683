"""DistributedDataParallel under torchrun: context, sharding, and equality with one process."""
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
from permaplug.scale.ddp import DistContext, distributed_sampler, shard, train_model_ddp
from permaplug.training.config import RunConfig
from permaplug.training.loop import TrainConfig, train_model
from permaplug.training.predict import predict_windows, window_set
from permaplug.training.runs import build_model, prepare

TESTS = Path(__file__).parent

WORKER = """
import json, sys
import torch
sys.path.insert(0, {tests!r})
from test_scale_ddp import train_once
from permaplug.scale.ddp import ddp_session
torch.set_num_threads(1)
with ddp_session() as ctx:
    result = train_once(ddp=ctx.active)
    if ctx.is_main:
        result["world"] = ctx.world_size
        with open(sys.argv[1], "w") as f:
            json.dump(result, f)
"""


def train_once(ddp: bool) -> dict:
    """Two epochs of a small GRU on the synthetic table; loss history and test predictions."""
    from test_training_table import synthetic_table

    table = synthetic_table("2001-01", "2007-12", n_bands=6)
    cfg = RunConfig(models=["gru"], epochs=2, train_years=[2003, 2005], test_years=[2006, 2007],
                    hparams={"gru": {"hidden_size": 8, "num_layers": 1}}, batch_size=20)
    prep = prepare(table, cfg)
    model = build_model("gru", prep, cfg)
    train = window_set(prep.arrays, prep.normaliser, prep.train)
    tc = TrainConfig(epochs=2, batch_size=20, lr=1e-2, seed=0)
    hist = (train_model_ddp if ddp else train_model)(model, train, tc, progress=False)
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
    a, wa = shard(rows, DistContext(0, 2))
    b, wb = shard(rows, DistContext(1, 2))
    assert a.tolist() == [0, 2, 4] and b.tolist() == [1, 3] and wa == wb == 1.0
    last, w = shard(torch.tensor([7]), DistContext(1, 2))
    assert last.tolist() == [7] and w == 0.0  # a stand-in row with zero weight
    # the order is the single-process loop's permutation, the same on every rank
    assert torch.equal(distributed_sampler(50, 3, 2, DistContext(0, 2)),
                       distributed_sampler(50, 3, 2, DistContext(1, 2)))


def test_ddp_loop_in_one_process_equals_the_plain_loop():
    torch.set_num_threads(1)
    plain, ddp = train_once(ddp=False), train_once(ddp=True)
    np.testing.assert_allclose(ddp["loss"], plain["loss"], rtol=1e-6)
    np.testing.assert_allclose(ddp["pred"], plain["pred"], atol=1e-5)
    assert plain["loss"][1] < plain["loss"][0]


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
    one = train_once(ddp=False)
    assert ddp["world"] == 2
    np.testing.assert_allclose(ddp["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(ddp["pred"], one["pred"], atol=1e-3)  # degC
