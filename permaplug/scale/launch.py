"""Scale-out for ``permaplug run``: torchrun ranks and the ``--dask-scheduler`` client.

:func:`scale_out` is called at the start of the ``run`` command. It joins torchrun's process
group when launched under torchrun (:func:`permaplug.training.ddp.ddp_session`) and opens the dask
client of ``--dask-scheduler`` (:func:`permaplug.scale.distributed.maybe_dask_client`); both are
closed when the command ends (``click.Context.with_resource``). On a torchrun rank other than 0
it trains alongside rank 0 into a temporary folder (removed afterwards) and returns False: the
command then stops, so that only rank 0 writes the run folder and runs the projection,
explanation and report steps.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from permaplug.core.errors import ConfigError


def scale_out(ctx: click.Context, params: dict[str, Any],
              build_config: Callable[[click.Context, dict], tuple[Any, list[str]]]) -> bool:
    """Enter the scale-out contexts for the command; True when this process should go on
    with the normal command (single process, or torchrun rank 0)."""
    from permaplug.scale.distributed import maybe_dask_client
    from permaplug.training.ddp import ddp_session

    dist = ctx.with_resource(ddp_session(params.get("device") or "cpu"))
    if dist.active and params.get("resume"):
        raise ConfigError("--resume is not supported under torchrun; resume in one process")
    if dist.active and not dist.is_main:
        from permaplug.training.runs import execute_run

        cfg, _ = build_config(ctx, params)
        with tempfile.TemporaryDirectory(prefix=f"permaplug-rank{dist.rank}-") as tmp:
            execute_run(cfg, Path(tmp) / "run", progress=False, echo=lambda _: None,
                        mark_complete=False)
        return False
    if dist.active:
        click.echo(f"torchrun: rank 0 of {dist.world_size} ({dist.backend}); only this rank "
                   "writes")
    ctx.with_resource(maybe_dask_client(params.get("dask_scheduler"), echo=click.echo))
    return True
