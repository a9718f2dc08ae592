"""The `Problem`: model + data + loss, seen as functions of one flat parameter vector.

Every measurement in lossgeometry takes a :class:`Problem`. It owns

* which parameters count (default: all trainable ones), and the mapping between a flat
  vector ``w ∈ R^p`` and the model's parameter tensors;
* the data ``(x_i, y_i)``, ``i = 1..n``, held as tensors or read from a ``DataLoader``,
  always evaluated in chunks so memory stays bounded;
* the loss and its normalization;
* device and dtype (they follow the model).

Notation. ``F(w) = (f(w; x_1), …, f(w; x_n)) ∈ R^{n×k}``: the model outputs, each sample's
output flattened to ``k`` numbers. The residual is ``r(w) = F(w) − Y`` (mean-squared loss).

Loss normalizations (``reduction``):

* ``loss="mse", reduction="sum"`` (default, as in Liu, Zhu & Belkin):
  ``L(w) = ½ Σ_i ‖f(w; x_i) − y_i‖²``; per-sample loss ``ℓ_i = ½ ‖f_i − y_i‖²``.
* ``loss="mse", reduction="mean"`` (``torch.nn.MSELoss``):
  ``L(w) = (1/(n k)) Σ_i ‖f(w; x_i) − y_i‖²``; per-sample loss ``ℓ_i = ‖f_i − y_i‖² / k``
  and ``L = (1/n) Σ_i ℓ_i``.
  The two differ by the factor :attr:`Problem.loss_scale`: ``L = loss_scale · ½‖F − Y‖²``.
* ``loss="cross_entropy"``: ``ℓ_i = −log softmax(f_i)[y_i]``; ``reduction="mean"`` (default)
  gives ``L = (1/n) Σ ℓ_i``, ``"sum"`` gives ``Σ ℓ_i``. Outputs of shape ``(n, …, C)`` with
  integer targets ``(n, …)`` (sequence models) average ``ℓ`` over the extra positions.
* ``loss=callable``: ``callable(outputs, targets) -> per-sample losses of shape (b,)``
  (``outputs`` as the model returns them); ``reduction`` then sums or averages them.

Gradients, JVPs, VJPs and Hessian-vector products are built on :mod:`torch.func`.

Precision. Measurements run in :attr:`Problem.dtype`, never below float32: a float16 or
bfloat16 model is measured in float32 (its parameters, buffers and the data are cast to
float32 for every evaluation; the model itself is not changed; a :class:`PrecisionWarning`
says so once per Problem). Autocast gets the same rule: the Problem's views and
:class:`~lossgeometry.Monitor` switch an active ``torch.autocast`` off for the whole
measurement (:func:`full_precision`), and any other measurement that reaches the model under
autocast is refused with a clear error. Half precision's rounding (~1e-3) exceeds the small
eigenvalues measured here (a float16 kernel's λ_min came out 58 % low).

Modes. The model is evaluated in the mode it is in. Train-mode BatchNorm and active dropout
are refused (at construction and at every evaluation) unless ``allow_batchnorm`` /
``allow_dropout``; a model whose two forward passes differ (randomness no module flag shows,
e.g. ``F.dropout(x, p, self.training)``) is refused at construction. Train-mode
normalization runs on batch statistics *without* updating the user's running statistics, and
the construction probes leave the global random generators as they were.

Example (the definitions above, checked on a small model in float64):

>>> import torch
>>> import lossgeometry as lg
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(6, 3, generator=g, dtype=torch.float64)
>>> Y = torch.randn(6, 2, generator=g, dtype=torch.float64)
>>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)
>>> problem.p, problem.n, problem.k, problem.loss_scale
(50, 6, 2, 1.0)
>>> w = problem.params()
>>> r = problem.residual(w)                                   # F(w) − Y, shape (n, k)
>>> bool(torch.isclose(problem.loss(w), 0.5 * r.pow(2).sum()))
True
>>> torch.allclose(problem.grad(w), problem.vjp(w, r))        # ∇L = DFᵀ r (sum reduction)
True
>>> v = torch.randn(problem.p, generator=g, dtype=torch.float64)
>>> bool(torch.isclose((problem.jvp(w, v) * r).sum(), problem.grad(w) @ v))   # ⟨DF v, r⟩
True
>>> mean = lg.Problem(problem.model, X, Y, reduction="mean")  # L = (1/(nk)) Σ ‖fᵢ − yᵢ‖²
>>> mean.loss_scale == 2 / (6 * 2) and bool(torch.isclose(mean.loss(w), r.pow(2).mean()))
True
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vjp

from lossgeometry._checks import (
    check_class_indices,
    check_finite,
    check_modes,
    check_same_outputs,
    mode_modules,
    preserved_rng,
)
from lossgeometry._precision import (
    HALF_DTYPES,
    PrecisionWarning,
    autocast_active,
    full_precision,
    measurement_dtype,
)
from lossgeometry._problem_data import _cast, _LoaderSource, _TensorSource, dict_inputs_error

LossName = Literal["mse", "cross_entropy"]
Reduction = Literal["sum", "mean"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class ParamSpec:
    """Where one parameter tensor sits in the flat vector: ``w[offset : offset + numel]``."""

    name: str
    shape: torch.Size
    numel: int
    offset: int


def _measurement(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a Problem view with autocast off (see :func:`full_precision`)."""

    @functools.wraps(method)
    def view(self: Problem, *args: Any, **kwargs: Any) -> Any:
        with full_precision(self.device):
            return method(self, *args, **kwargs)

    return view


