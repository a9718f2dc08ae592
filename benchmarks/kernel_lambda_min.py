"""The tangent-kernel benchmark exactly as issue 3 states it: K and its λ_min.

MLP: input 64, two tanh hidden layers of width m, ONE output (NTK parameterization), n random
inputs, at (n, m) = (512, 512), (2048, 1024), (8192, 1024); time to compute K and its smallest
eigenvalue (dense `eigvalsh` in float64 for every method, so the λ_min columns compare the
kernels), and peak memory (max RSS delta), against the PyTorch NTK tutorial's `vmap(jacrev)`
contraction (from `benchmarks/kernel.py`). The tutorial is skipped where its Jacobians alone
exceed half the available memory. With ``--nt``, also neural-tangents 0.6.5 (``jax.jit`` of
``empirical_ntk_fn``, implementations 2 = NTK-vector products and 3 = structured derivatives,
same weights; run in the separate venv ``benchmarks/envs/nt`` described in
``benchmarks/kernel.py``; warm time, i.e. after the compilation of the first call).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kernel_lambda_min.py [--sizes 512x512 ...]
      [--nt]
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import lossgeometry as lg
from kernel import empirical_ntk_jacobian_contraction, make_fnet_single, run_nt
from lossgeometry.kernel.memory import available_memory, format_bytes


def rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def lam_min(K: torch.Tensor) -> float:
    return float(torch.linalg.eigvalsh(K.double())[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="*", default=["512x512", "2048x1024", "8192x1024"])
    ap.add_argument("--nt", action="store_true", help="also neural-tangents (impl. 2 and 3)")
    ap.add_argument("--repeats", type=int, default=1, help="warm neural-tangents repeats")
    args = ap.parse_args()
    limit = available_memory() // 2
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, limit {format_bytes(limit)}"
    )
    print(
        "| n | m | p | lg structured: K cold (s) | K warm (s) | + λ_min (s) "
        "| tutorial: K (s) | + λ_min (s) "
        "| speed-up (K) | λ_min lg | λ_min tutorial | rel. diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.sizes:
        n, m = (int(v) for v in spec.split("x"))
        model = lg.models.mlp(64, m, 2, 1, activation="tanh", parameterization="ntk", seed=0)
        X = torch.randn(n, 64, generator=torch.Generator().manual_seed(0))
        pb = lg.Problem(model, X, torch.zeros(n, 1))
        t0 = time.perf_counter()
        K = lg.tangent_kernel(pb, method="structured")
        t_cold = time.perf_counter() - t0
        del K
        t0 = time.perf_counter()  # warm: the per-layer plan is built and verified once
        K = lg.tangent_kernel(pb, method="structured")
        t_k = time.perf_counter() - t0
        lm = lam_min(K)
        t_l = time.perf_counter() - t0  # K warm + eigvalsh
        del K
        need = 4 * n * pb.p * 2
        if need > limit:
            tut = f"cannot (Jacobians need {format_bytes(need)})"
            row = [tut, "—", "—", f"{lm:.6e}", "—", "—"]
        else:
            params = {k: v.detach() for k, v in model.named_parameters()}
            fnet = make_fnet_single(model)
            empirical_ntk_jacobian_contraction(fnet, params, X[:2], X[:2])  # warm-up
            t0 = time.perf_counter()
            Kt = empirical_ntk_jacobian_contraction(fnet, params, X, X)
            Kt = Kt.reshape(n, n)
            tt_k = time.perf_counter() - t0
            lt = lam_min(Kt)
            tt_l = time.perf_counter() - t0
            del Kt
            row = [
                f"{tt_k:.2f}",
                f"{tt_l:.2f}",
                f"{tt_k / t_k:.1f}×",
                f"{lm:.6e}",
                f"{lt:.6e}",
                f"{abs(lm - lt) / abs(lt):.1e}",
            ]
            # float32 kernels carry rounding of order eps·‖K‖, i.e. eps·κ relative in λ_min:
            # compare both methods again in float64, and each float32 value against that
            m64 = copy.deepcopy(model).double()
            p64 = {k: v.detach() for k, v in m64.named_parameters()}
            X64 = X.double()
            lm64 = lam_min(lg.tangent_kernel(lg.Problem(m64, X64, torch.zeros(n, 1).double())))
            lt64 = lam_min(
                empirical_ntk_jacobian_contraction(make_fnet_single(m64), p64, X64, X64).reshape(
                    n, n
                )
            )
            print(
                f"  float64: λ_min lg {lm64:.10e}, tutorial {lt64:.10e} (rel. diff "
                f"{abs(lm64 - lt64) / abs(lt64):.1e}); float32 errors against it: lg "
                f"{abs(lm - lm64) / lm64:.1e}, tutorial {abs(lt - lm64) / lm64:.1e}",
                flush=True,
            )
        print(
            f"| {n} | {m} | {pb.p:,} | {t_cold:.2f} | {t_k:.2f} | {t_l:.2f} | "
            + " | ".join(row)
            + " |",
            flush=True,
        )
        if args.nt:
            out = run_nt(model, X, m, 2, 1, args, [3, 2])
            if "error" in out:
                print(f"  neural-tangents: {out['error']}", flush=True)
                continue
            for impl, r in out["results"].items():
                if "error" in r:
                    print(f"  neural-tangents impl {impl}: {r['error']}", flush=True)
                    continue
                lnt = lam_min(torch.from_numpy(r["K"]))
                print(
                    f"  neural-tangents impl {impl}: K warm {r['median']:.2f} s "
                    f"(first call with jit {r['first']:.2f} s), λ_min {lnt:.6e} "
                    f"(rel. diff to lg {abs(lnt - lm) / abs(lm):.1e}); lg K warm is "
                    f"{r['median'] / t_k:.1f}× faster",
                    flush=True,
                )
    print(f"peak RSS of the process: {format_bytes(rss())}")


if __name__ == "__main__":
    main()
