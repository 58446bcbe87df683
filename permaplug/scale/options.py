"""The ``--dask-scheduler [ADDRESS]`` option shared by ``permaplug data build`` and ``run``."""
from __future__ import annotations

import click

from permaplug.scale.distributed import LOCAL

dask_scheduler_option = click.option(
    "--dask-scheduler", "dask_scheduler", is_flag=False, flag_value=LOCAL, default=None,
    metavar="[ADDRESS]",
    help="Run the dask work (table building, bias correction) on a dask.distributed "
         "cluster: alone or 'local' = a LocalCluster on this machine; or a scheduler address "
         "(tcp://host:8786) or scheduler JSON file.",
)
