"""Distributed data-parallel training under ``torchrun`` (gloo on CPU, nccl on GPU).

Launch::

    torchrun --nproc_per_node 2 -m permaplug run --spatial grid --model gru ...

Every rank builds the same table and window index; each global batch (the same shuffled order
on every rank, seeded by ``(seed, epoch)``) is split across ranks, and DDP averages the
gradients. Each rank's loss is its sum of squared errors divided by the number of values in the
*global* batch times the world size, so the averaged gradient equals the single-process gradient
of the same batch: ``torchrun --nproc_per_node N`` trains the same model as one process, up to
floating-point rounding (tests/test_scale_ddp.py). Only rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from permaplug.core.errors import ConfigError, DataError
from permaplug.core.model import Model
from permaplug.training.windows import WindowSet

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a torchrun job: ``rank`` of ``world_size`` processes.

    ``world_size == 1`` (no torchrun) means plain single-process training.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"

    @property
    def active(self) -> bool:
        """True when running as one of several torchrun processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints."""
        return self.rank == 0

    def device(self, requested: str = "cpu") -> torch.device:
        """``cuda:<local_rank>`` with nccl, else the CPU."""
        if self.backend == "nccl" and requested in ("cuda", "auto"):
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, device: str = "cpu") -> DistContext:
        """Read torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; backend nccl only for
        ``device`` cuda/auto with CUDA present, else gloo. ConfigError on malformed values."""
        env = dict(os.environ if env is None else env)
        if "WORLD_SIZE" not in env:
            return cls()
        try:
            rank, world, local = (int(env.get(k, "0")) for k in ENV_VARS)
        except ValueError:
            raise ConfigError("torchrun environment: RANK, WORLD_SIZE and LOCAL_RANK must be "
                              "integers") from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"torchrun environment: RANK={rank} outside WORLD_SIZE={world}")
        use_cuda = device in ("cuda", "auto") and torch.cuda.is_available()
        return cls(rank, world, local, "nccl" if use_cuda else "gloo")


_current = DistContext()


def current_context() -> DistContext:
    """The context set by :func:`ddp_session` (single process outside one)."""
    return _current


@contextlib.contextmanager
def ddp_session(device: str = "cpu", env: dict[str, str] | None = None
                ) -> Iterator[DistContext]:
    """Join torchrun's process group for the duration (no-op without torchrun).

    Initialises ``torch.distributed`` from the environment (``MASTER_ADDR``/``MASTER_PORT`` set
    by torchrun) and destroys the group on exit.
    """
    global _current
    ctx = DistContext.from_env(env, device)
    if not ctx.active:
        yield ctx
        return
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend=ctx.backend, rank=ctx.rank, world_size=ctx.world_size)
    if ctx.backend == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    previous, _current = _current, ctx
    try:
        yield ctx
    finally:
        _current = previous
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def wrap_model(model: Model, ctx: DistContext) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel (the model itself when not distributed)."""
    if not ctx.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if ctx.backend == "nccl":
        return DDP(model, device_ids=[ctx.local_rank])
    return DDP(model)


def shard(rows: torch.Tensor, ctx: DistContext) -> tuple[torch.Tensor, float]:
    """This rank's part of one global batch ``rows`` and the weight of its loss.

    Rank ``r`` takes ``rows[r::world]``. A rank left without rows (a last batch smaller than
    the world) reuses the first row with weight 0, so every rank still takes part in the
    gradient all-reduce.
    """
    part = rows[ctx.rank::ctx.world_size]
    if len(part) == 0:
        return rows[:1], 0.0
    return part, 1.0


def distributed_sampler(n: int, seed: int, epoch: int, ctx: DistContext) -> torch.Tensor:
    """The window order of ``epoch``: one permutation of ``range(n)``, identical on every rank
    (seeded by ``(seed, epoch)``), as the single-process loop draws it."""
    from permaplug.training.loop import _epoch_seed

    gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
    return torch.randperm(n, generator=gen)


def all_reduce_sum(value: float | torch.Tensor, ctx: DistContext) -> float:
    """Sum of ``value`` over all ranks (``value`` itself when not distributed)."""
    if not ctx.active:
        return float(value)
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def all_reduce_mean(value: float | torch.Tensor, ctx: DistContext) -> float:
    """Mean of ``value`` over all ranks."""
    return all_reduce_sum(value, ctx) / ctx.world_size


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()


def train_model_ddp(model: Model, train: WindowSet, cfg, val: WindowSet | None = None,
                    checkpoint_dir: Path | None = None, resume: bool = False,
                    progress: bool = True, label: str = "",
                    ctx: DistContext | None = None):
    """Train ``model`` in place with DistributedDataParallel; returns the loss ``History``.

    Same contract as :func:`permaplug.training.loop.train_model` (``cfg`` a ``TrainConfig``:
    seeded order, learning-rate schedule, validation and early stopping; ``state.pt`` written
    after every epoch, by rank 0 only). ``--resume`` is not supported under torchrun.
    """
    from permaplug.training.loop import EpochTracker, _epoch_seed, epoch_lr

    ctx = ctx or current_context()
    if len(train) == 0:
        raise DataError("no training windows: check --train-years against the table's time span")
    if cfg.early_stopping and (val is None or len(val) == 0):
        raise ConfigError("--early-stopping needs a validation split (--val-fraction > 0)")
    if resume:
        raise ConfigError("--resume is not supported under torchrun; resume in one process")
    device = ctx.device(cfg.device)
    model.to(device)
    epoch_lr(cfg, 0)
    net = wrap_model(model, ctx)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state_path = checkpoint_dir / "state.pt" if checkpoint_dir and ctx.is_main else None
    track = EpochTracker(cfg, state_path=state_path)
    n = len(train)
    bar = tqdm(range(cfg.epochs), total=cfg.epochs, disable=not (progress and ctx.is_main),
               desc=f"{label or model.name} (rank 0 of {ctx.world_size})", unit="epoch",
               leave=False)
    for epoch in bar:
        net.train()
        order = distributed_sampler(n, cfg.seed, epoch, ctx)
        torch.manual_seed(_epoch_seed(cfg.seed, epoch) + 1 + ctx.rank)  # dropout
        for group in opt.param_groups:
            group["lr"] = epoch_lr(cfg, epoch)
        sse = 0.0
        for s in range(0, n, cfg.batch_size):
            rows = order[s : s + cfg.batch_size]
            mine, weight = shard(rows, ctx)
            x, band, static, y = train.batch(mine)
            opt.zero_grad(set_to_none=True)
            pred = net(x.to(device), band.to(device), static.to(device))
            err = torch.nn.functional.mse_loss(pred, y.to(device), reduction="sum") * weight
            # DDP averages over ranks: scale so the average is the global batch's mean loss
            loss = err * ctx.world_size / (len(rows) * y.shape[1])
            loss.backward()
            opt.step()
            sse += float(err.detach())
        track.history.train.append(all_reduce_sum(sse, ctx) / (n * train.target.shape[-1]))
        # validation uses the same weights on every rank; only rank 0 writes the state
        if track.end_epoch(model, opt, epoch, val, device, bar):
            break
    bar.close()
    return track.finish(model)
