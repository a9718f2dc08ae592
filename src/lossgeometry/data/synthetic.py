"""Synthetic data sets: a random-teacher regression and a Gaussian-mixture classification.

Both are generated from seeds (``seed`` for the samples, ``task_seed`` for the task), so
different ``seed`` values give independent samples of the same task. Loader signature:
``loader(root, *, seed, n, classes, **options) -> RawData`` (see :mod:`lossgeometry.data.builtin`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lossgeometry.data._checks import nonnegative_float, positive_int
from lossgeometry.data._pipeline import RawData

__all__ = ["SYNTHETIC_DEFAULT_N", "load_synthetic_classification", "load_synthetic_regression"]

#: Number of samples a synthetic data set has when ``n=None``.
SYNTHETIC_DEFAULT_N = 1000


def load_synthetic_regression(
    root: Path | None,
    *,
    seed: int,
    n: int | None,
    classes: list[int] | None,
    d: int = 10,
    k: int = 1,
    noise: float = 0.0,
    teacher: str = "tanh",
    width: int = 32,
    task_seed: int = 0,
) -> RawData:
    """Gaussian inputs with targets from a fixed random teacher.

    ``x ~ N(0, I_d)``; the teacher is ``y = tanh(x W1 / sqrt(d)) W2 / sqrt(width)`` (or
    ``y = x W / sqrt(d)`` for ``teacher="linear"``) with standard normal weights drawn from
    ``task_seed``, plus ``noise * N(0, 1)``. The teacher depends only on ``task_seed``, so
    different ``seed`` values give independent samples of the *same* task (e.g. a test set).

    Parameters
    ----------
    root : None
        Unused.
    seed : int
        Seed of the inputs and the noise.
    n : int or None
        Number of samples; ``None`` gives ``SYNTHETIC_DEFAULT_N`` (1000).
    classes : None
        Must be ``None`` (rejected later by ``finalize``).
    d : int, default 10
        Input dimension.
    k : int, default 1
        Target dimension.
    noise : float, default 0.0
        Standard deviation of the additive Gaussian label noise.
    teacher : {"tanh", "linear"}, default "tanh"
        Teacher model.
    width : int, default 32
        Hidden width of the tanh teacher.
    task_seed : int, default 0
        Seed of the teacher weights.

    Returns
    -------
    RawData
        ``X`` of shape ``(n, d)``, ``Y`` of shape ``(n, k)`` (float64).
    """
    d = positive_int(d, "d")
    k = positive_int(k, "k")
    width = positive_int(width, "width")
    noise = nonnegative_float(noise, "noise")
    if teacher not in ("tanh", "linear"):
        raise ValueError(f"teacher must be 'tanh' or 'linear', got {teacher!r}")
    size = SYNTHETIC_DEFAULT_N if n is None else n
    teacher_rng = np.random.default_rng([int(task_seed), 1])
    data_rng = np.random.default_rng([int(seed), 2])
    X = data_rng.standard_normal((size, d))
    if teacher == "tanh":
        W1 = teacher_rng.standard_normal((d, width))
        W2 = teacher_rng.standard_normal((width, k))
        Y = np.tanh(X @ W1 / math.sqrt(d)) @ W2 / math.sqrt(width)
    else:
        W = teacher_rng.standard_normal((d, k))
        Y = X @ W / math.sqrt(d)
    if noise > 0:
        Y = Y + noise * data_rng.standard_normal(Y.shape)
    return RawData(
        X=X,
        Y=Y,
        task="regression",
        num_classes=None,
        meta={
            "source": "synthetic (generated locally)",
            "d": d,
            "k": k,
            "noise": noise,
            "teacher": teacher,
            "width": width if teacher == "tanh" else None,
            "task_seed": int(task_seed),
        },
    )


def load_synthetic_classification(
    root: Path | None,
    *,
    seed: int,
    n: int | None,
    classes: list[int] | None,
    d: int = 10,
    num_classes: int = 2,
    separation: float = 4.0,
    task_seed: int = 0,
) -> RawData:
    """Sample a Gaussian mixture with one isotropic unit-variance component per class.

    Class means are ``N(0, I_d) * separation / sqrt(2 d)`` drawn from ``task_seed``, so two
    means are about ``separation`` noise standard deviations apart whatever ``d`` is.
    Labels are balanced (``i % num_classes``, shuffled); ``x = mean[y] + N(0, I_d)``.

    Parameters
    ----------
    root : None
        Unused.
    seed : int
        Seed of labels and noise.
    n : int or None
        Number of samples; ``None`` gives ``SYNTHETIC_DEFAULT_N`` (1000). With ``classes``,
        enough samples are drawn that the kept classes hold at least ``n``.
    classes : list of int or None
        Classes kept later by ``finalize``.
    d : int, default 10
        Input dimension.
    num_classes : int, default 2
        Number of mixture components / classes.
    separation : float, default 4.0
        Typical distance between class means in units of the noise standard deviation.
    task_seed : int, default 0
        Seed of the class means.

    Returns
    -------
    RawData
        ``X`` of shape ``(N, d)``, ``Y`` labels ``0..num_classes-1``.
    """
    d = positive_int(d, "d")
    num_classes = positive_int(num_classes, "num_classes")
    separation = nonnegative_float(separation, "separation")
    size = SYNTHETIC_DEFAULT_N if n is None else n
    if n is not None and classes is not None:
        kept = max(1, len([c for c in classes if c < num_classes]))
        size = math.ceil(n * num_classes / kept) + num_classes  # balanced labels: >= n kept
    means = np.random.default_rng([int(task_seed), 3]).standard_normal((num_classes, d))
    means *= separation / math.sqrt(2 * d)
    rng = np.random.default_rng([int(seed), 4])
    Y = rng.permutation(np.arange(size, dtype=np.int64) % num_classes)
    X = means[Y] + rng.standard_normal((size, d))
    return RawData(
        X=X,
        Y=Y,
        task="classification",
        num_classes=num_classes,
        meta={
            "source": "synthetic (generated locally)",
            "d": d,
            "separation": separation,
            "task_seed": int(task_seed),
        },
        class_names=[str(i) for i in range(num_classes)],
    )
