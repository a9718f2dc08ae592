"""Grid points of an experiment, cached under ``out/points/`` with the inputs they came from.

A point file holds ``{"key": ..., "inputs": ..., "point": ...}``: ``key`` is everything the
experiment passes (its settings and the point's coordinates), ``inputs`` what those settings
only name (:func:`lossgeometry.app.outdir.keys.inputs`: versions, local data files). A point
is reused only when both are equal to the current run's; a file of an older layout is simply
recomputed; a file that does not parse is an error that names it (``--fresh`` recomputes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossgeometry.app.outdir.guard import read_cached_json
from lossgeometry.results import atomic_write_json, to_jsonable

__all__ = ["load_point", "save_point"]


def load_point(path: Path, key: Any, inputs: Any) -> Any | None:
    """The point saved at ``path`` for this ``key`` and ``inputs``, or None.

    Raises:
        CorruptCacheError: the file exists but is not JSON (names it; ``--fresh`` fixes it).
    """
    saved = read_cached_json(path)
    if (
        isinstance(saved, dict)
        and "point" in saved
        and saved.get("key") == to_jsonable(key)
        and saved.get("inputs") == to_jsonable(inputs)
    ):
        return saved["point"]
    return None


def save_point(path: Path, key: Any, inputs: Any, point: Any) -> Any:
    """Save ``point`` (made JSON-able) with its key and inputs, atomically; return it."""
    point = to_jsonable(point)
    atomic_write_json(
        path, {"key": to_jsonable(key), "inputs": to_jsonable(inputs), "point": point}
    )
    return point
