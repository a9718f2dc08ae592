"""Benchmark: the dense empirical NTK, lossgeometry vs the tutorial, neural-tangents, nngeometry.

Run by hand (results go into docs/benchmarks.md)::

    .venv/bin/python benchmarks/kernel.py                  # MLPs, small CNNs, transformer
    .venv/bin/python benchmarks/kernel.py --cases convnets # ResNet-8 and small VGG, 32x32x3
    .venv/bin/python benchmarks/kernel.py --quick          # one small size per model
    .venv/bin/python benchmarks/kernel.py --no-nt          # skip neural-tangents

Compared, on the same model, data and parameters (full ``nk × nk`` kernel, float32):

* ``lg structured`` — ``lg.tangent_kernel(problem, method="structured")``;
* ``lg jacobian`` — ``lg.tangent_kernel(problem, method="jacobian")`` (chunked vmap(jacrev));
* ``lg auto`` — the route ``method="auto"`` picks by its cost model (reported, not re-timed:
  it runs the chosen route);
* ``tutorial`` — the PyTorch NTK tutorial's ``empirical_ntk_jacobian_contraction``
  (``vmap(jacrev)`` per-sample Jacobians of all parameters, then ``einsum('Naf,Mbf->NMab')``),
  written in ``kernel_peers.py`` exactly as in the tutorial;
* ``neural-tangents`` — ``nt.empirical_ntk_fn(..., trace_axes=())``, jitted, in its own
  virtual environment ``benchmarks/envs/nt`` (JAX on CPU), on the *same* weights: on the MLPs
  all three implementations (1 Jacobian contraction, 2 NTK-vector products, 3 structured
  derivatives), on the conv nets implementation 3;
* ``nngeometry`` — nngeometry 0.4's ``GramMatrix`` (conv nets; ``benchmarks/envs/nngeometry``).

Each timing is the median of ``--repeats`` runs after one warm-up run (the JAX warm-up
includes compilation, reported separately). Sizes whose estimated memory exceeds half the
available memory are skipped and reported as such. Correctness: every kernel is compared
with ``lg structured`` (max relative deviation).

Achieved GFLOP/s: FLOPs counted analytically per route (:func:`route_flops`, the counts of
``lossgeometry.kernel.cost``; multiply and add counted separately), divided by the median
time, against the measured float32 GEMM rate (2048³, best of 5) at the same thread count.
(``torch.utils.flop_counter.FlopCounterMode`` was tried: under ``vmap`` it reported more
FLOPs per second than the GEMM peak for the Jacobian methods, and it breaks nngeometry's
hooks.) neural-tangents' own route is not counted; XLA's ``cost_analysis()`` count is in
the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from kernel_peers import (  # noqa: F401  (re-exported for the other kernel benchmarks)
    NT_PYTHON,
    empirical_ntk_jacobian_contraction,
    make_fnet_single,
    matmul_peak,
    nngeometry_available,
    nngeometry_kernel,
    run_nt,
    run_nt_conv,
)

import lossgeometry as lg
from lossgeometry.kernel.cost import choose_method, forward_flops, jacobian_work, structured_work
from lossgeometry.kernel.memory import available_memory, format_bytes
from lossgeometry.kernel.structured import build_plan


def timeit(fn, repeats: int, slow: float = 20.0) -> tuple[float, list[float], object]:
    """Median of ``repeats`` timed runs after one warm-up run.

    A warm-up run longer than ``slow`` seconds is not repeated (its time is reported, and
    the list of times has one entry).
    """
    t = time.perf_counter()
    out = fn()  # warm-up
    first = time.perf_counter() - t
    if first > slow:
        return first, [first], out
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts, out


def rel_dev(a, b) -> float:
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max())


def conv_case(arch: str, n: int, width: int, seed: int = 0):
    """ResNet-8 (three stages of one basic block) or the small VGG on synthetic 32x32x3 data."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, 32, 32, generator=g)  # CIFAR-shaped, standardized pixels
    if arch == "resnet8":
        model = lg.models.resnet(3, 10, width=width, blocks=(1, 1, 1), seed=seed)
    else:
        c = (width, width, "M", 2 * width, 2 * width, "M", 4 * width, 4 * width, "M")
        model = lg.models.vgg(3, 10, c, input_size=32, pool="avg", seed=seed)
    return model, X, torch.zeros(n, 10)


def mlp_case(n: int, width: int, depth: int, seed: int = 0):
    ds = lg.data.load("digits", n=n, one_hot=True, seed=seed)
    model = lg.models.mlp(ds.d_in, width, depth, ds.d_out, parameterization="ntk", seed=seed)
    return model, ds.X.float(), ds.Y.float()


def cnn_case(n: int, channels: int, seed: int = 0):
    ds = lg.data.load("digits", n=n, one_hot=True, seed=seed)
    X = ds.X.float().reshape(n, 1, 8, 8)
    model = lg.models.cnn(
        1, (channels, channels), 3, ds.d_out, input_size=8, parameterization="ntk", seed=seed
    )
    return model, X, ds.Y.float()


