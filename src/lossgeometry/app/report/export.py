"""A finished report's numbers into TensorBoard or JSON lines (``analyze --tensorboard``).

The training records (``trajectory.json``) go in at their steps; every section's
``summary`` from ``results.json`` goes in at the last step as ``SECTION/KEY`` scalars, so a
TensorBoard run shows lossgeometry's measurements beside the training curves.
"""

from __future__ import annotations

import json
from pathlib import Path

from lossgeometry.integrations.export import write_summaries, write_trajectory
from lossgeometry.recording import Trajectory

__all__ = ["export_report"]


def export_report(
    out: str | Path, *, tensorboard: str | Path | None = None, jsonl: str | Path | None = None
) -> list[Path]:
    """Write the report in ``out`` to a TensorBoard log directory and/or a JSON-lines file.

    Returns:
        Where the records went.
    """
    from lossgeometry.integrations import JSONLinesSink, TensorBoardSink

    out = Path(out)
    traj = Trajectory.load(out / "trajectory.json")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    sinks, where = [], []
    if tensorboard is not None:
        sinks.append(TensorBoardSink(tensorboard))
        where.append(Path(tensorboard))
    if jsonl is not None:
        sinks.append(JSONLinesSink(jsonl))
        where.append(Path(jsonl))
    try:
        write_trajectory(traj, sinks)
        summaries = {k: v.get("summary", {}) for k, v in results.get("sections", {}).items()}
        write_summaries(int(traj.steps[-1]), summaries, sinks)
    finally:
        for sink in sinks:
            sink.close()
    return where
