"""Where a :class:`~lossgeometry.Problem` reads its data: two tensors, or a ``DataLoader``.

Both sources give the same three things: ``len`` (the number of samples ``n``), ``get(idx)``
(the samples ``idx``) and ``chunks(size)`` (``(indices, x, y)`` covering the data in order).
The loader source checks every batch it reads as the tensor constructor checks ``X`` and
``Y`` (inputs and targets are tensors of the same length, finite, class indices in range), and
names the batch in its error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from lossgeometry._checks import check_class_indices, check_finite

Chunk = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _cast(t: torch.Tensor, device: torch.device | None, dtype: torch.dtype | None) -> torch.Tensor:
    """Move ``t`` to ``device``; change its dtype only if it is floating point."""
    if dtype is not None and t.is_floating_point():
        return t.to(device=device, dtype=dtype)
    return t.to(device=device)


def dict_inputs_error(subject: str, keys: Any) -> TypeError:
    """The error for data given as a dict of tensors: one input tensor is needed.

    ``subject`` starts the sentence: ``"X is"``, ``"the inputs of batch 0 are"``.
    """
    return TypeError(
        f"{subject} a dict (keys {sorted(map(str, keys))}): lossgeometry's "
        "measurements take one input tensor of shape (n, ...) per batch; dict inputs are not "
        "supported yet. Wrap the model in a module whose forward takes one tensor (e.g. "
        "concatenate or stack the fields and split them inside forward)"
    )


class _TensorSource:
    """Data held as two tensors on the model's device."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        self.X, self.Y = X, Y

    def __len__(self) -> int:
        return self.X.shape[0]

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[idx], self.Y[idx]

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        n = len(self)
        for start in range(0, n, chunk_size):
            idx = torch.arange(start, min(start + chunk_size, n))
            yield idx, self.X[start : start + chunk_size], self.Y[start : start + chunk_size]

    def to(self, device: torch.device | None, dtype: torch.dtype | None) -> _TensorSource:
        return _TensorSource(_cast(self.X, device, dtype), _cast(self.Y, device, dtype))


class _LoaderSource:
    """Data read batch by batch from a non-shuffling ``torch.utils.data.DataLoader``.

    A batch is an ``(inputs, targets)`` pair, or a dict from which ``batch_keys =
    (inputs_key, targets_key)`` pick the two. Every batch read is checked (see the module
    docstring); ``classes`` (set once the model's output size is known, cross-entropy only)
    enables the class-index check.
    """

    def __init__(
        self,
        loader: Any,
        device: torch.device,
        dtype: torch.dtype | None,
        batch_keys: tuple[str, str] | None = None,
        classes: int | None = None,
    ) -> None:
        self.loader, self.device, self.dtype = loader, device, dtype
        self.batch_keys, self.classes = batch_keys, classes

    def __len__(self) -> int:
        return len(self.loader.dataset)

    def split(self, batch: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` of one collated batch, with clear errors for other shapes."""
        if isinstance(batch, Mapping):
            if self.batch_keys is None:
                raise TypeError(
                    f"the DataLoader yields dict batches (keys {sorted(map(str, batch))}): say "
                    "which key holds the inputs and which the targets, e.g. "
                    "Problem.from_loader(model, loader, batch_keys=('x', 'y'))"
                )
            missing = [k for k in self.batch_keys if k not in batch]
            if missing:
                raise ValueError(
                    f"batch_keys {self.batch_keys}: {where} has no key(s) {missing}; its keys "
                    f"are {sorted(map(str, batch))}"
                )
            x, y = batch[self.batch_keys[0]], batch[self.batch_keys[1]]
        elif isinstance(batch, (tuple, list)) and len(batch) == 2:
            x, y = batch
        else:
            raise TypeError(
                "from_loader expects a DataLoader whose batches are (inputs, targets) pairs "
                f"(or dicts, with batch_keys); got a batch of type {type(batch).__name__}"
            )
        for label, t in (("inputs", x), ("targets", y)):
            if isinstance(t, Mapping):
                raise dict_inputs_error(f"the {label} of {where} are", t.keys())
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"the {label} of {where} are {type(t).__name__}, not a tensor: the "
                    "dataset must return tensors (or numbers the default collate turns into one)"
                )
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{where} has inputs of shape {tuple(x.shape)} and targets of shape "
                f"{tuple(y.shape)}: both need the same leading sample dimension"
            )
        return x, y

    def check(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        where: str,
        *,
        offset: int = 0,
        indices: torch.Tensor | None = None,
    ) -> None:
        """The tensor constructor's checks on one batch: finite data, class indices in range."""
        hint = "clean or impute the data in the dataset"
        check_finite(x, f"{where} (inputs)", offset=offset, indices=indices, hint=hint)
        check_finite(y, f"{where} (targets)", offset=offset, indices=indices, hint=hint)
        if self.classes is not None:
            check_class_indices(y, self.classes, where)

    def _move(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _cast(x, self.device, self.dtype), _cast(y, self.device, self.dtype)

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
            size = x.shape[0]
            if start + size > n:
                raise ValueError(
                    f"the DataLoader yields more samples than its dataset holds ({n}): "
                    "lossgeometry needs every pass to read each sample once"
                )
            for s in range(0, size, chunk_size):
                idx = torch.arange(start + s, start + min(s + chunk_size, size))
                yield idx, x[s : s + chunk_size], y[s : s + chunk_size]
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
