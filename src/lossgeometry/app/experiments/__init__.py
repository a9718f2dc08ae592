"""Reproductions of the papers' experiments, one module each, driven by TOML configs.

Run with ``lossgeometry run CONFIG`` (a path or a bundled name, see ``lossgeometry run --list``).
"""

from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.registry import (
    available_experiments,
    bundled_configs,
    run_experiment,
)

__all__ = ["available_experiments", "bundled_configs", "experiment", "run_experiment"]
