"""Checks every Result of the measurement packages must pass: summary, plot data, round trip.

* :func:`check_summary`: ``summary()`` is a flat dict of scalars (numbers, bools, short strings,
  ``None``) with exactly the expected keys and values (the test states them from the fields).
* :func:`check_roundtrip`: save/load gives the same class, the same ``to_dict()`` and the same
  ``summary()``.
* :func:`plotted` and :func:`new_plot`: the Axes a ``plot`` drew on, for reading its data back.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np

import lossgeometry as lg

matplotlib.use("Agg")

SCALARS = (bool, int, float, str, type(None), np.bool_, np.integer, np.floating)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b)


def check_summary(result: lg.Result, expected: dict[str, Any]) -> dict[str, Any]:
    """``result.summary()`` equals ``expected`` (same keys, same values; NaN equals NaN)."""
    s = result.summary()
    assert isinstance(s, dict)
    assert set(s) == set(expected), (sorted(set(s) - set(expected)), sorted(set(expected) - set(s)))
    for k, v in s.items():
        assert isinstance(v, SCALARS), f"{k}: {type(v).__name__} is not a scalar"
        if isinstance(v, str):
            assert len(v) <= 40, f"{k}: {v!r} is not a short string"
        assert _same(v, expected[k]), f"{k}: {v!r} != {expected[k]!r}"
    return s


def _canon(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _canon(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_canon(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


def check_roundtrip(result: lg.Result, tmp_path: Any, name: str = "r.json") -> lg.Result:
    """Save, load (by the file's type), and compare the dicts and the summaries."""
    path = result.save(tmp_path / name)
    back = lg.load_result(path)
    assert type(back) is type(result)
    assert _canon(back.to_dict()) == _canon(result.to_dict())
    if hasattr(result, "summary"):
        assert _canon(back.summary()) == _canon(result.summary())
    return back


def new_axes() -> Any:
    """A fresh Axes on its own figure."""
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def close_all() -> None:
    import matplotlib.pyplot as plt

    plt.close("all")


def bar_heights(ax: Any) -> list[float]:
    """Heights of the bars drawn on ``ax``, in drawing order."""
    return [float(p.get_height()) for c in ax.containers for p in c]
