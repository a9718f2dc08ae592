"""Adapters that send :class:`~lossgeometry.Monitor` records to the tools people train with.

* :mod:`~lossgeometry.integrations.files`: :class:`CSVSink` (one ``step,name,value`` row per
  scalar) and :class:`JSONLinesSink` (one JSON object per record or histogram); no extra
  dependency.
* :mod:`~lossgeometry.integrations.tensorboard`: :class:`TensorBoardSink`, scalars and the
  Hessian eigenvalue density as a histogram through ``torch.utils.tensorboard.SummaryWriter``
  (needs ``pip install 'lossgeometry[tensorboard]'``).
* :mod:`~lossgeometry.integrations.export`: :func:`write_trajectory` and
  :func:`write_summaries`, finished results into the same sinks (``lossgeometry analyze
  --tensorboard DIR`` uses them).
* :mod:`~lossgeometry.integrations.lightning`: :class:`LossGeometryCallback`, a PyTorch
  Lightning ``Callback`` that measures every N steps or epochs on a fixed probe subset
  (needs ``pip install 'lossgeometry[lightning]'``).

TensorBoard and Lightning are imported only when their adapter is (the names below load
their module on first use), so ``import lossgeometry`` never needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CSVSink",
    "JSONLinesSink",
    "LossGeometryCallback",
    "TensorBoardSink",
    "write_summaries",
    "write_trajectory",
]

_WHERE = {
    "CSVSink": "files",
    "JSONLinesSink": "files",
    "TensorBoardSink": "tensorboard",
    "LossGeometryCallback": "lightning",
    "write_summaries": "export",
    "write_trajectory": "export",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
