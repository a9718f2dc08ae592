"""Typed experiment configs: one options dataclass per experiment, read from its TOML.

An experiment's TOML is its options dataclass (deriving :class:`lossgeometry.options.Options`)
written out: top-level keys are fields, tables are nested options (``[data]``, ``[kernel]``)
or plain tables (``[hessian]``). :func:`experiment_options` builds it:

* the ``experiment`` key names the experiment and is not an option;
* with ``--full``, the ``[full]`` table is merged over the top level
  (:func:`lossgeometry.app.config.merge`: tables key by key, other values replace);
* a table of nested options merges over its field's default (a ``[data]`` table that sets
  ``d`` keeps the default ``n``); a plain table replaces its default unless the class lists
  it in ``MERGED_TABLES``;
* an unknown key is an error that names it and the closest valid one
  (``[kernel_change] widht: unknown option; did you mean 'width'?``).

:class:`DataTable` is the ``[data]`` table of the square-loss experiments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import torch

from lossgeometry.app.config import merge
from lossgeometry.options import Options

__all__ = ["DataTable", "experiment_options", "square_loss_data"]

O = TypeVar("O", bound=Options)


@dataclasses.dataclass(frozen=True)
class DataTable(Options):
    """The ``[data]`` table: :func:`lossgeometry.data.load`'s arguments (unset: its defaults)."""

    name: str = "synthetic-regression"
    """Any :func:`lossgeometry.data.available` name with float targets."""
    n: int = 32
    """Samples (the system has ``n·k`` equations)."""
    seed: int = 0
    """Seed of the samples (and of generated inputs and noise)."""
    d: int | None = None
    """Input dimension (synthetic data)."""
    k: int | None = None
    """Outputs per sample (synthetic regression)."""
    noise: float | None = None
    """Label noise (synthetic regression)."""
    teacher: str | None = None
    """Teacher network (synthetic regression)."""
    width: int | None = None
    """Teacher width (synthetic regression)."""
    task_seed: int | None = None
    """Seed of the teacher (synthetic data)."""
    num_classes: int | None = None
    """Classes (synthetic classification)."""
    one_hot: bool | None = None
    """One-hot float targets for classification data."""
    standardize: bool | None = None
    """Standardize the inputs."""

    def load_kwargs(self) -> dict[str, Any]:
        """The set fields as keyword arguments of :func:`lossgeometry.data.load`."""
        return {k: v for k, v in self.to_dict().items() if v is not None}


def _with_defaults(cls: type[Options], data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each table merged over its field's default.

    Tables of nested options always merge; plain-dict tables merge only when the class names
    them in ``MERGED_TABLES`` (others, e.g. a table of optimizers, replace the default).
    """
    out = dict(data)
    merged = getattr(cls, "MERGED_TABLES", ())
    for f in dataclasses.fields(cls):
        if f.name not in out or not isinstance(out[f.name], Mapping):
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if isinstance(default, Options):
            out[f.name] = merge(default.to_dict(), dict(out[f.name]))
        elif isinstance(default, Mapping) and f.name in merged:
            out[f.name] = merge(dict(default), dict(out[f.name]))
    return out


def experiment_options(cls: type[O], cfg: Mapping[str, Any], full: bool) -> O:
    """The typed options of an experiment TOML (``[full]`` applied when ``full``)."""
    name = str(cfg.get("experiment", cls.__name__))
    top = {k: v for k, v in cfg.items() if k not in ("experiment", "full")}
    if full:
        extra = cfg.get("full", {})
        if not isinstance(extra, Mapping):
            raise ValueError(f"[{name}] full must be a table, got {extra!r}")
        top = merge(top, dict(extra))
    return cls.from_mapping(_with_defaults(cls, top), where=name)


def square_loss_data(data: DataTable, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``[data]`` as flat inputs ``(n, d)`` and float targets ``(n, k)``.

    Raises:
        ValueError: the targets are class indices (these experiments use the square loss).
    """
    from lossgeometry import data as lgdata

    kw = data.load_kwargs()
    ds = lgdata.load(kw.pop("name"), dtype=dtype, **kw)
    X, Y = ds.X.reshape(ds.X.shape[0], -1), ds.Y
    if not Y.is_floating_point():
        raise ValueError(
            "this experiment uses the square loss: give float targets "
            "(one_hot = true for classification data)"
        )
    return X, Y.reshape(Y.shape[0], -1)
