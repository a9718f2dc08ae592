"""Saving figures: one function for the report and the experiments (atomic, closed after)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["save_figure"]


def save_figure(
    fig: Any,
    folder: str | Path,
    filename: str,
    *,
    dpi: int = 130,
    tight: bool = True,
    bbox_tight: bool = False,
) -> str:
    """Write ``fig`` as PNG to ``folder/filename`` atomically, close it, return ``filename``.

    The PNG goes to a hidden temporary file first and is renamed into place, so a reader (or
    an interrupted run) never sees half a picture. ``tight`` applies ``fig.tight_layout()``;
    ``bbox_tight`` crops the saved picture to its content (``bbox_inches="tight"``).
    """
    import matplotlib.pyplot as plt

    path = Path(folder) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    tmp = path.with_name("." + path.name)
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight" if bbox_tight else None, format="png")
    tmp.replace(path)
    plt.close(fig)
    return filename
