"""What an experiment is, and the decorator that registers one (``lossgeometry run CONFIG``).

An experiment is ``fn(cfg, out, full, progress) -> dict`` registered with :func:`experiment`;
its TOML config names it with a top-level ``experiment = "NAME"`` key. It writes figures and
``results.json`` into ``out`` and returns a JSON-able summary table. ``full=True`` runs the
paper-size grid instead of the laptop-size default.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ExperimentFn = Callable[[dict[str, Any], Path, bool, "bool | None"], dict[str, Any]]

EXPERIMENTS: dict[str, ExperimentFn] = {}


def experiment(name: str) -> Callable[[ExperimentFn], ExperimentFn]:
    """Register an experiment function under ``name``."""

    def deco(fn: ExperimentFn) -> ExperimentFn:
        EXPERIMENTS[name] = fn
        return fn

    return deco
