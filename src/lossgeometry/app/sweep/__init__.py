"""Sweeps: run a grid of configurations, locally (default) or with Ray.

>>> import lossgeometry as lg
>>> config = {                                  # a dict or a TOML file, like `analyze`'s
...     "data": {"name": "digits", "n": 16, "one_hot": True},
...     "model": {"name": "mlp", "width": 8, "depth": 1},
...     "train": {"steps": 4, "record_every": 2},
...     "report": {"sections": ["problem", "training"]},
... }
>>> grid = {"model.width": [8, 16], "seed": [0, 1]}
>>> res = lg.sweep(config, grid, "sweeps/width", progress=False)
>>> [r.name for r in res.runs], res.ok
(['width=8,seed=0', 'width=8,seed=1', 'width=16,seed=0', 'width=16,seed=1'], True)
>>> res.rich_table().row_count                  # print it with rich: one row per run
4
>>> ax = res.plot(x="width", y="training.loss_final", logx=True)   # one line per seed
>>> [line.get_label() for line in ax.lines]
['seed=0', 'seed=1']
>>> seed0 = [r.metrics["training.loss_final"] for r in res.runs if r.params["seed"] == 0]
>>> list(ax.lines[0].get_ydata()) == seed0
True
>>> import matplotlib.pyplot as plt
>>> plt.close(ax.figure)
>>> lg.sweep(config, grid, "sweeps/width", progress=False).counts()["skipped"]   # resumes
4

Each grid point gets its own directory (``width=64,seed=0``) with the merged config, the
job's outputs and a ``done.json``; a second call skips finished runs and retries failed ones.
The command line is ``lossgeometry sweep`` (:mod:`lossgeometry.app.commands.sweep`).
``ray_address="auto"`` runs the points as Ray tasks on the cluster that ``ray start --head``
started, ``ranks_per_point=N`` each point as N torch.distributed ranks (Ray Train); what a
retry is there: :mod:`lossgeometry.app.sweep.ray_backend`.
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
