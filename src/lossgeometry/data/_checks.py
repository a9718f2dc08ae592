"""Argument checks shared by the built-in loaders (each error names the argument)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_split", "nonnegative_float", "positive_int"]


def check_split(split: str) -> str:
    """``split`` itself when it is ``"train"`` or ``"test"``, else a ValueError."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def positive_int(value: Any, what: str) -> int:
    """``value`` as an int when it is a positive integer (not a bool), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_float(value: Any, what: str) -> float:
    """``value`` as a float when it is finite and ``≥ 0``, else a ValueError."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a non-negative number, got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{what} must be a finite non-negative number, got {value!r}")
    return out
