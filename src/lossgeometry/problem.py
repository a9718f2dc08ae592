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

The class is assembled from parts split by job: construction and its checks
(:mod:`lossgeometry._problem_setup`), the data sources (:mod:`lossgeometry._problem_data`),
the developer API that measurements build on (:mod:`lossgeometry._problem_api`: parameters of
a flat ``w``, the forward on a chunk, chunks, checks) and the functional views
(:mod:`lossgeometry._problem_views`); the precision rule is :mod:`lossgeometry._precision`.

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
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lossgeometry._checks import check_finite
from lossgeometry._collectives import ShardInfo
from lossgeometry._precision import (
    HALF_DTYPES,
    PrecisionWarning,
    autocast_active,
    full_precision,
    measurement_dtype,
)
from lossgeometry._problem_api import DeveloperAPI
from lossgeometry._problem_data import _LoaderSource, _TensorSource, check_batch_keys
from lossgeometry._problem_inputs import (
    Inputs,
    call_args,
    cast_inputs,
    check_finite_inputs,
    check_input_tree,
    concat_inputs,
    input_count,
    map_inputs,
    normalize_inputs,
    slice_inputs,
    take_inputs,
)
from lossgeometry._problem_parallel import DataParallelAPI, ShardedSource
from lossgeometry._problem_setup import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_REDUCTION,
    LossFn,
    LossName,
    ParamSpec,
    ProblemSetup,
    Reduction,
    default_reduction,
)
from lossgeometry._problem_views import FunctionalViews

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_REDUCTION",
    "HALF_DTYPES",
    "Inputs",
    "LossFn",
    "LossName",
    "ParamSpec",
    "PrecisionWarning",
    "Problem",
    "Reduction",
    "autocast_active",
    "call_args",
    "concat_inputs",
    "default_reduction",
    "full_precision",
    "input_count",
    "map_inputs",
    "measurement_dtype",
    "slice_inputs",
    "take_inputs",
]


