"""One registry of optimizers by name: ``train``, configs and the CLI all resolve names here.

``make_optimizer("adam", params, lr)`` builds a registered optimizer; a ``torch.optim`` class or
a factory ``params -> Optimizer`` is accepted as well. :func:`register_optimizer` adds a name
(the package's own optimizers register themselves in :mod:`lossgeometry.optim`);
:func:`optimizer_names` lists them (configs validate ``[train] optimizer`` against it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["OptimizerSpec", "make_optimizer", "optimizer_names", "register_optimizer"]

OptimizerSpec = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]

_NAMED = {
    "gd": (torch.optim.SGD, {}),
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "lbfgs": (torch.optim.LBFGS, {}),
}


def register_optimizer(
    name: str, cls: type[torch.optim.Optimizer], defaults: dict[str, Any] | None = None
) -> None:
    """Register ``cls`` (with keyword ``defaults``) under ``name`` (lower case)."""
    key = name.lower()
    if key in _NAMED and _NAMED[key][0] is not cls:
        raise ValueError(f"an optimizer named {name!r} is already registered")
    _NAMED[key] = (cls, dict(defaults or {}))


def optimizer_names() -> list[str]:
    """The registered optimizer names, sorted."""
    return sorted(_NAMED)


def make_optimizer(
    optimizer: OptimizerSpec, params: list[torch.Tensor], lr: float | None, **kwargs: Any
) -> tuple[torch.optim.Optimizer, str]:
    """Build an optimizer over ``params`` from a name, a class or a factory."""
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in _NAMED:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; use one of {sorted(_NAMED)}, a torch.optim "
                "class, or a callable params -> Optimizer"
            )
        cls, defaults = _NAMED[key]
        if lr is None and cls in (torch.optim.SGD,):
            raise ValueError(f"optimizer {optimizer!r} needs a learning rate: pass lr=...")
        opts = {**defaults, **kwargs}
        if lr is not None:
            opts["lr"] = lr
        return cls(params, **opts), key
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        opts = dict(kwargs)
        if lr is not None:
            opts["lr"] = lr
        return optimizer(params, **opts), optimizer.__name__
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(
                "an optimizer factory must return a torch.optim.Optimizer, got "
                f"{type(opt).__name__}"
            )
        return opt, type(opt).__name__
    raise TypeError(f"optimizer must be a name, an Optimizer class or a factory, got {optimizer!r}")
