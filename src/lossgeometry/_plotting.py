"""The Axes of a ``Result.plot(ax=None)``: one panel or several, new or given.

Convention (``docs/design.md``, Conventions): ``plot(ax=None, *, ...)`` draws on ``ax`` or on a
new figure. A single-panel plot takes one Axes and returns it; a plot with ``n`` panels takes a
sequence of ``n`` Axes (or ``None``) and returns the Figure they belong to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lossgeometry._compat import warn_deprecated

__all__ = ["axes_or_new", "panels"]


def axes_or_new(ax: Any, figsize: tuple[float, float]) -> Any:
    """``ax`` itself, or the Axes of a new figure of ``figsize`` when ``ax`` is None."""
    if ax is not None:
        if isinstance(ax, (list, tuple)) or not hasattr(ax, "plot"):
            raise TypeError(
                f"ax must be one matplotlib Axes or None, got {type(ax).__name__} (plot's "
                "first argument is ax; pass the other arguments by keyword)"
            )
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def panels(
    ax: Any, count: int, figsize: tuple[float, float], *, fig: Any = None, owner: str = "plot"
) -> tuple[Any, list[Any], bool]:
    """The figure and ``count`` Axes of a multi-panel plot.

    Args:
        ax: ``None`` (a new figure with ``count`` panels side by side) or a sequence of
            ``count`` matplotlib Axes.
        count: the number of panels.
        figsize: size of a new figure.
        fig: the deprecated ``plot(fig=...)`` style: panels are added to this figure (with a
            DeprecationWarning); not together with ``ax``.
        owner: the method's name for the messages (``"PLStarCertificate.plot"``).

    Returns:
        ``(figure, axes, own_layout)``; ``own_layout`` is True when the figure was made here
        (or given as ``fig``), so the caller may lay it out (``tight_layout``).
    """
    if fig is not None:
        if ax is not None:
            raise TypeError(f"{owner}: pass ax= (a sequence of {count} Axes) or fig=, not both")
        warn_deprecated(
            f"{owner}(fig=...) is deprecated and will stop working in the next release; pass "
            f"ax=fig.subplots(1, {count}) (a sequence of {count} Axes) instead",
            stacklevel=4,
        )
        return fig, list(fig.subplots(1, count)), True
    if ax is None:
        import matplotlib.pyplot as plt

        new = plt.figure(figsize=figsize)
        return new, list(new.subplots(1, count)), True
    if not isinstance(ax, Sequence) and hasattr(ax, "ravel"):
        ax = list(ax.ravel())  # a numpy array of Axes from plt.subplots
    if not isinstance(ax, Sequence) or len(ax) != count:
        got = len(ax) if isinstance(ax, Sequence) else type(ax).__name__
        raise TypeError(
            f"{owner} draws {count} panels: pass ax as a sequence of {count} Axes "
            f"(or None for a new figure), got {got}"
        )
    return ax[0].figure, list(ax), False
