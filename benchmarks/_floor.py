"""The floor of the training benchmarks: the loop anyone would write over pre-built windows."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch


def bare_epoch(model, x, band, static, y, order, batch_size, lr=1e-3,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """One epoch of Adam + MSE over pre-materialised window tensors ``x [N, W, F]``, ``band
    [N]``, ``static [N, S]``, ``y [N, 4]`` in ``order``; returns seconds on ``clock``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    t0 = clock()
    for s in range(0, len(order), batch_size):
        i = order[s : s + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x[i], band[i], static[i]), y[i])
        loss.backward()
        opt.step()
    return clock() - t0
