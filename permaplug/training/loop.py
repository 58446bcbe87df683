"""The training loop: Adam on MSE in normalised units, seeded, checkpointed every epoch.

Target layers that were not observed (NaN) are masked out of the loss (:func:`masked_mse`).

Determinism: the model is initialised after ``torch.manual_seed(seed)``; each epoch's shuffle
and dropout draw from generators seeded by ``(seed, epoch)``, so an interrupted run resumed
from its last epoch checkpoint continues exactly as if it had never stopped.

Distributed training (torchrun) is a context of the same loop (:mod:`permaplug.training.ddp`):
it wraps the model in DDP, gives each rank its share of every batch and scales the loss; at
world size 1 it does nothing.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from permaplug.core import progress as bars
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import ConfigError, DataError
from permaplug.core.model import Model
from permaplug.training.ddp import DistContext, current_context
from permaplug.training.windows import WindowSet

STATE_FILE = "state.pt"


@dataclass
class TrainConfig:
    """Optimisation settings (paper: Adam, MSE, 50 epochs)."""

    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    early_stopping: int = 0  # patience in epochs on the validation loss; 0 = off
    weight_decay: float = 0.0  # Adam's L2 penalty
    lr_schedule: str = "cosine"  # constant | cosine (per epoch, from lr down to lr / 100)


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (0-based): a pure function of the epoch, so resuming needs no
    scheduler state."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        floor = cfg.lr / 100
        return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1)))
    raise ConfigError(f"lr_schedule {cfg.lr_schedule!r}: choose constant or cosine")


@dataclass
class History:
    """Mean training (and validation) loss of each epoch, normalised MSE."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return {"train": self.train, "val": self.val, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early}


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (cuda when present)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: choose cpu, cuda or auto")
    return torch.device(device)


def configure_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads (default 1); returns the number set.

    The networks are small (4e4-1e5 parameters, batches of 32 windows of 24 months): on CPU one
    thread is fastest, and measured 3-30x faster than two threads on a shared 2-core machine
    (benchmarks/RESULTS.md). Set ``threads`` in the run configuration to change it.
    """
    n = max(1, int(n or 1))
    torch.set_num_threads(n)
    return n


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of ``epoch``'s shuffle (and, plus 1 plus the rank, of its dropout)."""
    return (seed * 1_000_003 + epoch * 7919 + 12345) % (2**63 - 1)


def masked_mse(pred: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """MSE of ``pred`` against ``y`` ``[B, L]`` over the observed (finite) entries of ``y`` only.

    A target layer that was not observed (NaN, e.g. a station without a sensor in that layer)
    adds nothing to the loss or its gradient. Without missing entries this is exactly
    :func:`torch.nn.functional.mse_loss`. ``reduction``: ``mean`` (over observed entries) or
    ``sum``.
    """
    ok = torch.isfinite(y)
    if bool(ok.all()):
        return torch.nn.functional.mse_loss(pred, y, reduction=reduction)
    diff = torch.where(ok, pred - torch.where(ok, y, 0.0), 0.0)
    total = (diff**2).sum()
    return total if reduction == "sum" else total / ok.sum().clamp(min=1)


def evaluate_loss(model: Model, data: WindowSet, batch_size: int, device: torch.device) -> float:
    """Mean MSE (normalised units) of ``model`` over every window of ``data``."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), max(batch_size, 256)):
            x, band, static, y = data.batch(slice(start, start + max(batch_size, 256)))
            pred = model(x.to(device), band.to(device), static.to(device))
            total += float(masked_mse(pred, y.to(device), reduction="sum"))
            n += int(torch.isfinite(y).sum())
    return total / max(n, 1)


@dataclass
class EpochTracker:
    """What the loop does after each epoch's updates: the validation loss, early stopping with
    the best weights kept, and the resumable state (``state_path`` None: not written)."""

    cfg: TrainConfig
    history: History = field(default_factory=History)
    state_path: Path | None = None
    best_val: float = math.inf
    bad: int = 0
    best_state: dict | None = None

    def end_epoch(self, model: Model, opt: torch.optim.Optimizer, epoch: int,
                  val: WindowSet | None, device: torch.device, bar) -> bool:
        """Record the epoch (``history.train`` already holds its loss); True = stop early."""
        postfix = {"loss": f"{self.history.train[-1]:.4f}"}
        if val is not None and len(val):
            v = evaluate_loss(model, val, self.cfg.batch_size, device)
            self.history.val.append(v)
            postfix["val"] = f"{v:.4f}"
            if v < self.best_val:
                self.best_val, self.bad, self.history.best_epoch = v, 0, epoch
                self.best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                self.bad += 1
        bar.set_postfix(postfix)
        if self.state_path is not None:
            h = self.history
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                     "train": h.train, "val": h.val, "best_epoch": h.best_epoch,
                     "best_val": self.best_val, "bad_epochs": self.bad}
            if self.best_state is not None:
                state["best"] = self.best_state
            with atomic_path(self.state_path) as tmp:
                torch.save(state, tmp)
        if self.cfg.early_stopping and self.bad >= self.cfg.early_stopping:
            self.history.stopped_early = True
            return True
        return False

    def finish(self, model: Model) -> History:
        """Restore the best weights (early stopping), put ``model`` in eval mode."""
        if self.cfg.early_stopping and self.best_state is not None:
            model.load_state_dict(self.best_state)
        if not self.history.val:
            self.history.best_epoch = len(self.history.train) - 1
        model.eval()
        return self.history


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam over ``net``'s parameters, updating them all with one call per operation
    (``foreach``: what PyTorch does by default on CUDA; on the CPU it runs the per-parameter
    loop otherwise). The same arithmetic: weights equal bit for bit either way (tested); one
    epoch of the paper's TCN ~6 % faster on one CPU thread."""
    return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            foreach=True)


