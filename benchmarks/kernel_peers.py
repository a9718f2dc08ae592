"""The peers of ``benchmarks/kernel.py``: the PyTorch tutorial, neural-tangents, nngeometry, FLOPs.

* :func:`empirical_ntk_jacobian_contraction` — the PyTorch NTK tutorial, verbatim logic.
* :func:`run_nt` — neural-tangents on the benchmark's MLPs (``stax``, NTK parameterization).

* :func:`run_nt_conv` — neural-tangents 0.6.5 ``empirical_ntk_fn`` (``trace_axes=()``,
  ``vmap_axes=0``, jitted) in its own environment ``benchmarks/envs/nt`` (see
  docs/benchmarks.md), on the *same* weights: the small VGG as a ``stax`` network (its 3x3
  ``"SAME"`` convolutions, 2x2 average pools, ``Flatten`` and ``Dense`` in the standard
  parameterization compute exactly torch's layers), the ResNet-8 as a plain JAX function of
  ``lax.conv_general_dilated`` calls with torch's explicit padding (``stax.Conv`` only knows
  ``"SAME"``, which pads a stride-2 convolution asymmetrically, ``(0, 1)``, where torch pads
  ``(1, 1)``). ``empirical_ntk_fn`` takes any apply function; implementation 3 (structured
  derivatives) works on the traced program either way. XLA's ``cost_analysis()`` FLOPs of
  the compiled program are recorded too.
* :func:`run_nngeometry` — nngeometry 0.4's ``GramMatrix`` (its ``FMatDense``
  representation, shape ``(k, n, k, n)``), installed with
  ``pip install --no-deps --target benchmarks/envs/nngeometry nngeometry==0.4``.
* :func:`matmul_peak` — the measured float32 GEMM rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

ROOT = Path(__file__).resolve().parent
NT_PYTHON = ROOT / "envs" / "nt" / "bin" / "python"
NNGEOMETRY = ROOT / "envs" / "nngeometry"


# ----------------------------------------------------------------- the PyTorch tutorial
# https://pytorch.org/tutorials/intermediate/neural_tangent_kernels.html (verbatim logic)
def make_fnet_single(net):
    def fnet_single(params, x):
        return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)

    return fnet_single


def empirical_ntk_jacobian_contraction(fnet_single, params, x1, x2):
    # Compute J(x1)
    jac1 = vmap(jacrev(fnet_single), (None, 0))(params, x1)
    jac1 = jac1.values()
    jac1 = [j.flatten(2) for j in jac1]

    # Compute J(x2)
    jac2 = vmap(jacrev(fnet_single), (None, 0))(params, x2)
    jac2 = jac2.values()
    jac2 = [j.flatten(2) for j in jac2]

    # Compute J(x1) @ J(x2).T
    result = torch.stack(
        [torch.einsum("Naf,Mbf->NMab", j1, j2) for j1, j2 in zip(jac1, jac2, strict=True)]
    )
    result = result.sum(0)
    return result


NT_SCRIPT = r"""
import json, sys, time, statistics
import numpy as np
spec = json.load(open(sys.argv[1]))
out = {"versions": {}}
try:
    import jax, jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax
    out["versions"] = {"jax": jax.__version__, "neural_tangents": nt.__version__}
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, open(sys.argv[2], "w")); sys.exit(0)
data = np.load(spec["npz"])
X = jnp.asarray(data["X"])
layers = []
depth = spec["depth"]
for l in range(depth):
    layers += [stax.Dense(spec["width"], W_std=1.0, b_std=1.0, parameterization="ntk"),
               stax.Elementwise(fn=jnp.tanh)]
layers += [stax.Dense(spec["k"], W_std=1.0, b_std=1.0, parameterization="ntk")]
init_fn, apply_fn, _ = stax.serial(*layers)
# stax Dense(ntk) stores W (d_in, d_out) and b (d_out,) and computes x W / sqrt(d_in) + b
params = []
for l in range(depth + 1):
    params.append((jnp.asarray(data[f"W{l}"]), jnp.asarray(data[f"b{l}"])))
    if l < depth:
        params.append(())
