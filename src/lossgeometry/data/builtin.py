"""Loaders of the built-in data sets; :func:`lossgeometry.data.load` dispatches to them.

Each loader has the signature ``loader(root, *, seed, n, classes, **options) -> RawData``.
``n`` and ``classes`` are only hints (e.g. to generate no more samples than needed); the
class filter, subsampling and standardization are applied afterwards, identically for
all data sets, by :func:`lossgeometry.data._pipeline.finalize`.

The loaders live by kind: :mod:`~lossgeometry.data.bundled` (digits, MNIST-1D),
:mod:`~lossgeometry.data.synthetic` (synthetic regression and classification) and
:mod:`~lossgeometry.data.local_files` (MNIST, Fashion-MNIST, CIFAR-10 from a directory);
this module gathers them for the registry.
"""

from lossgeometry.data.bundled import load_digits, load_mnist1d
from lossgeometry.data.local_files import load_cifar10, load_fashion_mnist, load_mnist
from lossgeometry.data.synthetic import (
    SYNTHETIC_DEFAULT_N,
    load_synthetic_classification,
    load_synthetic_regression,
)

__all__ = [
    "SYNTHETIC_DEFAULT_N",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist1d",
    "load_synthetic_classification",
    "load_synthetic_regression",
]
