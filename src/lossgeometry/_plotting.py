"""What every ``Result.plot`` shares: the ``ax`` argument, panels, deprecated spellings.

Convention (``docs/design.md``, Conventions): ``plot(ax=None, *, ...)`` draws on the given Axes,
or on a new figure when ``ax`` is ``None``, and returns the Axes. A result drawn on several
panels takes ``ax`` as a sequence of that many Axes (any shape, e.g. the array of
``plt.subplots(2, 2)``, read in row-major order) or ``None``, and returns the Figure.
matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossgeometry._compat import warn_deprecated

__all__ = ["PlotAxesError", "axes_or_new", "panels", "renamed_axes"]


class PlotAxesError(TypeError, ValueError):
    """``ax`` is not what the plot draws on (one Axes, or a sequence of the right length).

    Both a ``TypeError`` and a ``ValueError``, so either ``except`` catches it.
    """


def axes_or_new(ax: Any, figsize: tuple[float, float]) -> Any:
    """``ax`` itself, or the Axes of a new figure of ``figsize`` when ``ax`` is None."""
    if ax is not None:
        if isinstance(ax, (list, tuple)) or not hasattr(ax, "plot"):
            raise PlotAxesError(
                f"ax must be one matplotlib Axes or None, got {type(ax).__name__} (plot's "
                "first argument is ax; pass the other arguments by keyword)"
            )
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def panels(
    ax: Any,
    count: int,
    figsize: tuple[float, float],
    *,
    nrows: int = 1,
    ncols: int | None = None,
    fig: Any = None,
    owner: str = "plot",
) -> tuple[Any, list[Any], bool]:
    """The figure and ``count`` Axes of a multi-panel plot.

    Args:
        ax: ``None`` (a new figure with an ``nrows × ncols`` grid, one row by default) or a
            sequence (any shape) of ``count`` matplotlib Axes.
        count: the number of panels.
        figsize: size of a new figure.
        nrows: rows of the grid of a new figure.
        ncols: columns of that grid (default ``⌈count / nrows⌉``).
        fig: the deprecated ``plot(fig=...)`` style: panels are added to this figure (with a
            DeprecationWarning); not together with ``ax``.
        owner: the method's name for the messages (``"PLStarCertificate.plot"``).

    Returns:
        ``(figure, axes, own_layout)``; ``own_layout`` is True when the figure was made here
        (or given as ``fig``), so the caller may lay it out (``tight_layout``).

    Raises:
        PlotAxesError: ``ax`` is not ``count`` Axes, or both ``ax`` and ``fig`` are given.
    """
    ncols = ncols or -(-count // nrows)
    if fig is not None:
        if ax is not None:
            raise PlotAxesError(f"{owner}: pass ax= (a sequence of {count} Axes) or fig=, not both")
        warn_deprecated(
            f"{owner}(fig=...) is deprecated and will stop working in the next release; pass "
            f"ax=fig.subplots({nrows}, {ncols}) (a sequence of {count} Axes) instead",
            stacklevel=4,
        )
        grid = fig.subplots(nrows, ncols)
        return fig, list(np.asarray(grid, dtype=object).reshape(-1))[:count], True
    if ax is None:
        import matplotlib.pyplot as plt

        new = plt.figure(figsize=figsize)
        grid = new.subplots(nrows, ncols)
        return new, list(np.asarray(grid, dtype=object).reshape(-1))[:count], True
    flat = list(np.asarray(ax, dtype=object).reshape(-1))
    if len(flat) != count or not all(hasattr(a, "figure") for a in flat):
        raise PlotAxesError(
            f"{owner} draws {count} panels: pass ax as a sequence of {count} matplotlib Axes "
            f"(e.g. plt.subplots({nrows}, {ncols})[1]) or None for a new figure, got {ax!r}"
        )
    return flat[0].figure, flat, False


def renamed_axes(ax: Any, axes: Any, owner: str) -> Any:
    """Accept the old keyword ``axes=`` for ``ax=``, with a :class:`DeprecationWarning`."""
    if axes is None:
        return ax
    if ax is not None:
        raise TypeError(f"{owner}.plot got both ax and axes; pass ax only")
    warn_deprecated(f"{owner}.plot(axes=...) is deprecated: pass ax=... (the same Axes)")
    return axes
