"""Send finished results to the same sinks a :class:`~lossgeometry.Monitor` writes to.

:func:`write_trajectory` replays the records of a :class:`~lossgeometry.Trajectory` (what
``lg.train(..., sinks=...)`` streams while it runs), :func:`write_summaries` writes the
headline numbers of Results (``Result.summary()``, or a report's ``results.json``) as
``SECTION/KEY`` scalars, so TensorBoard shows a report's measurements next to the training
curves.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["write_summaries", "write_trajectory"]

_RECORDS = ("loss", "grad_norm", "distance", "pl_ratio")


def write_trajectory(trajectory: Any, sinks: Sequence[Any]) -> int:
    """Write every record of ``trajectory`` (one ``write_scalars`` per recorded step).

    Returns:
        The number of records written.
    """
    steps = [int(s) for s in trajectory.steps]
    for j, step in enumerate(steps):
        scalars = {k: float(getattr(trajectory, k)[j]) for k in _RECORDS}
        for sink in sinks:
            sink.write_scalars(step, scalars)
    return len(steps)


def write_summaries(
    step: int, summaries: Mapping[str, Mapping[str, Any]], sinks: Sequence[Any]
) -> dict[str, float]:
    """Write the numeric entries of ``{name: summary}`` as ``name/key`` scalars at ``step``.

    Booleans become 0/1; strings and non-finite numbers are left out (a scalar plot cannot
    show them; they stay in the results files).

    Returns:
        The scalars written.
    """
    scalars: dict[str, float] = {}
    for name, summary in summaries.items():
        for key, value in (summary or {}).items():
            if isinstance(value, bool):
                scalars[f"{name}/{key}"] = float(value)
            elif isinstance(value, numbers.Real) and math.isfinite(float(value)):
                scalars[f"{name}/{key}"] = float(value)
    if scalars:
        for sink in sinks:
            sink.write_scalars(step, scalars)
    return scalars
