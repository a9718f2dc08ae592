"""A small VGG-style network: stacks of 3x3 convolutions between 2x2 poolings."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from lossgeometry.models.layers import (
    ActivationSpec,
    check_choice,
    check_int,
    check_int_tuple,
    make_activation,
    seeded,
)

__all__ = ["vgg"]

POOL = "M"
"""The entry of ``config`` that stands for a 2x2 pooling (as in torchvision's VGG configs)."""


def vgg(
    in_channels: int = 3,
    num_classes: int = 10,
    config: Sequence[int | str] = (16, 16, POOL, 32, 32, POOL, 64, 64, POOL),
    input_size: int | Sequence[int] = 32,
    hidden: Sequence[int] = (),
    pool: str = "max",
    activation: ActivationSpec = "relu",
    seed: int | None = None,
) -> nn.Sequential:
    r"""VGG-style network (Simonyan & Zisserman, 2015) for ``(n, in_channels, H, W)`` images.

    ``config`` lists the layers of the feature extractor in order: an int ``c`` is
    ``Conv2d(c_prev, c, 3, padding=1)`` followed by the activation, ``"M"`` a 2x2 pooling with
    stride 2 (``pool="max"`` as in VGG, or ``"avg"``). Then ``nn.Flatten``, one
    ``Linear -> activation`` per entry of ``hidden`` and ``nn.Linear(·, num_classes)``. No
    normalization and no dropout, so every sample's output depends on that sample only.
    torch's default initialization (standard parameterization).

    Parameter count: ``Σ_convs (9 c_prev + 1) c + Σ_linears (d_prev + 1) d``, where the first
    linear layer sees ``c_last · (H / 2^P) · (W / 2^P)`` features after ``P`` poolings.

    The default (``16, 16, M, 32, 32, M, 64, 64, M`` on 32x32 inputs, 82,330 parameters) is
    the small VGG of the tangent-kernel benchmark.

    Args:
        in_channels: input channels (3 for CIFAR-shaped images).
        num_classes: output dimension.
        config: channels of the 3x3 convolutions and ``"M"`` for the poolings.
        input_size: spatial size ``H`` (= ``W``) or ``(H, W)``; checked by a dry run.
        hidden: widths of hidden linear layers between the features and the output layer.
        pool: ``"max"`` or ``"avg"``.
        activation: activation name, class, module or function (default ``"relu"``).
        seed: seed for a forked RNG (global RNG untouched); ``None`` uses the global RNG.

    Returns:
        An ``nn.Sequential`` (``conv1``, ``act1``, ..., ``pool1``, ..., ``flatten``,
        ``fc1``, ``fc_act1``, ..., ``out``) mapping ``(n, in_channels, H, W)`` to
        ``(n, num_classes)`` (an unbatched ``(in_channels, H, W)`` sample gives
        ``(num_classes,)``).

    Raises:
        ValueError: for invalid sizes or names, a config without a convolution, or an input
            that the poolings shrink to nothing.
    """
    in_channels = check_int("in_channels", in_channels)
    num_classes = check_int("num_classes", num_classes)
    size = check_int_tuple("input_size", input_size, 2)
    empty = isinstance(hidden, Sequence) and not isinstance(hidden, str) and len(hidden) == 0
    widths = () if empty else check_int_tuple("hidden", hidden)
    pool = check_choice("pool", pool, ("max", "avg"))
    make_activation(activation)
    if isinstance(config, str) or not isinstance(config, Sequence):
        raise ValueError(f"config must be a sequence of ints and {POOL!r}, got {config!r}.")
    entries: list[int | str] = []
    for c in config:
        if c == POOL:
            entries.append(POOL)
        else:
            entries.append(check_int("config entry", c, hint=f"(or {POOL!r} for a pooling)"))
    if not any(isinstance(c, int) for c in entries):
        raise ValueError(f"config needs at least one convolution (an int), got {config!r}.")
    pool_cls = nn.MaxPool2d if pool == "max" else nn.AvgPool2d

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    with seeded(seed):
        c_prev, n_conv, n_pool = in_channels, 0, 0
        for c in entries:
            if c == POOL:
                n_pool += 1
                layers[f"pool{n_pool}"] = pool_cls(2, stride=2)
                continue
            assert isinstance(c, int)
            n_conv += 1
            layers[f"conv{n_conv}"] = nn.Conv2d(c_prev, c, 3, padding=1)
            layers[f"act{n_conv}"] = make_activation(activation)
            c_prev = c
        layers["flatten"] = nn.Flatten(start_dim=-3)  # also flattens an unbatched sample
        features = nn.Sequential(layers)
        try:
            with torch.no_grad():
                d = features(torch.zeros(1, in_channels, *size)).shape[1]
        except RuntimeError as err:
            raise ValueError(
                f"input_size={size} is too small for {n_pool} poolings: {err}. "
                "Use a larger input or fewer poolings."
            ) from err
        if d == 0:
            raise ValueError(f"input_size={size} leaves no features; use a larger input.")
        for i, h in enumerate(widths, start=1):
            layers[f"fc{i}"] = nn.Linear(d, h)
            layers[f"fc_act{i}"] = make_activation(activation)
            d = h
        layers["out"] = nn.Linear(d, num_classes)
    return nn.Sequential(layers)