PAST: dict[tuple[str, str], tuple[float, float]] = {}
"""(model kind, method) -> (seconds, work) of the last measured size, for time predictions."""


def predicted(kind: str, name: str, work: float) -> float:
    """Seconds predicted from the last measured size of the same model kind (0 if none)."""
    if (kind, name) not in PAST:
        return 0.0
    t, w = PAST[(kind, name)]
    return t * work / w


def transformer_case(n: int, d_model: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    model = lg.models.transformer(
        vocab_size=50,
        d_model=d_model,
        nhead=4,
        dim_feedforward=2 * d_model,
        num_classes=10,
        max_len=32,
        seed=seed,
    )
    X = torch.randint(0, 50, (n, 32), generator=g)
    return model, X, torch.zeros(n, 10)


def _label(kind: str, n: int, size: int) -> str:
    return {
        "mlp": f"MLP 64-{size}-{size}-10 (NTK), n={n}",
        "cnn": f"CNN 1-{size}-{size}-10 (3x3, avgpool), n={n}",
        "transformer": f"Transformer d={size}, 1 block, T=32 tokens, n={n}",
        "resnet8": f"ResNet-8 (width {size}), 32x32x3, n={n}",
        "vgg": f"VGG {size}-{size}-M-{2 * size}-{2 * size}-M-{4 * size}-{4 * size}-M, "
        f"32x32x3, n={n}",
    }[kind]


def route_flops(pb: lg.Problem) -> dict[str, float]:
    """Analytic FLOPs of each method's route on the full kernel (see the module docstring).

    ``lg structured`` and ``lg jacobian``: the cost model's counts (forward and ``k`` backward
    passes, per-sample gradients, ``P Pᵀ`` formed from its lower block triangle).
    ``tutorial``: two Jacobian passes (it forms ``J(x1)`` and ``J(x2)``, here the same
    inputs) and the full ``N² p`` contraction. ``nngeometry``: one Jacobian pass, full
    contraction.
    """
    plan = build_plan(pb)
    n, k, p = pb.n, pb.k, pb.p
    jac_pass = n * (1 + 2 * k) * forward_flops(plan)
    full = 2.0 * (n * k) ** 2 * p
    return {
        "lg structured": structured_work(plan, n, k).flops,
        "lg jacobian": jacobian_work(plan, p, n, k).flops,
        "tutorial": 2 * jac_pass + full,
        "nngeometry": jac_pass + full,
    }


def _record(row: dict, name: str, t: float, flops: float | None, peak: float) -> None:
    row[name] = t
    if flops:
        row[name + " flops"] = flops
        row[name + " GFLOP/s"] = flops / t / 1e9
        row[name + " % peak"] = 100.0 * flops / t / peak


def run_case(kind: str, n: int, size: int, args: argparse.Namespace, limit: int) -> dict:
    """Time every method on one model size; returns a table row.

    Methods whose time, extrapolated from the previous size by the work ``N² p``, would
    exceed ``--cap`` seconds are skipped and reported as such.
    """
    if kind == "mlp":
        model, X, Y = mlp_case(n, size, 2)
    elif kind == "cnn":
        model, X, Y = cnn_case(n, size)
    elif kind == "transformer":
        model, X, Y = transformer_case(n, size)
    else:
        model, X, Y = conv_case(kind, n, size)
    label = _label(kind, n, size)
    pb = lg.Problem(model, X, Y)
    k, p = pb.k, pb.p
    N = n * k
    row: dict = {"case": label, "p": p, "N": N}
    t_ref, ts, K_ref = timeit(lambda: lg.tangent_kernel(pb, method="structured"), args.repeats)
    flops = route_flops(pb)
    _record(row, "lg structured", t_ref, flops["lg structured"], args.peak)
    row["lg auto"] = choose_method(
        pb, m=n, ks=k, trace=False, diagonal_only=False, fits=lambda _: True
    )
    print(
        f"{label}: p={p}, N={N}; lg structured {t_ref:.3f}s {[round(t, 3) for t in ts]} "
        f"({row.get('lg structured GFLOP/s', 0):.1f} GFLOP/s); auto -> {row['lg auto']}",
        flush=True,
    )
    jac_bytes = 4 * n * k * p * 2
    work = float(N) * N * p
    methods = [
        (
            "lg jacobian",
            lambda: lg.tangent_kernel(pb, method="jacobian"),
            4 * N * N + 4 * 3 * k * p,  # chunked: one sample's Jacobian at least
        ),
        (
            "tutorial",
            lambda: empirical_ntk_jacobian_contraction(
                make_fnet_single(model),
                {kk: v.detach() for kk, v in model.named_parameters()},
                X,
                X,
            ),
            jac_bytes + 4 * N * N * (len(list(model.parameters())) + 1),
        ),
    ]
    if kind in ("resnet8", "vgg") and nngeometry_available():
        methods.append(("nngeometry", lambda: nngeometry_kernel(model, X), 4 * N * N * 2))
    for name, fn, need in methods:
        if need > limit:
            row[name] = f"OOM/skipped (estimated {format_bytes(need)})"
            print(f"  {name}: {row[name]}", flush=True)
            continue
        guess = predicted(kind, name, work)
        if guess > args.cap:
            row[name] = f"skipped (predicted ~{guess:.0f} s)"
            print(f"  {name}: {row[name]}", flush=True)
            continue
        try:
            t, ts, K = timeit(fn, args.repeats)
        except RuntimeError as e:  # out of memory at run time
            row[name] = f"failed: {str(e)[:80]}"
            print(f"  {name}: {row[name]}", flush=True)
            continue
        K = K.permute(0, 2, 1, 3).reshape(N, N) if K.ndim == 4 else K
        _record(row, name, t, flops[name], args.peak)
        PAST[(kind, name)] = (t, work)
        row[name + " dev"] = rel_dev(K, K_ref)
        print(
            f"  {name}: {t:.3f}s {[round(x, 3) for x in ts]} dev {row[name + ' dev']:.1e} "
            f"({row.get(name + ' GFLOP/s', 0):.1f} GFLOP/s)",
            flush=True,
        )
        del K
    if kind in ("mlp", "resnet8", "vgg") and not args.no_nt:
        nt_need = 4 * n * k * p * 3
        impls, skipped = [], {}
        for impl in (3, 1, 2) if kind == "mlp" else (3,):
            guess = predicted(kind, f"nt impl {impl}", work)
            if impl == 1 and nt_need > limit:
                skipped[impl] = f"OOM/skipped (estimated {format_bytes(nt_need)})"
            elif guess > args.cap:
                skipped[impl] = f"skipped (predicted ~{guess:.0f} s)"
            else:
                impls.append(impl)
        if kind == "mlp":
            out = run_nt(model, X, size, 2, k, args, impls)
        else:
            out = run_nt_conv(
                model, X, "resnet" if kind == "resnet8" else "vgg", k, args.repeats, impls
            )
        if "error" in out:
            row["neural-tangents"] = f"error: {out['error'][:200]}"
            print(f"  neural-tangents: {row['neural-tangents']}", flush=True)
        else:
            row["nt versions"] = out["versions"]
            for impl in (1, 2, 3):
                key = f"nt impl {impl}"
                r = out["results"].get(str(impl))
                if r is None:
                    row[key] = skipped.get(impl, "—")
                elif "error" in r:
                    row[key] = f"error: {r['error'][:120]}"
                else:
                    _record(row, key, r["median"], None, args.peak)
                    if r.get("flops") is not None:
                        row[key + " XLA cost_analysis flops"] = r["flops"]
                    PAST[(kind, key)] = (r["median"], work)
                    row[key + " first (jit)"] = r["first"]
                    if "K" in r:
                        row[key + " dev"] = rel_dev(r["K"], K_ref)
                print(f"  {key}: {row[key]} dev {row.get(key + ' dev')}", flush=True)
    del K_ref
    return row


COLUMNS = [
    "lg structured",
    "lg jacobian",
    "tutorial",
    "nngeometry",
    "nt impl 1",
    "nt impl 2",
    "nt impl 3",
]


def _cell(r: dict, c: str) -> str:
    v = r.get(c, "—")
    if not isinstance(v, float):
        return str(v)
    rate = r.get(c + " GFLOP/s")
    return f"{v:.3f} s" + (f" ({rate:.0f})" if rate is not None else "")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-nt", action="store_true")
    ap.add_argument("--cases", choices=("classic", "convnets", "all"), default="classic")
    ap.add_argument("--threads", type=int, default=1, help="torch and XLA CPU threads")
    ap.add_argument("--cap", type=float, default=60.0, help="skip runs predicted longer (s)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    args.peak = matmul_peak(args.threads)
    limit = available_memory() // 2
    sizes = {
        "mlp": [(64, 256), (256, 256), (512, 256), (128, 1024)],
        "cnn": [(64, 16), (256, 32)],
        "transformer": [(64, 64)],
        "resnet8": [(64, 16), (256, 16)],
        "vgg": [(64, 16), (256, 16)],
    }
    kinds = {
        "classic": ["mlp", "cnn", "transformer"],
        "convnets": ["resnet8", "vgg"],
        "all": list(sizes),
    }[args.cases]
    if args.quick:
        sizes = {kind: v[:1] for kind, v in sizes.items()}
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, memory limit "
        f"{format_bytes(limit)}, float32 GEMM peak {args.peak / 1e9:.1f} GFLOP/s, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"# machine: {machine}", flush=True)
    rows = [run_case(kind, n, size, args, limit) for kind in kinds for n, size in sizes[kind]]
    if args.json:
        meta = {"machine": machine, "peak GFLOP/s": args.peak / 1e9, "args": vars(args)}
        meta["load average after"] = os.getloadavg()[0]
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))
    print(f"\n(cells: median time (achieved GFLOP/s); peak {args.peak / 1e9:.0f} GFLOP/s)")
    print("\n| case | p | N = nk | auto | " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * (4 + len(COLUMNS)))
    for r in rows:
        cells = " | ".join(_cell(r, c) for c in COLUMNS)
        print(f"| {r['case']} | {r['p']:,} | {r['N']:,} | {r['lg auto']} | {cells} |")


if __name__ == "__main__":
    main()
