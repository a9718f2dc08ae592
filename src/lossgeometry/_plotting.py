"""What every ``Result.plot`` shares: the ``ax`` argument and the deprecated ``axes=``.

The convention (docs/design.md): ``plot(ax=None, *, ...)`` draws on the given Axes, or on a
new figure when ``ax`` is ``None``, and returns the Axes. A result drawn on several panels
takes ``ax`` as a sequence of that many Axes (any shape, e.g. the array of
``plt.subplots(2, 2)``, read in row-major order) or ``None``, and returns the Figure.
matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["new_or_given", "panels", "renamed_axes"]


def new_or_given(ax: Any, figsize: tuple[float, float]) -> Any:
    """``ax`` itself, or the Axes of a new figure of size ``figsize`` when ``ax`` is ``None``."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def panels(
    ax: Any, n: int, *, nrows: int, ncols: int, figsize: tuple[float, float], owner: str
) -> tuple[Any, list[Any]]:
    """The Figure and ``n`` Axes to draw on: those given (``n`` of them) or a new grid.

    Raises:
        ValueError: ``ax`` is not a sequence of exactly ``n`` Axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(nrows, ncols, figsize=figsize)
        return fig, list(np.asarray(grid, dtype=object).reshape(-1))
    flat = list(np.asarray(ax, dtype=object).reshape(-1))
    if len(flat) != n or not all(hasattr(a, "figure") for a in flat):
        raise ValueError(
            f"{owner}.plot draws {n} panels: pass ax as a sequence of {n} matplotlib Axes "
            f"(e.g. plt.subplots({nrows}, {ncols})[1]) or None, got {ax!r}"
        )
    return flat[0].figure, flat


def renamed_axes(ax: Any, axes: Any, owner: str) -> Any:
    """Accept the old keyword ``axes=`` for ``ax=``, with a :class:`DeprecationWarning`."""
    if axes is None:
        return ax
    if ax is not None:
        raise TypeError(f"{owner}.plot got both ax and axes; pass ax only")
    warnings.warn(
        f"{owner}.plot(axes=...) is deprecated: pass ax=... (the same Axes)",
        DeprecationWarning,
        stacklevel=3,
    )
    return axes
