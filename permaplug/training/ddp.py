"""The distributed context of the training loop: torchrun ranks (gloo on CPU, nccl on GPU).

Launch::

    torchrun --nproc_per_node 2 -m permaplug run --spatial grid --model gru ...

:func:`permaplug.training.loop.train_model` is the only training loop; it asks the
:class:`DistContext` (from :func:`current_context`, set by :func:`ddp_session`) for the model to
call (:meth:`DistContext.wrap`), this rank's share of each batch (:meth:`DistContext.shard`) and
the scale of its loss (:meth:`DistContext.loss_scale`). At world size 1 every one of these is the
identity, so one process trains exactly as without the context. Under torchrun every rank
builds the same table and window index; each global batch (the same shuffled order on every
rank, seeded by ``(seed, epoch)``) is split across ranks, and DDP averages the gradients. Each
rank's mean loss is scaled by its share of the global batch times the world size, so the
averaged gradient equals the single-process gradient of the same batch: ``torchrun
--nproc_per_node N`` trains the same model as one process, up to floating-point rounding
(tests/test_scale_ddp.py). Only rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from permaplug.core.errors import ConfigError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a torchrun job: ``rank`` of ``world_size`` processes.

    ``world_size == 1`` (no torchrun) means plain single-process training: every method below
    is then the identity.
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
        """``cuda:<local_rank>`` with nccl, else the CPU (only asked when :attr:`active`)."""
        if self.backend == "nccl" and requested in ("cuda", "auto"):
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` wrapped in DistributedDataParallel (``model`` itself at world size 1)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        if self.backend == "nccl":
            return DDP(model, device_ids=[self.local_rank])
        return DDP(model)

    def shard(self, rows: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's part of one global batch ``rows`` (window indices) and its weight.

        Rank ``r`` takes ``rows[r::world]``. A rank left without rows (a last batch smaller
        than the world) reuses the first row with weight 0, so every rank still takes part in
        the gradient all-reduce. At world size 1: ``(rows, 1.0)``.
        """
        if not self.active:
            return rows, 1.0
        part = rows[self.rank::self.world_size]
        if len(part) == 0:
            return rows[:1], 0.0
        return part, 1.0

    def loss_scale(self, n_mine: int, n_global: int, weight: float) -> float:
        """Factor on this rank's mean batch loss so that DDP's average over ranks is the mean
        loss of the global batch: ``weight * n_mine / n_global * world_size`` (1.0 at world
        size 1)."""
        if not self.active:
            return 1.0
        return weight * n_mine * self.world_size / n_global

    def all_reduce_sum(self, value: float | torch.Tensor) -> float:
        """Sum of ``value`` over all ranks (``value`` itself at world size 1)."""
        if not self.active:
            return float(value)
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item())

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