class Problem:
    """A model, its data and a loss, as functions of a flat parameter vector ``w ∈ R^p``.

    Args:
        model: any ``torch.nn.Module`` mapping a batch of inputs ``(b, ...)`` to outputs
            ``(b, ...)``. Device and dtype follow its parameters; a float16/bfloat16 model is
            measured in float32 (:attr:`dtype`; the model is not changed, see the module
            docstring).
        X: inputs, shape ``(n, ...)``.
        Y: targets, shape ``(n, ...)``: floats for ``"mse"`` (reshaped to ``(n, k)``), class
            indices (int64) for ``"cross_entropy"``.
        loss: ``"mse"``, ``"cross_entropy"`` or a callable returning per-sample losses
            ``(b,)`` from ``(outputs, targets)``.
        reduction: ``"sum"`` or ``"mean"``; see the module docstring for the exact formulas.
            Default: ``"sum"`` for MSE (``L = ½ Σ‖f_i − y_i‖²``, the PL* paper's), ``"mean"``
            otherwise.
        params: which parameters count: ``None`` (all with ``requires_grad``), a list of
            distinct parameter names, or a predicate ``(name, tensor) -> bool``. The others
            stay fixed.
        chunk_size: samples per chunk when evaluating over the data (bounds memory).
        allow_batchnorm: compute even if a BatchNorm layer is in train mode (batch statistics
            of each chunk then couple samples and per-sample quantities are not well defined).
            The user's running statistics are never updated by an evaluation.
        allow_dropout: compute even with active dropout or another random forward (results
            are then random).

    Raises:
        ValueError: mismatched lengths, an empty dataset, NaN/Inf in the data, class indices
            out of range, an unknown loss or reduction, unknown or repeated parameter names,
            train-mode BatchNorm, active dropout or a forward pass that is random.
        TypeError: a model that is not an ``nn.Module`` or data that are not tensors (a dict
            of inputs included).
    """

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        Y: torch.Tensor,
        loss: LossName | LossFn = "mse",
        *,
        reduction: Reduction | None = None,
        params: Sequence[str] | Callable[[str, torch.Tensor], bool] | None = None,
        chunk_size: int | None = None,
        allow_batchnorm: bool = False,
        allow_dropout: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for label, t in (("X", X), ("Y", Y)):
            if isinstance(t, Mapping):
                raise dict_inputs_error(f"{label} is", t.keys())
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"{label} must be a torch.Tensor, got {type(t).__name__}; "
                    "convert with torch.as_tensor(...) or use Problem.from_loader"
                )
        if X.ndim == 0 or Y.ndim == 0:
            raise ValueError("X and Y must have a leading sample dimension (shape (n, ...))")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} samples but Y has {Y.shape[0]}: they must have the same "
                "length along the first dimension"
            )
        if X.shape[0] == 0:
            raise ValueError("the dataset is empty (n = 0): pass at least one sample")
        check_finite(X, "X")
        check_finite(Y, "Y")
        self._setup(model, loss, reduction, params, chunk_size, allow_batchnorm, allow_dropout)
        self._source: _TensorSource | _LoaderSource = _TensorSource(
            _cast(X, self.device, self.dtype), Y.to(self.device)
        )
        if Y.is_floating_point():
            self._source.Y = self._source.Y.to(self.dtype)
        self._finish_setup()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_loader(
        cls,
        model: nn.Module,
        loader: Any,
        loss: LossName | LossFn = "mse",
        *,
        batch_keys: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> Problem:
        """A Problem whose data are read batch by batch from a ``DataLoader``.

        The loader must not shuffle (``shuffle=False``) nor drop samples (``drop_last``): every
        pass must see each sample once, in the same order, so that ``F(w)`` is well defined.
        Its dataset must support indexing (``dataset[i] -> (x, y)``) for mini-batch access by
        index. A batch is an ``(inputs, targets)`` pair, or a dict whose ``batch_keys =
        (inputs_key, targets_key)`` name the two (e.g. ``("x", "y")``); the inputs must be one
        tensor (dict inputs are refused with a clear error). Every batch read is checked like
        the tensor constructor's ``X`` and ``Y`` (finite values, equal lengths, class indices
        in range), the error naming the batch. Other keyword arguments are those of
        :class:`Problem`.
        """
        from torch.utils.data import DataLoader, RandomSampler

        if not isinstance(loader, DataLoader):
            raise TypeError(f"loader must be a torch.utils.data.DataLoader, got {type(loader)}")
        if isinstance(loader.sampler, RandomSampler):
            raise ValueError(
                "the DataLoader shuffles: build it with shuffle=False so that every pass sees "
                "the samples in the same order (lossgeometry draws its own mini-batches)"
            )
        if len(loader.dataset) == 0:
            raise ValueError("the dataset is empty (n = 0): pass at least one sample")
        bs = loader.batch_size
        if loader.drop_last and bs and len(loader.dataset) % bs:
            raise ValueError(
                f"the DataLoader drops its last {len(loader.dataset) % bs} samples "
                "(drop_last=True): build it with drop_last=False so that every pass reads "
                "each sample once"
            )
        if batch_keys is not None and (
            not isinstance(batch_keys, (tuple, list))
            or len(batch_keys) != 2
            or not all(isinstance(k, str) for k in batch_keys)
        ):
            raise TypeError(
                f"batch_keys must be a pair (inputs_key, targets_key), got {batch_keys!r}"
            )
        self = cls.__new__(cls)
        self._setup(
            model,
            loss,
            kwargs.pop("reduction", None),
            kwargs.pop("params", None),
            kwargs.pop("chunk_size", None),
            kwargs.pop("allow_batchnorm", False),
            kwargs.pop("allow_dropout", False),
        )
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")
        keys = tuple(batch_keys) if batch_keys is not None else None
        self._source = _LoaderSource(loader, self.device, self.dtype, keys)
        self._finish_setup()
        return self

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
        self.model = model
        self.allow_batchnorm, self.allow_dropout = allow_batchnorm, allow_dropout
        self._track_modes()
        check_modes(self._norms, self._random, allow_batchnorm, allow_dropout)
        if callable(loss) and not isinstance(loss, str):
            self.loss_name = getattr(loss, "__name__", "custom")
            self._custom_loss: LossFn | None = loss
        elif loss in ("mse", "cross_entropy"):
            self.loss_name, self._custom_loss = loss, None
        else:
            raise ValueError(
                f"unknown loss {loss!r}: use 'mse', 'cross_entropy' or a callable "
                "(outputs, targets) -> per-sample losses of shape (batch,)"
            )
        if reduction is None:
            reduction = "sum" if self.loss_name == "mse" else "mean"
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.reduction: Reduction = reduction
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self._chunk_size_arg = chunk_size

        named = dict(model.named_parameters())
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
            out = self.forward_with(pdict, x)
            if not torch.is_tensor(out):
                raise TypeError(
                    f"the model returned {type(out).__name__}; lossgeometry needs a tensor of "
                    "outputs (wrap the model so that forward returns one tensor)"
                )
            if not self.allow_dropout:
                check_same_outputs(out, self.forward_with(pdict, x))
        if out.shape[0] != x.shape[0]:
            raise ValueError(
                f"the model maps a batch of {x.shape[0]} inputs to outputs of shape "
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
        self._check_targets(out, y)

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
        elif self.loss_name == "cross_entropy" and self._custom_loss is None:
            if y.is_floating_point():
                raise ValueError(
                    "loss='cross_entropy' needs integer class indices as targets, got floats "
                    "(one-hot?); pass Y.argmax(-1) or use loss='mse'"
                )
            if tuple(y.shape[1:]) != self.output_shape[:-1]:
                raise ValueError(
                    f"cross_entropy: outputs per sample have shape {self.output_shape} (classes "
                    f"last), so targets per sample must have shape {self.output_shape[:-1]}, "
                    f"got {tuple(y.shape[1:])}"
                )
            C = self.output_shape[-1]
            if isinstance(self._source, _TensorSource):
                check_class_indices(self._source.Y, C)
            else:  # the probe now, then each batch as it is read
                check_class_indices(y, C, f"the samples {list(range(y.shape[0]))} of the dataset")
                self._source.classes = C

    # ------------------------------------------------------------------ properties
    @property
    def param_names(self) -> list[str]:
        """Names of the parameters that count, in flat-vector order."""
        return [s.name for s in self._param_specs]

    @property
    def param_shapes(self) -> dict[str, torch.Size]:
        """Shape of each counted parameter."""
        return {s.name: s.shape for s in self._param_specs}

    @property
    def param_slices(self) -> dict[str, slice]:
        """Where each counted parameter sits in the flat vector ``w``."""
        return {s.name: slice(s.offset, s.offset + s.numel) for s in self._param_specs}

    @property
    def loss_scale(self) -> float:
        """The factor ``c`` in ``L(w) = c · ½ ‖F(w) − Y‖²`` (MSE only).

        ``c = 1`` for ``"sum"``, ``c = 2/(nk)`` for ``"mean"``. Gradients and Hessians scale by
        the same factor.
        """
        if self.loss_name != "mse" or self._custom_loss is not None:
            raise ValueError("loss_scale is defined for loss='mse' only")
        return 1.0 if self.reduction == "sum" else 2.0 / (self.n * self.k)

    @property
    def is_mse(self) -> bool:
        """Whether the loss is the built-in squared loss (so ``residual`` is meaningful)."""
        return self.loss_name == "mse" and self._custom_loss is None

    def summary(self) -> dict[str, Any]:
        """A JSON-able description: p, n, k, p/(nk), loss and normalization, device, dtype."""
        return {
            "model": type(self.model).__name__,
            "p": self.p,
            "n": self.n,
            "k": self.k,
            "nk": self.n * self.k,
            "overparameterization": self.p / (self.n * self.k),
            "loss": self.loss_name,
            "reduction": self.reduction,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    def __repr__(self) -> str:
        return (
            f"Problem(model={type(self.model).__name__}, p={self.p}, n={self.n}, k={self.k}, "
            f"loss={self.loss_name!r}, reduction={self.reduction!r}, dtype={self.dtype}, "
            f"device={self.device})"
        )

    # ------------------------------------------------------------------ parameters
    def params(self) -> torch.Tensor:
        """The model's current counted parameters as a flat vector ``w ∈ R^p`` (a copy)."""
        named = dict(self.model.named_parameters())
        w = torch.cat([named[s.name].detach().reshape(-1) for s in self._param_specs])
        return w.to(self.dtype) if self._upcast else w.clone()

    def set_params(self, w: torch.Tensor) -> None:
        """Write the flat vector ``w`` into the model's parameters (in place).

        A half-precision model stores ``w`` rounded to its own dtype.
        """
        w = self.check_w(w)
        named = dict(self.model.named_parameters())
        with torch.no_grad():
            for s in self._param_specs:
                named[s.name].copy_(w[s.offset : s.offset + s.numel].view(s.shape))

    # ------------------------------------------------------------------ developer API
    # What measurements build on: parameters of a flat w, the forward on a chunk, the data
    # by chunks or by index, and the checks every entry point makes. Documented in
    # docs/design.md ("The Problem's developer API"); nothing outside this module uses an
    # underscore member.
    @property
    def param_specs(self) -> tuple[ParamSpec, ...]:
        """The counted parameters in flat order: name, shape, size and offset in ``w``."""
        return self._param_specs

    @property
    def custom_loss(self) -> Any:
        """The user's per-sample loss callable, or ``None`` for a named loss."""
        return self._custom_loss

    def batch(
        self, indices: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets ``(x, y)`` of the given samples (all samples if ``None``).

        On the Problem's device and dtype; a loader-backed Problem reads them from its
        dataset (for all samples, every batch of the loader).
        """
        if indices is None:
            if isinstance(self._source, _TensorSource):
                return self._source.X, self._source.Y
            xs, ys = zip(*((x, y) for _, x, y in self._source.chunks(self.chunk_size)), strict=True)
            return torch.cat(xs), torch.cat(ys)
        return self._source.get(self.check_indices(indices))

    def param_dict(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named parameter tensors of a flat ``w``: views, differentiable in ``w``."""
        # one split, not one slice per tensor: the backward of split is a single concatenation,
        # while each slice's backward fills a p-sized zero tensor (p-sized work per tensor and
        # per product, visible in Hessian-vector products of models with many tensors)
        sizes = [s.numel for s in self._param_specs]
        if sum(sizes) != w.shape[-1]:
            raise ValueError(f"w has {w.shape[-1]} entries, the model {sum(sizes)} parameters")
        pieces = torch.split(w, sizes)
        return {s.name: t.view(s.shape) for s, t in zip(self._param_specs, pieces, strict=True)}

    def check_w(self, w: torch.Tensor | None) -> torch.Tensor:
        """A flat point ``w`` checked for shape ``(p,)``, on the Problem's device and dtype.

        ``None`` means the model's current parameters; anything else raises a clear error.
        """
        if w is None:
            return self.params()
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"w must be a torch.Tensor of shape ({self.p},), got {type(w)}")
        if w.shape != (self.p,):
            raise ValueError(
                f"w must have shape ({self.p},) (the flat parameters), got {tuple(w.shape)}"
            )
        if w.dtype != self.dtype or w.device != self.device:
            w = w.to(device=self.device, dtype=self.dtype)
        return w

    def check_v(self, v: torch.Tensor, name: str = "v") -> torch.Tensor:
        """A direction ``(p,)`` or block of directions ``(p, m)`` on the Problem's device/dtype."""
        if v.shape[0] != self.p:
            raise ValueError(
                f"{name} must have shape ({self.p},) or ({self.p}, m), got {tuple(v.shape)}"
            )
        return v.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ functional core
    def forward_with(self, pdict: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The model's raw output on a chunk ``x``, counted parameters from ``pdict``.

        Frozen parameters and buffers come from the model; the result is pure in ``pdict``.
        Checks the modes (train-mode BatchNorm, active dropout) as the constructor does;
        train-mode normalization layers run on batch statistics with their running statistics
        left untouched. Runs in :attr:`dtype`; refuses to run under an active autocast (wrap
        the measurement in :func:`full_precision`, as the views do).
        """
        if autocast_active(self.device):
            raise RuntimeError(
                "torch.autocast is active: a measurement in half precision would be silently "
                "wrong, so lossgeometry measures in full precision. The Problem's own views and "
                "lg.Monitor switch autocast off; call other measurements outside the autocast "
                "region (or inside lossgeometry.problem.full_precision(problem.device))"
            )
        check_modes(self._norms, self._random, self.allow_batchnorm, self.allow_dropout)
        state = {**self._fixed, **dict(self.model.named_buffers())}
        if self._upcast:
            state = {n: _cast(t, None, self.dtype) for n, t in state.items()}
        for mod, names in self._norm_buffers:
            if mod.training:  # batch statistics: no running statistics to read or update
                state.update(dict.fromkeys(names))
        return functional_call(self.model, {**state, **pdict}, (x,))

    def forward(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Model outputs at flat parameters ``w`` on a batch ``x``, flattened to ``(b, k)``.

        Pure in ``w`` (safe under ``torch.func`` transforms), so kernels and Jacobians are
        built from it. ``x`` may also be a single unbatched sample inside ``vmap``.
        """
        out = self.forward_with(self.param_dict(w), x)
        return out.reshape(out.shape[0], -1)

    def _forward_swapped(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.forward(w, x)

    def per_sample_loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample losses ``ℓ_i`` (shape ``(b,)``) from flattened outputs ``(b, k)``.

        ``ℓ_i = ½‖f_i − y_i‖²`` (MSE, ``"sum"``), ``‖f_i − y_i‖²/k`` (MSE, ``"mean"``),
        ``−log softmax(f_i)[y_i]`` (cross-entropy; averaged over extra target positions).
        """
        b = out.shape[0]
        if self._custom_loss is not None:
            losses = self._custom_loss(out.reshape(b, *self.output_shape), y)
            if losses.shape != (b,):
                raise ValueError(
                    f"the custom loss must return per-sample losses of shape ({b},), got "
                    f"{tuple(losses.shape)}; do not reduce over the batch"
                )
            return losses
        if self.loss_name == "mse":
            sq = (out - y.reshape(b, -1)).pow(2).sum(dim=1)
            return 0.5 * sq if self.reduction == "sum" else sq / self.k
        C = self.output_shape[-1]
        logits = out.reshape(-1, C)
        ce = torch.nn.functional.cross_entropy(logits, y.reshape(-1), reduction="none")
        return ce.reshape(b, -1).mean(dim=1)

    def reduce_sum(self, total: torch.Tensor, count: int) -> torch.Tensor:
        """Turn a sum of ``ℓ_i`` over ``count`` samples into an unbiased estimate of ``L``."""
        if self.reduction == "mean":
            return total / count
        return total if count == self.n else total * (self.n / count)

    def iter_chunks(
        self, indices: torch.Tensor | Sequence[int] | None = None, chunk_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(indices, x, y)`` chunks covering the data (or the given sample indices)."""
        cs = chunk_size or self.chunk_size
        if indices is None:
            yield from self._source.chunks(cs)
            return
        idx = self.check_indices(indices)
        for s in range(0, idx.numel(), cs):
            sub = idx[s : s + cs]
            x, y = self._source.get(sub)
            yield sub, x, y

    def check_indices(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Sample indices as a long tensor, checked to lie in ``[0, n)`` and to be non-empty."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("indices is empty: pass at least one sample index")
        if int(idx.min()) < 0 or int(idx.max()) >= self.n:
            raise ValueError(f"sample indices must lie in [0, {self.n - 1}]")
        return idx.cpu() if isinstance(self._source, _LoaderSource) else idx.to(self.device)

    def sample_count(self, indices: torch.Tensor | Sequence[int] | None) -> int:
        """How many samples ``indices`` select (``n`` for ``None``)."""
        return self.n if indices is None else len(torch.as_tensor(indices).reshape(-1))

    # ------------------------------------------------------------------ views
    @_measurement
    @torch.no_grad()
    def F(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Model outputs ``F(w)``, shape ``(n, k)`` (or ``(len(indices), k)``)."""
        w = self.check_w(w)
        return torch.cat([self.forward(w, x) for _, x, _ in self.iter_chunks(indices)])

    @_measurement
    @torch.no_grad()
    def targets(self, indices: Sequence[int] | None = None) -> torch.Tensor:
        """The targets, flattened to ``(n, k)`` for MSE (as stored otherwise)."""
        ys = [y for _, _, y in self.iter_chunks(indices)]
        Y = torch.cat(ys)
        return Y.reshape(Y.shape[0], -1) if self.is_mse else Y

    @_measurement
    @torch.no_grad()
    def residual(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``r(w) = F(w) − Y``, shape ``(n, k)``; MSE only. ``L = loss_scale · ½‖r‖²``."""
        if not self.is_mse:
            raise ValueError("residual() is defined for loss='mse' only")
        w = self.check_w(w)
        return torch.cat(
            [
                self.forward(w, x) - y.reshape(y.shape[0], -1)
                for _, x, y in self.iter_chunks(indices)
            ]
        )

    @_measurement
    @torch.no_grad()
    def per_sample_losses(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Per-sample losses ``ℓ_i(w)``, shape ``(n,)``; see :meth:`per_sample_loss_fn`."""
        w = self.check_w(w)
        return torch.cat(
            [
                self.per_sample_loss_fn(self.forward(w, x), y)
                for _, x, y in self.iter_chunks(indices)
            ]
        )

    def chunk_loss_sum(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``Σ_{i ∈ chunk} ℓ_i(w)`` on a chunk ``(x, y)``: pure in ``w`` (``torch.func``-safe)."""
        return self.per_sample_loss_fn(self.forward(w, x), y).sum()

    @_measurement
    @torch.no_grad()
    def loss(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The loss ``L(w)`` (a 0-d tensor) under the Problem's normalization.

        With ``indices``, the unbiased mini-batch estimate of ``L``: ``(n/b) Σ_{i∈B} ℓ_i``
        for ``"sum"``, ``(1/b) Σ_{i∈B} ℓ_i`` for ``"mean"``.
        """
        w = self.check_w(w)
        total = sum(self.chunk_loss_sum(w, x, y) for _, x, y in self.iter_chunks(indices))
        return self.reduce_sum(total, self.sample_count(indices))

    @_measurement
    def loss_and_grad(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L(w), ∇L(w))`` in one pass over the data (chunked); normalization as :meth:`loss`."""
        w = self.check_w(w).detach()
        g_and_v = torch.func.grad_and_value(self.chunk_loss_sum)
        total = torch.zeros((), device=self.device, dtype=self.dtype)
        g = torch.zeros_like(w)
        for _, x, y in self.iter_chunks(indices):
            gi, li = g_and_v(w, x, y)
            g += gi
            total += li.detach()
        count = self.sample_count(indices)
        return self.reduce_sum(total, count), self.reduce_sum(g, count)

    @_measurement
    def grad(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The gradient ``∇L(w) ∈ R^p`` (chunked); normalization as :meth:`loss`."""
        return self.loss_and_grad(w, indices)[1]

    @_measurement
    def jvp(
        self, w: torch.Tensor | None, v: torch.Tensor, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``DF(w) v``: the directional derivative of the outputs, shape ``(n, k)``.

        ``v`` has shape ``(p,)``; for ``(p, m)`` the result is ``(n, k, m)``.
        """
        w = self.check_w(w).detach()
        v = self.check_v(v)
        if v.ndim == 2:
            return torch.stack([self.jvp(w, v[:, j], indices) for j in range(v.shape[1])], dim=-1)
        outs = []
        for _, x, _ in self.iter_chunks(indices):
            _, t = jvp(functools.partial(self._forward_swapped, x), (w,), (v,))
            outs.append(t.detach())
        return torch.cat(outs)

    @_measurement
    def vjp(
        self, w: torch.Tensor | None, u: torch.Tensor, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``DF(w)ᵀ u ∈ R^p`` for ``u`` of shape ``(n, k)`` (one row per selected sample)."""
        w = self.check_w(w).detach()
        m = self.sample_count(indices)
        if u.shape[0] != m or u[0].numel() != self.k:
            raise ValueError(f"u must have shape ({m}, {self.k}), got {tuple(u.shape)}")
        u = u.reshape(m, self.k).to(device=self.device, dtype=self.dtype)
        out = torch.zeros_like(w)
        pos = 0
        for _, x, _ in self.iter_chunks(indices):
            b = x.shape[0]
            _, pullback = vjp(functools.partial(self._forward_swapped, x), w)
            out += pullback(u[pos : pos + b])[0]
            pos += b
        return out.detach()

    @_measurement
    def hvp(
        self, w: torch.Tensor | None, v: torch.Tensor, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The loss Hessian-vector product ``∇²L(w) v`` (forward-over-reverse, chunked).

        ``v`` of shape ``(p,)`` or ``(p, m)`` (then ``m`` products, vectorized with ``vmap``).
        Normalization as :meth:`loss`.
        """
        w = self.check_w(w).detach()
        v = self.check_v(v)
        gfun = grad(self.chunk_loss_sum)
        out = torch.zeros_like(v)
        for _, x, y in self.iter_chunks(indices):

            def hv(vec: torch.Tensor, x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                return jvp(lambda w_: gfun(w_, x, y), (w,), (vec,))[1]

            out += hv(v) if v.ndim == 1 else torch.func.vmap(hv, in_dims=1, out_dims=1)(v)
        return self.reduce_sum(out, self.sample_count(indices)).detach()

    # ------------------------------------------------------------------ copies
    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Problem:
        """A copy on another device or dtype (the model is deep-copied; data are cast).

        ``problem.to(dtype=torch.float64)`` gives the reference copy used by dense oracles.
        Integer targets keep their dtype. The copy of a half-precision model is converted to
        float32 (the dtype it is measured in); ``dtype=torch.float16`` gives a float16 model
        measured in float32, as the constructor does.
        """
        device = torch.device(device) if device is not None else None
        new = copy.copy(self)
        # a half-precision model's copy is converted to the dtype it is measured in
        model_dtype = dtype if dtype is not None else (self.dtype if self._upcast else None)
        new.model = copy.deepcopy(self.model).to(device=device, dtype=model_dtype)
        new.device = device or self.device
        named = dict(new.model.named_parameters())
        new._set_dtype(named[self._param_specs[0].name].dtype)
        new._fixed = {n: named[n].detach() for n in self._fixed}
        new._track_modes()
        new._source = self._source.to(device, new.dtype)
        return new

    def with_params(self, w: torch.Tensor) -> Problem:
        """A copy whose model holds the parameters ``w`` (the original is untouched)."""
        new = self.to()
        new.set_params(w)
        return new
