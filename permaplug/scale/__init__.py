"""Gridded mode and scale-out (issue 8): dask clusters, DistributedDataParallel, chunked work.

* :mod:`.distributed` -- ``dask_client(address)``: a dask.distributed client (LocalCluster by
  default, or a running scheduler) for data building, correction and inference;
* :mod:`.launch` -- joins torchrun's process group (the DDP context of the one training loop,
  :mod:`permaplug.training.ddp`) and opens the ``--dask-scheduler`` client;
* :mod:`.cells` -- chunking a gridded table along ``cell`` and mapping coarse scenario grids
  onto the table's cells;
* :mod:`.inference` -- chunked inference over cells written incrementally to Zarr or NetCDF;
* :mod:`.correction` -- bias correction per spatial chunk (xsdba on dask).
"""
