"""Fully connected networks in the standard and the NTK parameterization."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict

from torch import nn

from lossgeometry.models.layers import (
    ActivationSpec,
    Scale,
    check_bias_scale,
    check_choice,
    check_int,
    make_activation,
    ntk_init_,
    seeded,
)

__all__ = ["mlp", "mlp_layer_widths", "mlp_num_params"]

PARAMETERIZATIONS = ("standard", "ntk")


def mlp_layer_widths(
    d_in: int, width: int, depth: int, d_out: int, bottleneck: int | None = None
) -> list[int]:
    """Widths ``[d_in, m_1, ..., m_depth, d_out]`` of an :func:`mlp`.

    All hidden widths equal ``width`` except, when ``bottleneck`` is given, the middle hidden
    layer (0-based index ``depth // 2``), whose width is ``bottleneck``.
    """
    hidden = [width] * depth
    if bottleneck is not None and depth > 0:
        hidden[depth // 2] = bottleneck
    return [d_in, *hidden, d_out]


def mlp_num_params(
    d_in: int,
    width: int,
    depth: int,
    d_out: int,
    bottleneck: int | None = None,
    bias: bool = True,
) -> int:
    """Closed-form parameter count of :func:`mlp`: ``sum_l (m_{l-1} + bias) * m_l``.

    Without a bottleneck and ``depth >= 1`` this is
    ``d_in*w + (depth-1)*w**2 + w*d_out + bias*(depth*w + d_out)``.
    """
    widths = mlp_layer_widths(d_in, width, depth, d_out, bottleneck)
    return sum((a + int(bias)) * b for a, b in itertools.pairwise(widths))


def mlp(
    d_in: int,
    width: int,
    depth: int,
    d_out: int,
    activation: ActivationSpec = "tanh",
    parameterization: str = "standard",
    output_activation: ActivationSpec | None = None,
    bottleneck: int | None = None,
    bias: bool = True,
    seed: int | None = None,
    bias_scale: float = 1.0,
) -> nn.Sequential:
    r"""Fully connected network ``R^{d_in} -> R^{d_out}`` with ``depth`` hidden layers.

    Architecture (``m_0 = d_in``, ``m_1 = ... = m_depth = width``, ``m_{depth+1} = d_out``)::

        x_0 = x,   x_l = sigma(layer_l(x_{l-1})) for l = 1..depth,
        f(x) = rho(layer_{depth+1}(x_depth))

    with ``sigma = activation`` and ``rho = output_activation`` (identity by default).

    Parameterizations:

    * ``"standard"``: ``layer_l(z) = W_l z + b_l`` with torch's default ``nn.Linear`` init,
      ``W_ij, b_i ~ U(-1/sqrt(m_{l-1}), 1/sqrt(m_{l-1}))`` (Kaiming-uniform with
      ``a = sqrt(5)``, i.e. ``Var W_ij = 1 / (3 m_{l-1})``).
    * ``"ntk"`` (Jacot et al., 2018): ``layer_l(z) = W_l z / sqrt(m_{l-1}) + b_l`` with
      ``W_ij ~ N(0, 1)`` and ``b_i ~ bias_scale * N(0, 1)`` (``bias_scale = 0``: zero bias).
      The ``1/sqrt(fan_in)`` factor sits in a parameter-free :class:`Scale` module placed
      *before* a standard ``nn.Linear`` (so ``Linear(Scale(z)) = W z / sqrt(fan_in) + b``);
      hence every parameter is an ordinary ``nn.Linear`` weight/bias and standard-layer
      tangent-kernel rules apply unchanged. Note ``bias_scale`` only scales the bias at
      initialisation (it is not a forward multiplier as in Jacot et al.'s ``beta``); for
      ``bias_scale = 1`` the two conventions coincide. At init the output has ``O(1)``
      variance independent of ``width`` and the tangent kernel converges as
      ``width -> inf``.

    Parameter count: ``sum_l (m_{l-1} + bias) * m_l``, i.e. for ``depth >= 1`` without a
    bottleneck ``d_in*w + (depth-1)*w**2 + w*d_out + bias*(depth*w + d_out)``
    (see :func:`mlp_num_params`).

    Module names: ``fc1..fc{depth}`` / ``act1..act{depth}`` for hidden layers, ``out`` for the
    readout, ``out_act`` for a nonlinear output, ``scale{l}`` / ``scale_out`` for NTK scales.

    Args:
        d_in: input dimension.
        width: hidden width ``w`` (ignored when ``depth == 0``, but still validated).
        depth: number of hidden layers (``0`` gives the linear model ``W x + b``).
        d_out: output dimension.
        activation: hidden activation: ``"tanh"``, ``"relu"``, ``"gelu"``, ``"sigmoid"``,
            ``"softplus"``, ``"identity"`` (a deep linear network), an ``nn.Module`` class,
            a parameter-free module instance or a tensor function.
        parameterization: ``"standard"`` or ``"ntk"``.
        output_activation: ``None`` (linear output) or an activation as above applied after
            the readout; a nonlinear output breaks the transition to linearity.
        bottleneck: ``None``, or the fixed width of the middle hidden layer (index
            ``depth // 2``, requires ``depth >= 2``); a fixed-width bottleneck breaks the
            transition to linearity as ``width`` grows.
        bias: whether layers have biases.
        seed: if given, parameters are drawn from a forked RNG seeded with ``seed`` (same
            seed, identical weights; the global RNG is neither consumed nor reseeded).
        bias_scale: NTK bias initialisation scale (``b ~ N(0, bias_scale**2)``); only used
            with ``parameterization="ntk"``.

    Returns:
        An ``nn.Sequential`` mapping ``(n, d_in) -> (n, d_out)``.

    Raises:
        ValueError: for non-positive sizes, unknown activation or parameterization names, or
            an invalid bottleneck.

    Example:
        >>> import torch
        >>> model = mlp(3, 16, 2, 1, parameterization="ntk", seed=0)
        >>> sum(t.numel() for t in model.parameters()) == mlp_num_params(3, 16, 2, 1) == 353
        True
        >>> model(torch.zeros(5, 3)).shape
        torch.Size([5, 1])
        >>> torch.equal(model[1].weight, mlp(3, 16, 2, 1, parameterization="ntk", seed=0)[1].weight)
        True
    """
    d_in = check_int("d_in", d_in)
    width = check_int("width", width)
    depth = check_int("depth", depth, minimum=0, hint="depth counts hidden layers; 0 = linear.")
    d_out = check_int("d_out", d_out)
    parameterization = check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    bias_scale = check_bias_scale(bias_scale)
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False, got {bias!r}.")
    if bottleneck is not None:
        bottleneck = check_int("bottleneck", bottleneck, hint="Use None for no bottleneck.")
        if depth < 2:
            raise ValueError(
                f"bottleneck needs depth >= 2 (wide layers around the narrow one), got "
                f"depth={depth}; increase depth or pass bottleneck=None."
            )
    # Validate activations before building anything.
    make_activation(activation, argname="activation")
    if output_activation is not None:
        make_activation(output_activation, argname="output_activation")

    widths = mlp_layer_widths(d_in, width, depth, d_out, bottleneck)
    ntk = parameterization == "ntk"
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    with seeded(seed):
        for l in range(1, len(widths)):
            fan_in, fan_out = widths[l - 1], widths[l]
            last = l == len(widths) - 1
            tag = "out" if last else f"fc{l}"
            if ntk:
                layers["scale_out" if last else f"scale{l}"] = Scale(1.0 / math.sqrt(fan_in))
            linear = nn.Linear(fan_in, fan_out, bias=bias)
            if ntk:
                ntk_init_(linear, bias_scale)
            layers[tag] = linear
            if not last:
                layers[f"act{l}"] = make_activation(activation)
            elif output_activation is not None:
                layers["out_act"] = make_activation(output_activation, argname="output_activation")
    return nn.Sequential(layers)
