"""The structure-keyed cache of structured-kernel plans (see :func:`structure_key`).

A plan depends on the model's structure, not on its parameter values or dtype, so a deep
copy or a ``.to(torch.float64)`` copy of a model reuses the plan built for the original.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from lossgeometry.kernel.rules import RULES
from lossgeometry.problem import Inputs, Problem

Plan = Any
"""A :class:`lossgeometry.kernel.structured.Plan` (not imported here: that module imports this)."""

BY_STRUCTURE: dict[tuple, tuple[Plan, list[str]]] = {}
"""Plans by :func:`structure_key` (entries without modules, so no model is kept alive), with
the module path of each entry; bounded, oldest dropped first."""
MAX_STRUCTURES = 32
BUILDS = [0]
"""How many plans were built from scratch in this process (read by the tests)."""


def _leaf_specs(x: Any) -> Any:
    """Shape and floating-or-not of every tensor leaf of an input batch (no values)."""
    if torch.is_tensor(x):
        return (tuple(x.shape), x.is_floating_point())  # float32 or float64: the same plan
    if isinstance(x, dict):
        return tuple((k, _leaf_specs(v)) for k, v in sorted(x.items()))
    if isinstance(x, list | tuple):
        return tuple(_leaf_specs(v) for v in x)
    return repr(x)


def structure_key(problem: Problem, x1: Inputs) -> tuple:
    """What a plan depends on, without object identities or parameter values.

    The module tree (paths, classes, training flags, ``repr`` with every layer's
    hyper-parameters), every parameter and buffer by name and shape (parameters also by
    sharing: duplicates are listed),
    the counted parameters, the per-sample input structure, ``n``, ``k``, the device type and
    the registered rules (:func:`~lossgeometry.kernel.rules.register_rule` invalidates).
    The dtype of the parameters is left out, so a ``.to(float64)`` copy reuses the plan.
    """
    model = problem.model
    mods = tuple(
        (n, type(m).__module__, type(m).__qualname__, m.training) for n, m in model.named_modules()
    )
    first: dict[int, str] = {}
    params = tuple(
        (n, tuple(t.shape), first.setdefault(id(t), n))
        for n, t in model.named_parameters(remove_duplicate=False)
    )
    bufs = tuple((n, tuple(b.shape)) for n, b in model.named_buffers())
    return (
        repr(model), mods, params, bufs, tuple(problem.param_names), _leaf_specs(x1),
        problem.n, problem.k, problem.device.type, tuple(map(id, RULES)),
    )  # fmt: skip


def rebind(plan: Plan, paths: list[str], model: nn.Module) -> Plan:
    """The cached ``plan`` with every entry pointing at the same-path module of ``model``."""
    mods = dict(model.named_modules())
    entries = [
        dataclasses.replace(e, module=mods[p]) for e, p in zip(plan.entries, paths, strict=True)
    ]
    return dataclasses.replace(plan, entries=entries, reasons=dict(plan.reasons))
