"""One registry of optimizers by name: ``train``, configs and the CLI all resolve names here.

``make_optimizer("adam", params, lr)`` builds a registered optimizer; a ``torch.optim`` class or
a factory ``params -> Optimizer`` is accepted as well. :func:`register_optimizer` adds a name;
:func:`optimizer_names` lists them (configs validate ``[train] optimizer`` against it).

An entry is one of two kinds:

* an ``Optimizer`` **class**: built as ``cls(params, **defaults, **kwargs, lr=lr)`` (``lr``
  left out when ``None``, so the class's own default applies);
* a **factory** ``factory(params, lr, problem, **defaults, **kwargs) -> Optimizer``, for
  optimizers that need more than the parameters: the Problem being trained (``None`` when the
  caller has none; a factory that needs it raises), e.g. ``"certified_gd"`` which computes a
  PL* certificate of the Problem at the start point to take its step.

Either may be given as an import path ``"package.module:attribute"``, resolved on first use:
that is how an optimizer that lives *above* this package registers (``"certified_gd"`` is in
:mod:`lossgeometry.conditions.plstar_gd`, which needs the PL* certificate, the tangent kernel
and ``train``, which in turn uses this registry). The registry stays at the bottom of the
library and imports nothing of what it names, like a plugin table.

Names are lower case. torch's optimizers are registered here; the package's own
(``"sps"``, ``"decsps"``, ``"ngn"``, ``"adagrad_norm"``, ``"certified_gd"``) are registered
by :mod:`lossgeometry.optim` (its ``__init__``), which Python runs before this module is
usable, so they are always present.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "OptimizerFactory",
    "OptimizerSpec",
    "make_optimizer",
    "optimizer_names",
    "optimizer_takes_lr",
    "register_optimizer",
]

OptimizerSpec = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]
"""What ``train`` accepts: a registered name, an ``Optimizer`` class, or ``params -> Optimizer``."""

OptimizerFactory = Callable[..., torch.optim.Optimizer]
"""A registry factory: ``factory(params, lr, problem, **kwargs) -> Optimizer``."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    spec: type[torch.optim.Optimizer] | OptimizerFactory | str
    defaults: dict[str, Any]
    needs_lr: bool
    takes_lr: bool = True

    @property
    def is_class(self) -> bool:
        return isinstance(self.builder, type) and issubclass(self.builder, torch.optim.Optimizer)

    @property
    def builder(self) -> type[torch.optim.Optimizer] | OptimizerFactory:
        """The class or factory (an import path is imported on first use)."""
        if not isinstance(self.spec, str):
            return self.spec
        module, _, attr = self.spec.partition(":")
        return getattr(importlib.import_module(module), attr)


_NAMED: dict[str, _Entry] = {}


def register_optimizer(
    name: str,
    builder: type[torch.optim.Optimizer] | OptimizerFactory | str,
    defaults: dict[str, Any] | None = None,
    *,
    needs_lr: bool = False,
    takes_lr: bool = True,
) -> None:
    """Register ``builder`` under ``name`` (lower case) with keyword ``defaults``.

    ``builder`` is an ``Optimizer`` class or a factory, or the import path of one
    (``"package.module:attribute"``, see the module docstring).

    ``needs_lr=True`` makes a missing ``lr`` an error (torch's SGD has a default ``lr`` that
    means nothing for a given problem). ``takes_lr=False`` marks an optimizer that sets its
    own step (``"certified_gd"``): configs then pass no ``lr``. Registering the same builder
    again replaces its defaults; another builder under a taken name is an error.
    """
    key = name.lower()
    if key in _NAMED and _NAMED[key].spec is not builder and _NAMED[key].spec != builder:
        raise ValueError(f"an optimizer named {name!r} is already registered")
    if isinstance(builder, str):
        if ":" not in builder:
            raise ValueError(f"an optimizer import path is 'module:attribute', got {builder!r}")
    elif not callable(builder):
        raise TypeError(f"an optimizer builder must be a class or a factory, got {builder!r}")
    _NAMED[key] = _Entry(builder, dict(defaults or {}), needs_lr, takes_lr)


def optimizer_names() -> list[str]:
    """The registered optimizer names, sorted."""
    return sorted(_NAMED)


def optimizer_takes_lr(name: str) -> bool:
    """Whether the registered optimizer ``name`` takes a learning rate.

    ``False`` for one that sets its own step, e.g. ``"certified_gd"`` (its PL* certificate's).
    """
    key = name.lower()
    if key not in _NAMED:
        raise ValueError(f"unknown optimizer {name!r}; use one of {sorted(_NAMED)}")
    return _NAMED[key].takes_lr


def _checked(opt: Any, what: str) -> torch.optim.Optimizer:
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"{what} must return a torch.optim.Optimizer, got {type(opt).__name__}")
    return opt


def make_optimizer(
    optimizer: OptimizerSpec,
    params: list[torch.Tensor],
    lr: float | None,
    *,
    problem: Any = None,
    **kwargs: Any,
) -> tuple[torch.optim.Optimizer, str]:
    """Build an optimizer over ``params`` from a name, a class or a factory.

    Args:
        optimizer: a registered name, an ``Optimizer`` class or a factory ``params -> Optimizer``.
        params: the parameters (``train`` passes ``[w]``, the flat parameter vector).
        lr: the learning rate (``None``: the optimizer's own default, where it has one).
        problem: the Problem being trained, passed to registry factories.
        **kwargs: keyword arguments of the optimizer (override the entry's defaults).

    Returns:
        ``(optimizer, name)``: the name is the registry key, or the class name.
    """
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in _NAMED:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; use one of {sorted(_NAMED)}, a torch.optim "
                "class, or a callable params -> Optimizer"
            )
        entry = _NAMED[key]
        if lr is None and entry.needs_lr:
            raise ValueError(f"optimizer {optimizer!r} needs a learning rate: pass lr=...")
        opts = {**entry.defaults, **kwargs}
        if not entry.is_class:
            return _checked(entry.builder(params, lr, problem, **opts), f"optimizer {key!r}"), key
        if lr is not None:
            opts["lr"] = lr
        return entry.builder(params, **opts), key
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        opts = dict(kwargs)
        if lr is not None:
            opts["lr"] = lr
        return optimizer(params, **opts), optimizer.__name__
    if callable(optimizer):
        opt = _checked(optimizer(params), "an optimizer factory")
        return opt, type(opt).__name__
    raise TypeError(f"optimizer must be a name, an Optimizer class or a factory, got {optimizer!r}")


register_optimizer("gd", torch.optim.SGD, needs_lr=True)
register_optimizer("sgd", torch.optim.SGD, needs_lr=True)
register_optimizer("momentum", torch.optim.SGD, {"momentum": 0.9}, needs_lr=True)
register_optimizer("nesterov", torch.optim.SGD, {"momentum": 0.9, "nesterov": True}, needs_lr=True)
register_optimizer("adam", torch.optim.Adam)
register_optimizer("adamw", torch.optim.AdamW)
register_optimizer("adagrad", torch.optim.Adagrad)
register_optimizer("rmsprop", torch.optim.RMSprop)
register_optimizer("lbfgs", torch.optim.LBFGS)
