"""Data sets for loss-geometry experiments, loaded into memory without any download.

Built in: ``digits`` (scikit-learn), ``mnist1d`` (generated locally), ``synthetic-regression``,
``synthetic-classification``; read from a local directory: ``mnist:DIR``,
``fashion-mnist:DIR`` (IDX files) and ``cifar10:DIR`` (CIFAR-10 binary batches).

Examples
--------
>>> import lossgeometry as lg
>>> X, Y = lg.data.load("digits", n=200, seed=0)              # standardized inputs, class labels
>>> X.shape, Y.shape, Y.dtype
(torch.Size([200, 64]), torch.Size([200]), torch.int64)
>>> abs(float(X.mean())) < 1e-6
True
>>> ds = lg.data.load("synthetic-regression", n=50, d=5, k=2)
>>> ds.X.shape, ds.Y.shape
(torch.Size([50, 5]), torch.Size([50, 2]))
>>> "mnist1d" in lg.data.available()
True
"""

from lossgeometry.data._dataset import DataSet
from lossgeometry.data._errors import DataFilesNotFoundError, DataFormatError
from lossgeometry.data.cifar import read_cifar_batch, read_cifar_batches
from lossgeometry.data.idx import read_idx, read_mnist_images, read_mnist_labels
from lossgeometry.data.loading import load
from lossgeometry.data.registry import available, register

__all__ = [
    "DataFilesNotFoundError",
    "DataFormatError",
    "DataSet",
    "available",
    "load",
    "read_cifar_batch",
    "read_cifar_batches",
    "read_idx",
    "read_mnist_images",
    "read_mnist_labels",
    "register",
]
