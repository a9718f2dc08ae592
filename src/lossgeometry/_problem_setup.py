"""How a :class:`~lossgeometry.Problem` is built: parameters, modes, dtype, probe checks.

Part of :mod:`lossgeometry.problem` (split by job): the construction steps shared by
``Problem(model, X, Y)`` and ``Problem.from_loader``. They select the counted parameters and
lay them out in the flat vector (:class:`ParamSpec`), record the model's mode-dependent
modules, choose the measurement dtype (float32 for a half-precision model), and probe the
model on the first samples (a tensor output with a batch dimension, a deterministic forward,
targets that fit the loss).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import torch
from torch import nn

from lossgeometry._checks import (
    check_class_indices,
    check_modes,
    check_same_outputs,
    mode_modules,
    preserved_rng,
)
from lossgeometry._precision import HALF_DTYPES, PrecisionWarning, full_precision, measurement_dtype
from lossgeometry._problem_data import _LoaderSource, _TensorSource
from lossgeometry._problem_inputs import describe_call, input_count

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_REDUCTION",
    "LossFn",
    "LossName",
    "ParamSpec",
    "ProblemSetup",
    "Reduction",
    "default_reduction",
    "unwrap_parallel",
]

LossName = Literal["mse", "cross_entropy", "bce", "nll"]
Reduction = Literal["sum", "mean"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_REDUCTION: Mapping[str, Reduction] = MappingProxyType(
    {"mse": "sum", "cross_entropy": "mean", "bce": "mean", "nll": "mean"}
)
"""The one default ``reduction`` of each built-in loss (Python's ``Problem`` and configs alike).

``"mse"``: ``"sum"``, ``L = ½ Σᵢ ‖fᵢ − yᵢ‖²`` (the PL* papers' loss, whose tangent-kernel
bound ``µ = λ_min(K)`` needs no factor); ``"cross_entropy"``: ``"mean"``,
``L = (1/n) Σᵢ −log softmax(fᵢ)[yᵢ]`` (torch's default, so a learning rate means what it
means in a plain torch loop); ``"bce"``: ``"mean"``, ``L = (1/(nk)) Σᵢⱼ bce(fᵢⱼ, yᵢⱼ)``
(``nn.BCEWithLogitsLoss()``); ``"nll"``: ``"mean"``, ``L = (1/n) Σᵢ −fᵢ[yᵢ]``
(``nn.NLLLoss()``). A callable loss: ``"mean"``."""


def default_reduction(loss_name: str) -> Reduction:
    """The reduction a loss gets when none is given (:data:`DEFAULT_REDUCTION`; else ``"mean"``).

    >>> default_reduction("mse"), default_reduction("cross_entropy"), default_reduction("bce")
    ('sum', 'mean', 'mean')
    """
    return DEFAULT_REDUCTION.get(loss_name, "mean")


DEFAULT_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class ParamSpec:
    """Where one parameter tensor sits in the flat vector: ``w[offset : offset + numel]``."""

    name: str
    shape: torch.Size
    numel: int
    offset: int


def unwrap_parallel(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` wrappers (``.module``).

    The wrapper's own forward synchronizes gradients and buffers across ranks; the Problem
    evaluates the wrapped network itself, whose parameters are the ones the wrapper trains.
    """
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


class ProblemSetup:
    """The construction steps of :class:`~lossgeometry.Problem` (a mixin of it)."""

    _source: _TensorSource | _LoaderSource

    def _setup(
        self,
        model: nn.Module,
        loss: LossName | LossFn,
        reduction: Reduction | None,
        params: Sequence[str] | Callable[[str, torch.Tensor], bool] | None,
        chunk_size: int | None,
        allow_batchnorm: bool,
        allow_dropout: bool,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = unwrap_parallel(model)
        self.allow_batchnorm, self.allow_dropout = allow_batchnorm, allow_dropout
        self._track_modes()
        check_modes(self._norms, self._random, allow_batchnorm, allow_dropout)
        if callable(loss) and not isinstance(loss, str):
            self.loss_name = getattr(loss, "__name__", "custom")
            self._custom_loss: LossFn | None = loss
        elif loss in ("mse", "cross_entropy", "bce", "nll"):
            self.loss_name, self._custom_loss = loss, None
        else:
            raise ValueError(
                f"unknown loss {loss!r}: use 'mse', 'cross_entropy', 'bce', 'nll' or a callable "
                "(outputs, targets) -> per-sample losses of shape (batch,)"
            )
        if reduction is None:
            reduction = default_reduction(self.loss_name)
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.reduction: Reduction = reduction
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self._chunk_size_arg = chunk_size

        named = dict(self.model.named_parameters())
        if not named:
            raise ValueError("the model has no parameters: there is nothing to measure")
        if params is None:
            names = [n for n, t in named.items() if t.requires_grad]
        elif callable(params):
            names = [n for n, t in named.items() if params(n, t)]
        else:
            if isinstance(params, str):
                raise TypeError(
                    f"params must be a list of parameter names, got the string {params!r}: "
                    f"write params=[{params!r}]"
                )
            params = list(params)
            repeated = sorted({n for n in params if params.count(n) > 1})
            if repeated:
                raise ValueError(
                    f"params names {repeated} more than once: each parameter counts once in w; "
                    "list each name once"
                )
            unknown = [n for n in params if n not in named]
            if unknown:
                raise ValueError(
                    f"unknown parameter names {unknown}; the model has {list(named)[:10]}"
                    + (" ..." if len(named) > 10 else "")
                )
            names = list(params)
        if not names:
            raise ValueError(
                "no parameter selected: all parameters are frozen (requires_grad=False) or the "
                "params selection matched nothing"
            )
        first = named[names[0]]
        self.device: torch.device = first.device
        self._set_dtype(first.dtype)
        specs, offset = [], 0
        for n in names:
            t = named[n]
            if t.dtype != first.dtype or t.device != self.device:
                raise ValueError(
                    f"parameter {n!r} has dtype/device {t.dtype}/{t.device} but {names[0]!r} has "
                    f"{first.dtype}/{self.device}: convert the model with model.to(...) first"
                )
            specs.append(ParamSpec(n, t.shape, t.numel(), offset))
            offset += t.numel()
        self._param_specs: tuple[ParamSpec, ...] = tuple(specs)
        self.p: int = offset
        self._fixed = {n: t.detach() for n, t in named.items() if n not in set(names)}

    def _track_modes(self) -> None:
        """The model's mode-dependent modules and the buffers train-mode norms would update."""
        self._norms, self._random = mode_modules(self.model)
        self._norm_buffers = [
            (mod, [f"{name}.{b}" if name else b for b, _ in mod.named_buffers(recurse=False)])
            for name, mod in self._norms
        ]

    def _set_dtype(self, model_dtype: torch.dtype) -> None:
        """Measure in ``model_dtype``, or in float32 (with a warning) for half precision."""
        self.dtype: torch.dtype = measurement_dtype(model_dtype)
        self._upcast = self.dtype != model_dtype
        if self._upcast:
            warnings.warn(
                f"the model's parameters are {model_dtype}: lossgeometry measures it in "
                f"{self.dtype} (parameters, buffers and data are cast for every evaluation; the "
                "model is not changed), since half-precision rounding exceeds the small "
                "eigenvalues measured. Call model.float() to silence this warning",
                PrecisionWarning,
                stacklevel=4,
            )

    def _finish_setup(self) -> None:
        self.n: int = len(self._source)
        self.chunk_size: int = self._chunk_size_arg or min(self.n, DEFAULT_CHUNK_SIZE)
        idx = torch.arange(min(self.n, 2))
        x, y = self._source.get(idx)
        pdict = self.param_dict(self.params())
        # the probes must not shift the user's random stream (a random model draws here)
        with torch.no_grad(), preserved_rng(), full_precision(self.device):
            try:
                out = self.forward_with(pdict, x)
            except TypeError as e:
                if isinstance(x, torch.Tensor):
                    raise
                raise TypeError(
                    f"calling the model on the inputs failed: it is called as "
                    f"{describe_call(x)} (a tensor is passed as model(x), a tuple as "
                    "model(*x), a dict as model(**x)); make the keys the names of forward's "
                    "parameters, or pass (inputs,) to call model(inputs) with one argument. "
                    f"The model said: {e}"
                ) from e
            if not torch.is_tensor(out):
                raise TypeError(
                    f"the model returned {type(out).__name__}; lossgeometry needs a tensor of "
                    "outputs (wrap the model so that forward returns one tensor)"
                )
            if not self.allow_dropout:
                check_same_outputs(out, self.forward_with(pdict, x))
        if out.shape[0] != input_count(x):
            raise ValueError(
                f"the model maps a batch of {input_count(x)} inputs to outputs of shape "
                f"{tuple(out.shape)}: the first output dimension must be the batch dimension"
            )
        if out.dtype in HALF_DTYPES and self.dtype not in HALF_DTYPES:
            raise ValueError(
                f"the model returns {out.dtype} outputs from {self.dtype} parameters and inputs "
                "(it casts inside forward): lossgeometry measures in float32 or float64; "
                "remove the cast to half precision"
            )
        self.output_shape: tuple[int, ...] = tuple(out.shape[1:])
        self.k: int = math.prod(self.output_shape)
        self._target_spec = (tuple(y.shape[1:]), y.dtype)
        self._check_targets(out, y)

    def target_spec(self) -> tuple[tuple[int, ...], torch.dtype]:
        """Shape of one sample's targets and their dtype (as stored)."""
        tail, dtype = self._target_spec
        return tail, (self.dtype if dtype.is_floating_point else dtype)

    def _check_targets(self, out: torch.Tensor, y: torch.Tensor) -> None:
        if self.loss_name == "mse" and self._custom_loss is None:
            if not y.is_floating_point():
                raise ValueError(
                    "loss='mse' needs float targets; got integer targets (class labels?): "
                    "one-hot encode them (lg.data.load(..., one_hot=True)) or use "
                    "loss='cross_entropy'"
                )
            if y[0].numel() != self.k:
                raise ValueError(
                    f"the model outputs {self.k} numbers per sample but each target has "
                    f"{y[0].numel()}: for loss='mse' they must match"
                )
        elif self.loss_name == "bce" and self._custom_loss is None:
            if not y.is_floating_point():
                raise ValueError(
                    "loss='bce' needs float targets in [0, 1] (y.float()), got integer targets"
                )
            if y[0].numel() != self.k:
                raise ValueError(
                    f"the model outputs {self.k} logits per sample but each target has "
                    f"{y[0].numel()}: for loss='bce' they must match"
                )
        elif self.loss_name in ("cross_entropy", "nll") and self._custom_loss is None:
            name = self.loss_name
            if y.is_floating_point():
                raise ValueError(
                    f"loss={name!r} needs integer class indices as targets, got floats "
                    "(one-hot?); pass Y.argmax(-1) or use loss='mse'"
                )
            if tuple(y.shape[1:]) != self.output_shape[:-1]:
                raise ValueError(
                    f"{name}: outputs per sample have shape {self.output_shape} (classes "
                    f"last), so targets per sample must have shape {self.output_shape[:-1]}, "
                    f"got {tuple(y.shape[1:])}"
                )
            C = self.output_shape[-1]
            if isinstance(self._source, _TensorSource):
                check_class_indices(self._source.Y, C)
            else:  # the probe now, then each batch as it is read
                check_class_indices(y, C, f"the samples {list(range(y.shape[0]))} of the dataset")
                self._source.classes = C