res = {}
for impl in spec["impls"]:
    try:
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), implementation=impl, vmap_axes=0))
        t = time.perf_counter()
        K = fn(X, None, params).block_until_ready()
        first = time.perf_counter() - t
        ts = []
        for _ in range(spec["repeats"] if first < 20 else 0):
            t = time.perf_counter()
            K = fn(X, None, params).block_until_ready()
            ts.append(time.perf_counter() - t)
        n, k = X.shape[0], spec["k"]
        Kf = np.asarray(K).transpose(0, 2, 1, 3).reshape(n * k, n * k)
        np.save(spec["npz"] + f".nt{impl}.npy", Kf)
        med = statistics.median(ts) if ts else first  # (a single slow run includes the jit)
        res[str(impl)] = {"median": med, "first": first, "times": ts}
    except Exception as e:
        res[str(impl)] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
out["results"] = res
json.dump(out, open(sys.argv[2], "w"))
"""


def run_nt(model, X, width: int, depth: int, k: int, args: argparse.Namespace, impls) -> dict:
    if not NT_PYTHON.exists():
        return {"error": f"no neural-tangents environment at {NT_PYTHON}"}
    tmp = Path(tempfile.mkdtemp())
    arrays = {"X": X.numpy()}
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for l, lin in enumerate(linears):
        arrays[f"W{l}"] = lin.weight.detach().numpy().T.copy()
        arrays[f"b{l}"] = lin.bias.detach().numpy().copy()
    npz = str(tmp / "case.npz")
    np.savez(npz, **arrays)
    spec = {
        "npz": npz,
        "width": width,
        "depth": depth,
        "k": k,
        "repeats": args.repeats,
        "impls": impls,
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    (tmp / "nt_bench_script.py").write_text(NT_SCRIPT)
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1"
    )
    proc = subprocess.run(
        [NT_PYTHON, tmp / "nt_bench_script.py", tmp / "spec.json", tmp / "out.json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if not (tmp / "out.json").exists():
        return {"error": (proc.stderr or proc.stdout)[-600:]}
    out = json.loads((tmp / "out.json").read_text())
    for impl in impls:
        f = Path(npz + f".nt{impl}.npy")
        if f.exists():
            out["results"][str(impl)]["K"] = np.load(f)
    return out


NT_CONV_SCRIPT = r"""
import json, sys, time, statistics
import numpy as np
spec = json.load(open(sys.argv[1]))
out = {"versions": {}}
try:
    import jax, jax.numpy as jnp
    from jax import lax
    import neural_tangents as nt
    from neural_tangents import stax
    out["versions"] = {"jax": jax.__version__, "neural_tangents": nt.__version__}
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, open(sys.argv[2], "w")); sys.exit(0)
data = np.load(spec["npz"])
X = jnp.asarray(data["X"])  # NHWC
arrays = {k: jnp.asarray(data[k]) for k in data.files if k != "X"}
if spec["arch"] == "vgg":
    layers, params = [], []
    for c in spec["config"]:
        if c == "M":
            layers.append(stax.AvgPool((2, 2), strides=(2, 2), padding="VALID"))
            params.append(())
        else:
            i = len([p for p in params if p]) + 1
            layers += [stax.Conv(c, (3, 3), padding="SAME", parameterization="standard",
                                 b_std=1.0), stax.Relu()]
            params += [(arrays[f"conv{i}.W"], arrays[f"conv{i}.b"].reshape(1, 1, 1, -1)), ()]
    layers += [stax.Flatten(), stax.Dense(spec["k"], parameterization="standard", b_std=1.0)]
    params += [(), (arrays["out.W"], arrays["out.b"].reshape(1, -1))]
    _, apply_fn, _ = stax.serial(*layers)
else:  # resnet: torch's explicit padding
    def conv(p, x, name, stride, pad):
        y = lax.conv_general_dilated(x, p[name + ".W"], (stride, stride),
                                     [(pad, pad), (pad, pad)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + p[name + ".b"]
    params = arrays
    def apply_fn(p, x):
        h = jax.nn.relu(conv(p, x, "stem.0", 1, 1))
        for name, stride, short in spec["blocks"]:
            y = jax.nn.relu(conv(p, h, name + ".conv1", stride, 1))
            y = conv(p, y, name + ".conv2", 1, 1)
            sc = conv(p, h, name + ".shortcut.0", stride, 0) if short else h
            h = jax.nn.relu(y + sc)
        h = h.mean(axis=(1, 2))
        return h @ p["out.W"] + p["out.b"]
res = {}
for impl in spec["impls"]:
    try:
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), implementation=impl,
                                         vmap_axes=0))
        flops = None
        try:
            ca = fn.lower(X, None, params).compile().cost_analysis()
            ca = ca[0] if isinstance(ca, list) else ca
            flops = float(ca.get("flops", float("nan")))
        except Exception:
            pass
        t = time.perf_counter()
        K = fn(X, None, params).block_until_ready()
        first = time.perf_counter() - t
        ts = []
        for _ in range(spec["repeats"] if first < 20 else 0):
            t = time.perf_counter()
            K = fn(X, None, params).block_until_ready()
            ts.append(time.perf_counter() - t)
        n, k = X.shape[0], spec["k"]
        np.save(spec["npz"] + f".nt{impl}.npy",
                np.asarray(K).transpose(0, 2, 1, 3).reshape(n * k, n * k))
        med = statistics.median(ts) if ts else first
        res[str(impl)] = {"median": med, "first": first, "times": ts, "flops": flops}
    except Exception as e:
        res[str(impl)] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