def train_model(model: Model, train: WindowSet, cfg: TrainConfig, val: WindowSet | None = None,
                checkpoint_dir: Path | None = None, resume: bool = False,
                progress: bool = True, label: str = "",
                dist: DistContext | None = None) -> History:
    """Train ``model`` in place on ``train``; returns the loss history.

    With ``checkpoint_dir``, ``state.pt`` (model and optimiser state, epoch, history) is
    rewritten atomically after every epoch; ``resume`` continues from it. With ``val`` and
    ``cfg.early_stopping`` > 0, training stops after that many epochs without a better
    validation loss and the best epoch's weights are restored. ``dist`` (default: the
    torchrun context of :func:`permaplug.training.ddp.ddp_session`, world size 1 outside one)
    makes this a DistributedDataParallel loop: each rank trains on its share of every batch
    and only rank 0 writes ``state.pt``.
    """
    dist = dist or current_context()
    if len(train) == 0:
        raise DataError("no training windows: check --train-years against the table's time span")
    if cfg.early_stopping and (val is None or len(val) == 0):
        raise ConfigError("--early-stopping needs a validation split (--val-fraction > 0)")
    if resume and dist.active:
        raise ConfigError("--resume is not supported under torchrun; resume in one process")
    device = dist.device(cfg.device) if dist.active else resolve_device(cfg.device)
    model.to(device)
    epoch_lr(cfg, 0)  # validates the schedule name
    net = dist.wrap(model)
    opt = make_optimizer(net, cfg)
    state_path = checkpoint_dir / STATE_FILE if checkpoint_dir and dist.is_main else None
    track, start = EpochTracker(cfg, state_path=state_path), 0
    if resume and state_path is not None and state_path.exists():
        start = _restore(state_path, model, opt, track, device)
    n = len(train)
    desc = (label or model.name) + (f" (rank 0 of {dist.world_size})" if dist.active else "")
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs,
               disable=bars.disabled(progress and dist.is_main), desc=desc, unit="epoch",
               leave=False)
    for epoch in bar:
        net.train()
        gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        torch.manual_seed(epoch_seed(cfg.seed, epoch) + 1 + dist.rank)  # dropout
        order = torch.randperm(n, generator=gen)  # the same on every rank
        for group in opt.param_groups:
            group["lr"] = epoch_lr(cfg, epoch)
        total = 0.0
        for s in range(0, n, cfg.batch_size):
            rows = order[s : s + cfg.batch_size]
            mine, weight = dist.shard(rows)
            x, band, static, y = train.batch(mine)
            opt.zero_grad(set_to_none=True)
            loss = masked_mse(net(x.to(device), band.to(device), static.to(device)),
                              y.to(device))
            scale = dist.loss_scale(len(mine), len(rows), weight)
            (loss if scale == 1.0 else loss * scale).backward()
            opt.step()
            total += float(loss.detach()) * len(y) * weight
        track.history.train.append(dist.all_reduce_sum(total) / n)
        # validation uses the same weights on every rank; only rank 0 writes the state
        if track.end_epoch(model, opt, epoch, val, device, bar):
            break
    bar.close()
    return track.finish(model)


def _restore(state_path: Path, model: Model, opt: torch.optim.Optimizer, track: EpochTracker,
             device: torch.device) -> int:
    """Load ``state.pt`` into ``model``, ``opt`` and ``track``; returns the next epoch."""
    try:
        state = torch.load(state_path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError (pickled code), corrupt file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{state_path}: refused by torch.load(weights_only=True): {first}"
                        ) from None
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        track.history = History(list(state["train"]), list(state["val"]),
                                int(state["best_epoch"]))
        track.best_val = float(state["best_val"])
        track.bad = int(state["bad_epochs"])
        track.best_state = state.get("best")
        return int(state["epoch"]) + 1
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{state_path}: not a permaplug training state "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                        ) from None


def remove_state(checkpoint_dir: Path) -> None:
    """Drop the per-epoch training state once the final checkpoint is written."""
    with contextlib.suppress(FileNotFoundError):
        (checkpoint_dir / STATE_FILE).unlink()
