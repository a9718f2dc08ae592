"""Where a :class:`~lossgeometry.Problem` reads its data: tensors, or a ``DataLoader``.

Both sources give the same three things: ``len`` (the number of samples ``n``), ``get(idx)``
(the samples ``idx``) and ``chunks(size)`` (``(indices, x, y)`` covering the data in order).
Inputs ``x`` are a tensor or a pytree of tensors (:mod:`lossgeometry._problem_inputs`); the
targets ``y`` are one tensor. The loader source checks every batch it reads as the tensor
constructor checks ``X`` and ``Y`` (tensors of the same length, finite, class indices in
range), and names the batch in its error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from lossgeometry._checks import check_class_indices, check_finite
from lossgeometry._problem_inputs import (
    Inputs,
    cast_inputs,
    check_finite_inputs,
    check_input_tree,
    input_count,
    normalize_inputs,
    slice_inputs,
    take_inputs,
)

Chunk = tuple[torch.Tensor, Inputs, torch.Tensor]


def _cast(t: torch.Tensor, device: torch.device | None, dtype: torch.dtype | None) -> torch.Tensor:
    """Move ``t`` to ``device``; change its dtype only if it is floating point."""
    if dtype is not None and t.is_floating_point():
        return t.to(device=device, dtype=dtype)
    return t.to(device=device)


def check_batch_keys(batch_keys: Any) -> tuple[str | tuple[str, ...], str] | None:
    """``batch_keys`` of ``from_loader`` checked: ``(inputs_key or keys, targets_key)``."""
    if batch_keys is None:
        return None
    ok = (
        isinstance(batch_keys, (tuple, list))
        and len(batch_keys) == 2
        and isinstance(batch_keys[1], str)
        and (
            isinstance(batch_keys[0], str)
            or (
                isinstance(batch_keys[0], (tuple, list))
                and len(batch_keys[0]) > 0
                and all(isinstance(k, str) for k in batch_keys[0])
            )
        )
    )
    if not ok:
        raise TypeError(
            "batch_keys must be a pair (inputs_key, targets_key), inputs_key a key or a "
            f"tuple of keys, got {batch_keys!r}"
        )
    xkey = batch_keys[0] if isinstance(batch_keys[0], str) else tuple(batch_keys[0])
    return xkey, batch_keys[1]


class _TensorSource:
    """Data held as tensors on the model's device: inputs (a tensor or a pytree), targets."""

    def __init__(self, X: Inputs, Y: torch.Tensor) -> None:
        self.X, self.Y = X, Y

    def __len__(self) -> int:
        return input_count(self.X)

    def get(self, idx: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
        return take_inputs(self.X, idx), self.Y[idx]

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        n = len(self)
        for start in range(0, n, chunk_size):
            idx = torch.arange(start, min(start + chunk_size, n))
            stop = start + chunk_size
            yield idx, slice_inputs(self.X, start, stop), self.Y[start:stop]

    def to(self, device: torch.device | None, dtype: torch.dtype | None) -> _TensorSource:
        return _TensorSource(cast_inputs(self.X, device, dtype), _cast(self.Y, device, dtype))


class _LoaderSource:
    """Data read batch by batch from a non-shuffling ``torch.utils.data.DataLoader``.

    A batch is an ``(inputs, targets)`` pair, or a dict from which ``batch_keys =
    (inputs_key, targets_key)`` pick the two; ``inputs_key`` may be a tuple of keys, whose
    entries then form a dict of inputs (``model(**inputs)``, HuggingFace style). Every batch
    read is checked (see the module docstring); ``classes`` (set once the model's output size
    is known, cross-entropy and NLL only) enables the class-index check.
    """

    def __init__(
        self,
        loader: Any,
        device: torch.device,
        dtype: torch.dtype | None,
        batch_keys: tuple[str | tuple[str, ...], str] | None = None,
        classes: int | None = None,
    ) -> None:
        self.loader, self.device, self.dtype = loader, device, dtype
        self.batch_keys, self.classes = batch_keys, classes

    def __len__(self) -> int:
        return len(self.loader.dataset)

    def split(self, batch: Any, where: str) -> tuple[Inputs, torch.Tensor]:
        """``(inputs, targets)`` of one collated batch, with clear errors for other shapes."""
        if isinstance(batch, Mapping):
            if self.batch_keys is None:
                raise TypeError(
                    f"the DataLoader yields dict batches (keys {sorted(map(str, batch))}): say "
                    "which key holds the inputs and which the targets, e.g. "
                    "Problem.from_loader(model, loader, batch_keys=('x', 'y'))"
                )
            xkey, ykey = self.batch_keys
            xkeys = list(xkey) if isinstance(xkey, (tuple, list)) else [xkey]
            missing = [k for k in [*xkeys, ykey] if k not in batch]
            if missing:
                raise ValueError(
                    f"batch_keys {self.batch_keys}: {where} has no key(s) {missing}; its keys "
                    f"are {sorted(map(str, batch))}"
                )
            x = {k: batch[k] for k in xkeys} if isinstance(xkey, (tuple, list)) else batch[xkey]
            y = batch[ykey]
        elif isinstance(batch, (tuple, list)) and len(batch) == 2:
            x, y = batch
        else:
            raise TypeError(
                "from_loader expects a DataLoader whose batches are (inputs, targets) pairs "
                f"(or dicts, with batch_keys); got a batch of type {type(batch).__name__}"
            )
        if not isinstance(y, torch.Tensor):
            raise TypeError(
                f"the targets of {where} are {type(y).__name__}, not a tensor: the "
                "dataset must return tensors (or numbers the default collate turns into one)"
            )
        x = normalize_inputs(x)
        nx = check_input_tree(x, f"the inputs of {where}")
        if y.ndim == 0 or nx != y.shape[0]:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else f"({nx}, ...)"
            raise ValueError(
                f"{where} has inputs of shape {shape} and targets of shape "
                f"{tuple(y.shape)}: both need the same leading sample dimension"
            )
        return x, y

    def check(
        self,
        x: Inputs,
        y: torch.Tensor,
        where: str,
        *,
        offset: int = 0,
        indices: torch.Tensor | None = None,
    ) -> None:
        """The tensor constructor's checks on one batch: finite data, class indices in range."""
        hint = "clean or impute the data in the dataset"
        check_finite_inputs(x, f"{where} (inputs)", offset=offset, indices=indices, hint=hint)
        check_finite(y, f"{where} (targets)", offset=offset, indices=indices, hint=hint)
        if self.classes is not None:
            check_class_indices(y, self.classes, where)

    def _move(self, x: Inputs, y: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
        return cast_inputs(x, self.device, self.dtype), _cast(y, self.device, self.dtype)

    def get(self, idx: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
        items = [self.loader.dataset[int(i)] for i in idx]
        shown = idx[:8].tolist()
        where = f"the samples {shown}{' ...' if idx.numel() > 8 else ''} of the dataset"
        x, y = self.split(self.loader.collate_fn(items), where)
        self.check(x, y, where, indices=idx)
        return self._move(x, y)

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        start, n = 0, len(self)
        for b, batch in enumerate(self.loader):
            where = f"batch {b} of the DataLoader"
            x, y = self.split(batch, where)
            self.check(x, y, where, offset=start)
            x, y = self._move(x, y)
            size = input_count(x)
            if start + size > n:
                raise ValueError(
                    f"the DataLoader yields more samples than its dataset holds ({n}): "
                    "lossgeometry needs every pass to read each sample once"
                )
            for s in range(0, size, chunk_size):
                idx = torch.arange(start + s, start + min(s + chunk_size, size))
                yield idx, slice_inputs(x, s, s + chunk_size), y[s : s + chunk_size]
            start += size
        if start != n:
            raise ValueError(
                f"the DataLoader yielded {start} samples but its dataset holds {n} (drop_last or "
                "a custom sampler?): every pass must read each sample once"
            )

    def to(self, device: torch.device | None, dtype: torch.dtype | None) -> _LoaderSource:
        return _LoaderSource(
            self.loader, device or self.device, dtype or self.dtype, self.batch_keys, self.classes
        )