out["results"] = res
json.dump(out, open(sys.argv[2], "w"))
"""


def _conv_arrays(model: nn.Module, arch: str) -> dict[str, np.ndarray]:
    """Torch weights in JAX layouts: conv OIHW -> HWIO, linear (out, in) -> (in, out)."""
    arrays: dict[str, np.ndarray] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            arrays[f"{name}.W"] = m.weight.detach().permute(2, 3, 1, 0).numpy().copy()
            arrays[f"{name}.b"] = m.bias.detach().numpy().copy()
    W = model.out.weight.detach()
    if arch == "vgg":  # torch flattens (C, H, W), stax.Flatten (H, W, C)
        C = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        hw = round((W.shape[1] // C) ** 0.5)
        W = W.reshape(W.shape[0], C, hw, hw).permute(0, 2, 3, 1).reshape(W.shape[0], -1)
    arrays["out.W"] = W.T.numpy().copy()
    arrays["out.b"] = model.out.bias.detach().numpy().copy()
    return arrays


def run_nt_conv(
    model: nn.Module, X: torch.Tensor, arch: str, k: int, repeats: int, impls: list[int]
) -> dict:
    """neural-tangents on the same conv net and weights; see the module docstring."""
    if not NT_PYTHON.exists():
        return {"error": f"no neural-tangents environment at {NT_PYTHON}"}
    tmp = Path(tempfile.mkdtemp())
    arrays = {"X": X.permute(0, 2, 3, 1).numpy().copy(), **_conv_arrays(model, arch)}
    npz = str(tmp / "case.npz")
    np.savez(npz, **arrays)
    spec: dict = {"npz": npz, "arch": arch, "k": k, "repeats": repeats, "impls": impls}
    if arch == "vgg":
        spec["config"] = [
            "M" if isinstance(m, nn.AvgPool2d) else m.out_channels
            for m in model
            if isinstance(m, nn.Conv2d | nn.AvgPool2d)
        ]
    else:
        spec["blocks"] = [
            [name, blk.conv1.stride[0], not isinstance(blk.shortcut, nn.Identity)]
            for name, blk in model.named_modules()
            if type(blk).__name__ == "BasicBlock"
        ]
    (tmp / "spec.json").write_text(json.dumps(spec))
    (tmp / "nt_conv_script.py").write_text(NT_CONV_SCRIPT)
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    proc = subprocess.run(
        [NT_PYTHON, tmp / "nt_conv_script.py", tmp / "spec.json", tmp / "out.json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if not (tmp / "out.json").exists():
        return {"error": (proc.stderr or proc.stdout)[-600:]}
    out = json.loads((tmp / "out.json").read_text())
    for impl in impls:
        f = Path(npz + f".nt{impl}.npy")
        if f.exists():
            out["results"][str(impl)]["K"] = np.load(f)
    return out


def nngeometry_kernel(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """nngeometry's Gram matrix of the outputs, ``(n k, n k)`` with rows ``i·k + a``."""
    if str(NNGEOMETRY) not in sys.path:
        sys.path.insert(0, str(NNGEOMETRY))
    from nngeometry.gram import GramMatrix  # type: ignore[import-not-found]

    G = GramMatrix(model, (X.clone(),)).data  # (k, n, k, n)
    k, n = G.shape[:2]
    return G.permute(1, 0, 3, 2).reshape(n * k, n * k)


def nngeometry_available() -> bool:
    """Whether the nngeometry target folder is there."""
    return (NNGEOMETRY / "nngeometry").is_dir()


def matmul_peak(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GEMM rate (flop/s), best of ``repeats`` ``size³`` products."""
    import time

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g)
    b = torch.randn(size, size, generator=g)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * size**3 / best
