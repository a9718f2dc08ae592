"""Sweeps: run a grid of configurations, locally (default) or with Ray.

>>> import lossgeometry as lg
>>> grid = {"model.width": [64, 128], "seed": [0, 1]}
>>> res = lg.sweep("my.toml", grid, "sweeps/width")              # doctest: +SKIP
>>> res.rich_table()                                             # doctest: +SKIP
>>> res.plot(x="width", y="training.loss_final", logx=True)      # doctest: +SKIP

Each grid point gets its own directory (``width=64,seed=0``) with the merged config, the
job's outputs and a ``done.json``; a second call skips finished runs and retries failed ones.
The command line is ``lossgeometry sweep`` (:mod:`lossgeometry.app.commands.sweep`).
"""

from lossgeometry.app.sweep.core import sweep, threads_per_worker
from lossgeometry.app.sweep.grid import (
    check_grid,
    config_hash,
    expand_grid,
    load_base_config,
    run_name,
)
from lossgeometry.app.sweep.result import SweepResult, SweepRun

__all__ = [
    "SweepResult",
    "SweepRun",
    "check_grid",
    "config_hash",
    "expand_grid",
    "load_base_config",
    "run_name",
    "sweep",
    "threads_per_worker",
]
