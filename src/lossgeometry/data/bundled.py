"""Data sets that need no files: scikit-learn's digits and MNIST-1D (generated locally).

Loader signature: ``loader(root, *, seed, n, classes, **options) -> RawData`` (see
:mod:`lossgeometry.data.builtin`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lossgeometry.data._checks import check_split, positive_int
from lossgeometry.data._pipeline import RawData

__all__ = ["load_digits", "load_mnist1d"]

_MNIST1D_TRAIN_SPLIT = 0.8  # mnist1d's own default; kept so the split matches the reference


def load_digits(
    root: Path | None, *, seed: int, n: int | None, classes: list[int] | None
) -> RawData:
    """Scikit-learn's bundled 8x8 handwritten digits (1797 samples, no download).

    Parameters
    ----------
    root : None
        Unused (the data ships with scikit-learn).
    seed, n, classes
        Unused here; applied by ``finalize``.

    Returns
    -------
    RawData
        ``X`` of shape ``(1797, 64)`` (flattened 8x8 images, values ``0..16``, scaled by
        ``1/16`` to ``[0, 1]``), ``Y`` labels ``0..9``.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return RawData(
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=np.asarray(bunch.target, dtype=np.int64),
        task="classification",
        num_classes=10,
        x_scale=1.0 / 16.0,
        meta={"source": "sklearn.datasets.load_digits"},
        class_names=[str(i) for i in range(10)],
    )


@contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """Restore Python's and numpy's global RNG state (mnist1d seeds them globally)."""
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


def _mnist1d_split_size(total: int, split: str) -> int:
    per_class_total = (total // 10) * 10  # make_dataset draws total // 10 per class
    n_train = int(per_class_total * _MNIST1D_TRAIN_SPLIT)
    return n_train if split == "train" else per_class_total - n_train


def load_mnist1d(
    root: Path | None,
    *,
    seed: int,
    n: int | None,
    classes: list[int] | None,
    split: str = "train",
    num_samples: int = 5000,
) -> RawData:
    """MNIST-1D, generated locally with ``mnist1d.data.make_dataset`` (never downloaded).

    Parameters
    ----------
    root : None
        Unused.
    seed : int
        Seed of the generator (``args.seed``); also the subsampling seed.
    n : int or None
        When given (and ``classes`` is not), only the smallest multiple of 10 samples whose
        ``split`` part holds ``n`` rows is generated, so small requests are fast. Different
        ``n`` therefore give different (not nested) samples.
    classes : list of int or None
        When given, the full ``num_samples`` are generated.
    split : {"train", "test"}, default "train"
        MNIST-1D's 80/20 split of the generated samples.
    num_samples : int, default 5000
        Total samples of the full data set (5000 is the reference MNIST-1D: 4000 train,
        1000 test).

    Returns
    -------
    RawData
        ``X`` of shape ``(N, 40)`` as produced by mnist1d (already centred and scaled
        globally), ``Y`` labels ``0..9``.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    split = check_split(split)
    num_samples = positive_int(num_samples, "num_samples")
    if num_samples < 10:
        raise ValueError(f"num_samples must be >= 10 (one per class), got {num_samples}")
    total = num_samples
    full = _mnist1d_split_size(num_samples, split)
    if n is not None and n > full:  # fail before spending time generating
        raise ValueError(
            f"mnist1d: n={n} requested but only {full} samples are available (the {split} part "
            f"of num_samples={num_samples}); pass n <= {full}, or num_samples=... to generate more"
        )
    if n is not None and classes is None:
        total = 10
        while total < num_samples and _mnist1d_split_size(total, split) < n:
            total += 10
        total = min(total, num_samples)
    args = get_dataset_args()
    args.num_samples = total
    args.seed = seed
    args.train_split = _MNIST1D_TRAIN_SPLIT
    with _preserved_global_rng():
        data = make_dataset(args)
    key_x, key_y = ("x", "y") if split == "train" else ("x_test", "y_test")
    args_meta = {k: v for k, v in vars(args).items() if k != "url"}
    return RawData(
        X=np.asarray(data[key_x], dtype=np.float64),
        Y=np.asarray(data[key_y], dtype=np.int64),
        task="classification",
        num_classes=10,
        meta={
            "source": "mnist1d.data.make_dataset (generated locally)",
            "split": split,
            "num_samples_generated": total,
            "mnist1d_args": args_meta,
        },
        class_names=[str(i) for i in range(10)],
        more_hint=(
            f" (the {split} part of num_samples={num_samples}); pass num_samples=... to "
            "generate more"
        ),
    )