class Problem(ProblemSetup, DeveloperAPI, DataParallelAPI, FunctionalViews):
    """A model, its data and a loss, as functions of a flat parameter vector ``w ∈ R^p``.

    Args:
        model: any ``torch.nn.Module`` mapping a batch of inputs ``(b, ...)`` to outputs
            ``(b, ...)``. Device and dtype follow its parameters; a float16/bfloat16 model is
            measured in float32 (:attr:`dtype`; the model is not changed, see the module
            docstring). A ``DistributedDataParallel`` or ``DataParallel`` wrapper is
            unwrapped: the Problem's :attr:`model` is its ``.module``.
        X: inputs: a tensor ``(n, ...)``, or a tuple/dict of tensors (any pytree) whose
            tensors all have ``n`` samples along their first dimension. A tensor is passed as
            ``model(x)``, a tuple as ``model(*x)``, a dict as ``model(**x)`` (keyword inputs,
            HuggingFace style); floating tensors take the model's dtype, integer ones (token
            ids, masks) keep theirs.
        Y: targets, shape ``(n, ...)``: floats for ``"mse"`` (reshaped to ``(n, k)``), class
            indices (int64) for ``"cross_entropy"``.
        loss: ``"mse"``, ``"cross_entropy"`` or a callable returning per-sample losses
            ``(b,)`` from ``(outputs, targets)``.
        reduction: ``"sum"`` or ``"mean"``; see the module docstring for the exact formulas.
            Default: the loss's own (:data:`DEFAULT_REDUCTION`, the same in configs):
            ``"sum"`` for MSE (``L = ½ Σ‖f_i − y_i‖²``, the PL* paper's), ``"mean"``
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
        TypeError: a model that is not an ``nn.Module``, targets that are not a tensor, or
            inputs with a leaf that is not a tensor.
    """

    def __init__(
        self,
        model: nn.Module,
        X: Inputs,
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
        if isinstance(Y, Mapping) or not isinstance(Y, torch.Tensor):
            raise TypeError(
                f"Y must be a torch.Tensor, got {type(Y).__name__}; "
                "convert with torch.as_tensor(...) or use Problem.from_loader"
            )
        X = normalize_inputs(X)
        nx = check_input_tree(X, "X")
        if Y.ndim == 0:
            raise ValueError("X and Y must have a leading sample dimension (shape (n, ...))")
        if nx != Y.shape[0]:
            raise ValueError(
                f"X has {nx} samples but Y has {Y.shape[0]}: they must have the same "
                "length along the first dimension"
            )
        if nx == 0:
            raise ValueError("the dataset is empty (n = 0): pass at least one sample")
        check_finite_inputs(X, "X")
        check_finite(Y, "Y")
        self._setup(model, loss, reduction, params, chunk_size, allow_batchnorm, allow_dropout)
        self._source: _TensorSource | _LoaderSource = _TensorSource(
            cast_inputs(X, self.device, self.dtype), Y.to(self.device)
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
        batch_keys: tuple[str | tuple[str, ...], str] | None = None,
        **kwargs: Any,
    ) -> Problem:
        """A Problem whose data are read batch by batch from a ``DataLoader``.

        The loader must not shuffle (``shuffle=False``) nor drop samples (``drop_last``): every
        pass must see each sample once, in the same order, so that ``F(w)`` is well defined.
        Its dataset must support indexing (``dataset[i] -> (x, y)``) for mini-batch access by
        index. A batch is an ``(inputs, targets)`` pair, or a dict whose ``batch_keys =
        (inputs_key, targets_key)`` name the two (e.g. ``("x", "y")``; ``inputs_key`` may be a
        tuple of keys, e.g. ``(("input_ids", "attention_mask"), "labels")``, whose entries form
        a dict of keyword inputs). The inputs may be a tensor or any pytree of tensors, called
        as the constructor's ``X`` is. Every batch read is checked like
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
        keys = check_batch_keys(batch_keys)
        self._source = _LoaderSource(loader, self.device, self.dtype, keys)
        self._finish_setup()
        return self

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

    def subset(self, indices: torch.Tensor | Sequence[int]) -> Problem:
        """The same model, loss and reduction on the samples ``indices`` only.

        The samples are read once and held as tensors (a loader-backed Problem gives a tensor
        one); ``n`` becomes ``len(indices)``, so ``L`` is normalized over the subset (for
        ``"mean"``, ``(1/|S|) Σ_{i∈S} ℓ_i``). The model is shared, not copied.
        """
        idx = self.check_indices(indices)
        info = self.shard
        if info is not None:
            return self._data_parallel_subset(idx, info)
        x, y = self._source.get(idx)
        new = copy.copy(self)
        new._source = _TensorSource(x, y)
        new.n = idx.numel()
        new.chunk_size = self._chunk_size_arg or min(new.n, DEFAULT_CHUNK_SIZE)
        return new

    def _data_parallel_subset(self, idx: torch.Tensor, info: ShardInfo) -> Problem:
        """``subset`` of a data-parallel Problem: each rank keeps its own selected samples."""
        owners = [info.owner(int(i)) for i in idx.cpu()]
        if owners != sorted(owners):
            raise ValueError(
                "the subset of a data-parallel Problem must list each rank's samples together "
                "and in rank order (e.g. sorted indices), so that every rank keeps one "
                "contiguous block of the subset"
            )
        counts = tuple(owners.count(r) for r in range(info.world_size))
        if min(counts) == 0:
            raise ValueError(
                f"the subset leaves rank(s) {[r for r, c in enumerate(counts) if not c]} without "
                "samples: every rank of a data-parallel Problem needs at least one"
            )
        mine = idx[torch.tensor([o == info.rank for o in owners], device=idx.device)]
        x, y = self._source.get(mine)
        offsets = tuple(sum(counts[:r]) for r in range(info.world_size))
        new = copy.copy(self)
        new._source = ShardedSource(
            _TensorSource(x, y), dataclasses.replace(info, counts=counts, offsets=offsets)
        )
        new.n = idx.numel()
        new.chunk_size = self._chunk_size_arg or min(counts[info.rank], DEFAULT_CHUNK_SIZE)
        return new

    def with_shard(self, info: ShardInfo) -> Problem:
        """The Problem of this rank as one shard of a data-parallel Problem (developer API).

        Use :func:`lossgeometry.distributed.data_parallel`, which checks that the ranks agree
        and builds ``info``. The model is shared, not copied.
        """
        if self.shard is not None:
            raise ValueError("this Problem is already data-parallel")
        if info.counts[info.rank] != self.n:
            raise ValueError(
                f"the shard says rank {info.rank} holds {info.counts[info.rank]} samples, "
                f"the Problem has {self.n}"
            )
        new = copy.copy(self)
        new._source = ShardedSource(self._source, info)
        new.n = info.n
        return new

    def with_samples(self, X: Inputs, Y: torch.Tensor) -> Problem:
        """The same model, loss and settings on the samples ``(X, Y)``, held as tensors.

        Developer API (:func:`lossgeometry.distributed.gather` builds the one-process Problem
        of a data-parallel one with it); ``X`` and ``Y`` must be on the Problem's device and
        dtype.
        """
        new = copy.copy(self)
        new._source = _TensorSource(X, Y)
        new.n = len(new._source)
        new.chunk_size = self._chunk_size_arg or min(new.n, DEFAULT_CHUNK_SIZE)
        return new

    def with_params(self, w: torch.Tensor) -> Problem:
        """A copy whose model holds the parameters ``w`` (the original is untouched)."""
        new = self.to()
        new.set_params(w)
        return new
