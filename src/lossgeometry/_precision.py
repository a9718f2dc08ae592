"""The precision rule: no measurement runs below float32, whatever the model or autocast.

A float16 or bfloat16 model is measured in float32 (:func:`measurement_dtype`; the
:class:`~lossgeometry.Problem` casts parameters, buffers and data for every evaluation and
warns once with :class:`PrecisionWarning`). An active ``torch.autocast`` is switched off for a
whole measurement by :func:`full_precision` (the Problem's views and the Monitor use it);
``Problem.forward_with`` refuses to run under autocast otherwise.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = [
    "HALF_DTYPES",
    "PrecisionWarning",
    "autocast_active",
    "full_precision",
    "measurement_dtype",
]


HALF_DTYPES = (torch.float16, torch.bfloat16)


class PrecisionWarning(UserWarning):
    """A half-precision model is measured in float32 (see the module docstring)."""


def measurement_dtype(model_dtype: torch.dtype) -> torch.dtype:
    """The dtype a model of ``model_dtype`` is measured in: float32 for half precision."""
    return torch.float32 if model_dtype in HALF_DTYPES else model_dtype


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())


def autocast_active(device: torch.device) -> bool:
    """Whether ``torch.autocast`` is on for ``device``'s type or the CPU."""
    return any(_autocast_enabled(t) for t in {device.type, "cpu"})


def full_precision(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """A context with ``torch.autocast`` off for ``device``'s type and the CPU.

    Wraps a whole measurement (forward *and* backward: the backward formulas of a
    ``torch.func`` transform run when the transform returns, under the caller's autocast
    state). The Problem's views and :class:`~lossgeometry.Monitor` use it; a no-op when
    autocast is off.
    """
    if not autocast_active(device):
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    for t in {device.type, "cpu"}:
        stack.enter_context(torch.autocast(device_type=t, enabled=False))
    return stack
