"""Model inputs of any shape: a tensor, a tuple or a dict of tensors (a pytree of tensors).

Part of :mod:`lossgeometry.problem` (split by job). A Problem's inputs ``x`` are a *pytree*
(``torch.utils._pytree``: nested tuples, lists and dicts) whose leaves are tensors that share
the leading sample dimension ``n``. Every operation on samples — indexing a subset, cutting
chunks, concatenating them, moving to a device, ``vmap`` over samples — acts on every leaf
along that dimension, so a measurement never looks inside ``x``.

How the model is called (the one rule, :func:`call_args`):

* a tensor ``x``: ``model(x)``;
* a tuple or list ``(a, b, …)``: ``model(a, b, …)`` (positional; ``(d,)`` calls ``model(d)``
  with a dict ``d``, for models that read ``data["x"]``);
* a dict (any ``Mapping``, e.g. HuggingFace's ``BatchEncoding``) ``{"input_ids": …}``:
  ``model(**x)`` (keyword inputs, HuggingFace style).

>>> import torch
>>> x = {"a": torch.zeros(5, 2), "b": (torch.ones(5), torch.arange(5))}
>>> input_count(x)
5
>>> take_inputs(x, torch.tensor([4, 0]))["b"][1].tolist()
[4, 0]
>>> call_args((torch.ones(2), torch.zeros(2)))[1], sorted(call_args(x)[1])
({}, ['a', 'b'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.utils._pytree as pytree

from lossgeometry._checks import check_finite

__all__ = [
    "Inputs",
    "call_args",
    "cast_inputs",
    "check_finite_inputs",
    "check_input_tree",
    "concat_inputs",
    "describe_call",
    "input_count",
    "input_leaves",
    "map_inputs",
    "normalize_inputs",
    "slice_inputs",
    "take_inputs",
]

Inputs = Any
"""A tensor, or a pytree (tuples, lists, dicts) of tensors sharing the sample dimension."""


def normalize_inputs(x: Inputs) -> Inputs:
    """``x`` with every ``Mapping`` turned into a ``dict`` (so that pytree functions see it).

    HuggingFace's ``BatchEncoding`` is a ``UserDict``, not a ``dict``; ``torch.utils._pytree``
    would take it for a leaf.
    """
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, Mapping):
        return {k: normalize_inputs(v) for k, v in x.items()}
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(normalize_inputs(v) for v in x)
    if isinstance(x, list):
        return [normalize_inputs(v) for v in x]
    return x


def input_leaves(x: Inputs) -> list[Any]:
    """The leaves of ``x`` (one element for a tensor)."""
    return pytree.tree_leaves(x)


def check_input_tree(x: Inputs, subject: str) -> int:
    """Check that every leaf of ``x`` is a tensor with a shared leading dimension; return it.

    ``subject`` starts the error sentence (``"X"``, ``"the inputs of batch 0"``).
    """
    flat = pytree.tree_flatten_with_path(x)[0]
    if not flat:
        raise TypeError(f"{subject} holds no tensors: pass a tensor, a tuple or a dict of tensors")
    paths = [pytree.keystr(p) for p, _ in flat]
    leaves = [t for _, t in flat]
    for path, t in zip(paths, leaves, strict=True):
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"{subject}{path} is {type(t).__name__}, not a tensor: inputs must be a tensor "
                "or a tuple/dict of tensors (convert with torch.as_tensor(...))"
            )
        if t.ndim == 0:
            raise ValueError(
                f"{subject}{path} is a 0-d tensor: inputs need a leading sample dimension "
                "(shape (n, ...))"
            )
    sizes = {path: t.shape[0] for path, t in zip(paths, leaves, strict=True)}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{p or 'x'}: {s}" for p, s in sizes.items())
        raise ValueError(
            f"the tensors of {subject} have different numbers of samples "
            f"({shown}): every tensor of "
            "the inputs needs the same leading sample dimension"
        )
    return leaves[0].shape[0]


def check_finite_inputs(x: Inputs, name: str, **kwargs: Any) -> None:
    """:func:`~lossgeometry._checks.check_finite` on every leaf (named by its path)."""
    if isinstance(x, torch.Tensor):
        check_finite(x, name, **kwargs)
        return
    for path, t in pytree.tree_flatten_with_path(x)[0]:
        check_finite(t, f"{name}{pytree.keystr(path)}", **kwargs)


def cast_inputs(x: Inputs, device: torch.device | None, dtype: torch.dtype | None) -> Inputs:
    """Move every leaf to ``device``; floating leaves also to ``dtype`` (ids, masks keep theirs)."""

    def cast(t: torch.Tensor) -> torch.Tensor:
        if dtype is not None and t.is_floating_point():
            return t.to(device=device, dtype=dtype)
        return t.to(device=device)

    return map_inputs(cast, x)


def input_count(x: Inputs) -> int:
    """The number of samples of ``x``: the leading dimension of its (first) leaf."""
    if isinstance(x, torch.Tensor):
        return x.shape[0]
    return pytree.tree_leaves(x)[0].shape[0]


def map_inputs(fn: Callable[[torch.Tensor], torch.Tensor], x: Inputs) -> Inputs:
    """``fn`` applied to every tensor leaf of ``x`` (the structure kept)."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    return pytree.tree_map(fn, x)


def take_inputs(x: Inputs, idx: torch.Tensor | Sequence[int]) -> Inputs:
    """The samples ``idx`` of ``x`` (every leaf indexed along its first dimension)."""
    return map_inputs(lambda t: t[idx.to(t.device) if torch.is_tensor(idx) else idx], x)


def slice_inputs(x: Inputs, start: int, stop: int) -> Inputs:
    """The samples ``start:stop`` of ``x`` (views)."""
    return map_inputs(lambda t: t[start:stop], x)


def concat_inputs(xs: Sequence[Inputs]) -> Inputs:
    """Concatenate chunks of inputs along the sample dimension, leaf by leaf."""
    if isinstance(xs[0], torch.Tensor):
        return torch.cat(list(xs))
    flats = [pytree.tree_flatten(x) for x in xs]
    spec = flats[0][1]
    leaves = [torch.cat([f[0][i] for f in flats]) for i in range(len(flats[0][0]))]
    return pytree.tree_unflatten(leaves, spec)


def call_args(x: Inputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments the model is called with (module docstring)."""
    if isinstance(x, Mapping):
        return (), dict(x)
    if isinstance(x, (tuple, list)) and not hasattr(x, "_fields"):
        return tuple(x), {}
    return (x,), {}


def describe_call(x: Inputs) -> str:
    """How the model is called on ``x``, for error messages."""
    if isinstance(x, Mapping):
        return f"model(**inputs) with the keywords {sorted(map(str, x))}"
    if isinstance(x, (tuple, list)) and not hasattr(x, "_fields"):
        return f"model(*inputs) with {len(x)} positional arguments"
    return "model(inputs)"
