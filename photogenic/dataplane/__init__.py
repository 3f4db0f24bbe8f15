"""The data plane: the per-row work of the data stages, as Ray Data pipelines.

- ``session``: a Ray for the stage: the cluster ``RAY_ADDRESS`` names, else a local Ray on
  this machine's (or this pod's) CPUs, started and stopped by the stage;
- ``pipeline``: a stage's work as steps over chunks of rows: cheap steps as Ray tasks, steps
  that hold a model as stateful actors (``map_batches`` with a callable class, an actor pool
  of 1 to ``workers``, ``num_gpus`` from the config); progress in rows/s;
- ``parts``: shards as the unit of output and of resume: one Parquet part per input shard,
  written atomically, reused by a restarted run with the same inputs and parameters.
"""
