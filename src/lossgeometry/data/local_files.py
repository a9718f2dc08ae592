"""Data sets read from a local directory: MNIST and Fashion-MNIST (IDX), CIFAR-10 (binary).

Nothing is downloaded; the readers are :mod:`lossgeometry.data.idx` and
:mod:`lossgeometry.data.cifar`. Loader signature: ``loader(root, *, seed, n, classes,
**options) -> RawData`` (see :mod:`lossgeometry.data.builtin`).
"""

from __future__ import annotations

from pathlib import Path

from lossgeometry.data._checks import check_split
from lossgeometry.data._pipeline import RawData
from lossgeometry.data.cifar import CIFAR10_CLASSES, load_cifar10_arrays
from lossgeometry.data.idx import FASHION_MNIST_CLASSES, load_mnist_arrays

__all__ = ["load_cifar10", "load_fashion_mnist", "load_mnist"]


def _mnist_like(root: Path | None, split: str, subdir: str, names: list[str]) -> RawData:
    if root is None:  # pragma: no cover - guarded by the registry
        raise ValueError("a data directory is required")
    images, labels, meta = load_mnist_arrays(root, split=check_split(split), subdir=subdir)
    meta["split"] = split
    return RawData(
        X=images,
        Y=labels,
        task="classification",
        num_classes=10,
        x_scale=1.0 / 255.0,
        meta=meta,
        class_names=names,
    )


def load_mnist(
    root: Path | None,
    *,
    seed: int,
    n: int | None,
    classes: list[int] | None,
    split: str = "train",
) -> RawData:
    """MNIST from local IDX files (see :func:`lossgeometry.data.idx.find_mnist_files`).

    Parameters
    ----------
    root : pathlib.Path
        Directory with ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``
        (``t10k-*`` for ``split="test"``).
    seed, n, classes
        Unused here; applied by ``finalize``.
    split : {"train", "test"}, default "train"
        Which files to read.

    Returns
    -------
    RawData
        ``X`` ``uint8`` of shape ``(N, 1, rows, cols)`` scaled by ``1/255`` to ``[0, 1]``,
        ``Y`` labels ``0..9``.
    """
    return _mnist_like(root, split, "MNIST", [str(i) for i in range(10)])


def load_fashion_mnist(
    root: Path | None,
    *,
    seed: int,
    n: int | None,
    classes: list[int] | None,
    split: str = "train",
) -> RawData:
    """Fashion-MNIST from local IDX files (same layout and file names as MNIST).

    Parameters
    ----------
    root : pathlib.Path
        Directory with ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``
        (``t10k-*`` for ``split="test"``).
    seed, n, classes
        Unused here; applied by ``finalize``.
    split : {"train", "test"}, default "train"
        Which files to read.

    Returns
    -------
    RawData
        ``X`` ``uint8`` of shape ``(N, 1, rows, cols)`` scaled by ``1/255`` to ``[0, 1]``,
        ``Y`` labels ``0..9``.
    """
    return _mnist_like(root, split, "FashionMNIST", list(FASHION_MNIST_CLASSES))


def load_cifar10(
    root: Path | None,
    *,
    seed: int,
    n: int | None,
    classes: list[int] | None,
    split: str = "train",
) -> RawData:
    """CIFAR-10 from the local binary version (see :mod:`lossgeometry.data.cifar`).

    Parameters
    ----------
    root : pathlib.Path
        Directory with ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``,
        or with the extracted ``cifar-10-batches-bin`` folder.
    seed, n, classes
        Unused here; applied by ``finalize``.
    split : {"train", "test"}, default "train"
        Which files to read.

    Returns
    -------
    RawData
        ``X`` ``uint8`` of shape ``(N, 3, 32, 32)`` scaled by ``1/255`` to ``[0, 1]``, ``Y``
        labels ``0..9``.
    """
    if root is None:  # pragma: no cover - guarded by the registry
        raise ValueError("a data directory is required")
    images, labels, meta = load_cifar10_arrays(root, split=check_split(split))
    meta["split"] = split
    return RawData(
        X=images,
        Y=labels,
        task="classification",
        num_classes=10,
        x_scale=1.0 / 255.0,
        meta=meta,
        class_names=list(CIFAR10_CLASSES),
    )
