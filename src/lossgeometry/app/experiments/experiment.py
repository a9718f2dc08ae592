"""What an experiment is, and the decorator that registers one (``lossgeometry run CONFIG``).

An experiment is ``fn(cfg, out, full, progress) -> dict`` registered with :func:`experiment`;
its TOML config names it with a top-level ``experiment = "NAME"`` key. It writes figures and
``results.json`` into ``out`` and returns a JSON-able summary table. ``full=True`` runs the
paper-size grid instead of the laptop-size default. Its TOML schema is an options dataclass
(:mod:`lossgeometry.app.experiments.options`), registered with it as ``options=``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lossgeometry.options import Options

ExperimentFn = Callable[[dict[str, Any], Path, bool, "bool | None"], dict[str, Any]]

EXPERIMENTS: dict[str, ExperimentFn] = {}

EXPERIMENT_OPTIONS: dict[str, type[Options]] = {}
"""The typed TOML schema of each registered experiment."""


def experiment(
    name: str, *, options: type[Options] | None = None
) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register an experiment function under ``name`` (with its config dataclass)."""

    def deco(fn: ExperimentFn) -> ExperimentFn:
        EXPERIMENTS[name] = fn
        if options is not None:
            EXPERIMENT_OPTIONS[name] = options
        return fn

    return deco
