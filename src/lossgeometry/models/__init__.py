"""Reference architectures as plain ``nn.Module`` factories.

Every model is assembled from standard torch layers (``nn.Linear``, ``nn.Conv1d``/``2d``,
``nn.Embedding``, ``nn.LayerNorm``; optionally ``nn.BatchNorm2d`` / ``nn.LSTM``) plus
parameter-free helpers from :mod:`lossgeometry.models.layers` (``Scale``, ``MoveDim``, ...),
so every parameter lives in a standard layer. Models take a leading batch dimension (and,
like torch layers, also accept a single unbatched sample, except BatchNorm models), are
deterministic (no dropout by default), default to float32 and work after ``.double()``, and
support ``torch.func.functional_call`` with ``vmap``, ``jacrev`` and ``jvp``.

Factories: :func:`mlp`, :func:`cnn`, :func:`resnet`, :func:`vgg`, :func:`lstm_lm`,
:func:`transformer`;
:func:`build` looks them up by name and :func:`available` lists the names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from lossgeometry.models.cnn import cnn
from lossgeometry.models.layers import (
    ACTIVATIONS,
    Lambda,
    MeanPool,
    MoveDim,
    Scale,
    count_parameters,
    make_activation,
    seeded,
)
from lossgeometry.models.lstm import LSTMLanguageModel, UnrolledLSTM, lstm_lm
from lossgeometry.models.mlp import mlp, mlp_layer_widths, mlp_num_params
from lossgeometry.models.resnet import BasicBlock, resnet
from lossgeometry.models.transformer import (
    SelfAttention,
    Transformer,
    TransformerBlock,
    transformer,
)
from lossgeometry.models.vgg import vgg

__all__ = [
    "ACTIVATIONS",
    "BasicBlock",
    "LSTMLanguageModel",
    "Lambda",
    "MeanPool",
    "MoveDim",
    "Scale",
    "SelfAttention",
    "Transformer",
    "TransformerBlock",
    "UnrolledLSTM",
    "available",
    "build",
    "cnn",
    "count_parameters",
    "lstm_lm",
    "make_activation",
    "mlp",
    "mlp_layer_widths",
    "mlp_num_params",
    "register",
    "resnet",
    "seeded",
    "transformer",
    "vgg",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "resnet": resnet,
    "lstm_lm": lstm_lm,
    "transformer": transformer,
    "vgg": vgg,
}


def available() -> list[str]:
    """Sorted names accepted by :func:`build`."""
    return sorted(_REGISTRY)


def register(name: str, factory: Callable[..., nn.Module], *, overwrite: bool = False) -> None:
    """Add a model factory to the registry used by :func:`build`.

    Raises:
        ValueError: if ``name`` is empty, not a string, or taken (unless ``overwrite``).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string, got {name!r}.")
    key = name.strip().lower()
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"model {key!r} is already registered; pass overwrite=True to replace.")
    if not callable(factory):
        raise ValueError(f"factory for {key!r} must be callable, got {factory!r}.")
    _REGISTRY[key] = factory


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by name, e.g. ``build("mlp", d_in=10, width=64, depth=2, d_out=1)``.

    Args:
        name: a name from :func:`available` (case-insensitive; ``-`` is read as ``_``).
        **kwargs: keyword arguments for the factory.

    Raises:
        ValueError: for an unknown name, or (from the factory) invalid arguments; a keyword
            the factory does not accept is reported with the factory's signature.
    """
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {name!r}; see available().")
    key = name.strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available models: {available()}.")
    factory = _REGISTRY[key]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:
        raise ValueError(
            f"bad arguments for model {key!r}: {err}. Signature: {key}{inspect.signature(factory)}"
        ) from err
    return factory(**kwargs)
