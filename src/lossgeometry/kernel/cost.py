r"""The cost model behind ``tangent_kernel(method="auto")``: predicted seconds of each route.

``auto`` estimates, for the request at hand (``m`` samples, ``ks`` outputs per sample, the
kernel mode), how long the ``structured`` and the ``jacobian`` routes would take, and takes
the cheaper; ``ntvp`` only when neither fits in memory (one sample's factors exceed the
budget). Each route is a sum of terms ``flops / rate + bytes / bandwidth``:

* a **layer pass** (forward, or backward of activations) costs ``F`` flops per sample, with
  ``F = Σ_layers 2 G S d_A d_B`` (``G`` groups, ``S`` positions, ``d_A`` inputs plus bias,
  ``d_B`` outputs of each layer with a rule; ``2·p`` for parameters without one), at the
  rate of batched small matrix products;
* the **structured** route: a forward and ``ks`` backward passes to the probes,
  ``m (1 + ks) F``; per layer, its route from the plan (:mod:`~lossgeometry.kernel.structured`):

  - Gram with one position (dense layers on vectors): GEMMs of ``pairs · (d_A + ks² d_B)``
    multiply-adds (``pairs`` = sample pairs of the requested blocks);
  - Gram with ``S > 1`` positions: the flop count of
    :func:`~lossgeometry.kernel.rules.base.bilinear_costs` times its penalty, at the GEMM rate;
  - materialized: the per-sample gradient, ``m ks G S d_A d_B`` multiply-adds (batched small
    products) and ``m ks G d_A d_B`` elements written, then ``pairs · ks² · G d_A d_B`` in one
    GEMM;

  and for parameters without a rule (``p_fb`` of them) a ``vmap(jacrev)`` of those only, which
  still runs a forward and ``ks`` backward passes through the whole network,
  ``m (1 + ks) F``, plus ``pairs · ks² · p_fb`` in the GEMM;
* the **jacobian** route: a forward and ``ks`` backward passes that also form the weight
  gradients, ``m (1 + 2 ks) F``; ``m ks p`` elements written; ``pairs · ks² · p`` in the GEMM.

``pairs`` is ``m (m + 1) / 2`` for the full kernel or its trace (the diagonal block is formed
as a symmetric product, the off-diagonal blocks once) and ``m`` for ``diagonal_only``; the
trace modes replace ``ks²`` by ``ks`` in the contractions.

The rates come from a **calibration** per machine (:func:`calibrate`): a large float32
GEMM, batched small matrix products of per-sample-gradient shapes, a large copy and the
dispatch time of a tiny operation, about 0.2 s of timing. It is cached on disk, in
``$XDG_CACHE_HOME/lossgeometry/calibration.json`` (default ``~/.cache/lossgeometry``), keyed
by torch version, device and thread count; the file is written atomically and a corrupt or
foreign entry is measured again. :func:`set_calibration` fixes the numbers (tests do).

The model only has to rank the routes. ``jacobian`` is taken when it is predicted at least
:data:`MARGIN` times cheaper, so that near-ties (convolutional nets, where both routes do the
same passes) keep the structured kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lossgeometry.problem import Problem

MARGIN: float = 1.05
"""``jacobian`` must be predicted this many times faster than ``structured`` to be chosen."""

CACHE_FILE = "calibration.json"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Measured speeds of one machine (device, torch version, threads)."""

    gemm: float
    """flop/s of a large float32 matrix product (the kernel contraction ``P Pᵀ``)."""
    batched: float
    """flop/s of batched small matrix products (per-sample gradients, layer passes)."""
    bandwidth: float
    """bytes/s of a large copy (read plus write counted once)."""
    overhead: float
    """seconds per dispatched tiny operation."""
    key: str = ""
    """What the numbers were measured on (see :func:`calibration_key`)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on missing or bad numbers."""
        vals = {}
        for f in ("gemm", "batched", "bandwidth", "overhead"):
            v = float(d[f])
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"calibration field {f} = {v!r} is not a positive number")
            vals[f] = v
        return cls(**vals, key=str(d.get("key", "")))


_FIXED: Calibration | None = None
_MEMO: dict[str, Calibration] = {}


def set_calibration(cal: Calibration | None) -> None:
    """Use ``cal`` for every decision (``None``: measure or read the cache again)."""
    global _FIXED
    _FIXED = cal


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lossgeometry``, or ``~/.cache/lossgeometry``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lossgeometry"


def calibration_key(device: torch.device) -> str:
    """``torch version | device (name) | threads``: what one calibration is valid for."""
    name = device.type
    if device.type == "cuda":
        name += ":" + torch.cuda.get_device_name(device)
    return f"torch {torch.__version__} | {name} | threads {torch.get_num_threads()}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn: Any, work: float, device: torch.device, repeats: int = 5) -> float:
    """``work`` per second of ``fn`` (best of ``repeats`` after a warm-up)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return work / max(best, 1e-9)


def measure(device: torch.device | str = "cpu") -> Calibration:
    """Time the four kernels of the model on ``device`` (float32; about 0.2 s on a CPU)."""
    dev = torch.device(device)
    g = torch.Generator(device=dev).manual_seed(0)
    big = 2048 if dev.type == "cuda" else 512

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, device=dev)

    a, b = rnd(big, big), rnd(big, 2 * big)
    gemm = _rate(lambda: a @ b, 2.0 * big * big * 2 * big, dev)
    # per-sample gradients: (ks·d_B × S) @ (S × d_A) for each sample of a chunk
    x, y = rnd(32, 160, 256), rnd(32, 256, 64)
    batched = _rate(lambda: torch.bmm(x, y), 2.0 * 32 * 160 * 256 * 64, dev)
    src = rnd(1 << 22)
    dst = torch.empty_like(src)
    bandwidth = _rate(lambda: dst.copy_(src), 2.0 * src.numel() * 4, dev)
    tiny = rnd(4)

    def ops() -> None:
        for _ in range(200):
            tiny.add(1.0)

    overhead = 1.0 / _rate(ops, 200.0, dev)
    return Calibration(gemm, batched, bandwidth, overhead, key=calibration_key(dev))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (a temporary file in the same folder, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def calibration(device: torch.device | str = "cpu", *, refresh: bool = False) -> Calibration:
    """The calibration of ``device``: fixed, memoized, cached on disk, or measured now.

    A missing, corrupt or implausible cache entry is measured again and the file rewritten
    (other machines' entries in it are kept). An unwritable cache folder only costs the
    measurement at every new process.
    """
    if _FIXED is not None and not refresh:
        return _FIXED
    dev = torch.device(device)
    key = calibration_key(dev)
    if not refresh and key in _MEMO:
        return _MEMO[key]
    path = cache_dir() / CACHE_FILE
    data = _read(path)
    cal = None
    if not refresh and isinstance(data.get(key), dict):
        try:
            cal = Calibration.from_dict({**data[key], "key": key})
        except (KeyError, TypeError, ValueError):
            cal = None
    if cal is None:
        cal = measure(dev)
        data[key] = cal.to_dict()
        with contextlib.suppress(OSError):
            _write(path, data)
    _MEMO[key] = cal
    return cal


# --------------------------------------------------------------------------- route costs
@dataclasses.dataclass(frozen=True)
class Work:
    """Work of one route: flops by kind and bytes moved; :meth:`seconds` under a calibration."""

    gemm_flops: float = 0.0
    batched_flops: float = 0.0
    bytes: float = 0.0
    ops: float = 0.0

    def __add__(self, other: Work) -> Work:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return Work(*(a + b for a, b in pairs))

    @property
    def flops(self) -> float:
        """All floating-point operations counted (multiply and add separately)."""
        return self.gemm_flops + self.batched_flops

    def seconds(self, cal: Calibration) -> float:
        """Predicted time: ``gemm/rate + batched/rate + bytes/bandwidth + ops·overhead``."""
        return (
            self.gemm_flops / cal.gemm
            + self.batched_flops / cal.batched
            + self.bytes / cal.bandwidth
            + self.ops * cal.overhead
        )


def _pairs(m: int, diagonal_only: bool) -> float:
    return float(m) if diagonal_only else m * (m + 1) / 2.0


def _passes(plan: Any, m: int, ks: int, F: float, item: int) -> Work:
    """A forward and ``ks`` backward passes (activation gradients only) over ``m`` samples."""
    act = plan.activation_elements
    return Work(batched_flops=m * (1 + ks) * F, bytes=m * (1 + 2 * ks) * act * item)


def forward_flops(plan: Any) -> float:
    """Per-sample forward flops ``F`` of a plan's layers (``2·p_fb`` for the fallback)."""
    F = 0.0
    for e in plan.entries:
        G, S, dA, dB = e.shape
        if e.rule.name == "layernorm":
            F += 8.0 * S * dB
        elif e.rule.name == "embedding":
            F += float(S * dB)
        else:
            F += 2.0 * G * S * dA * dB
    return F + 2.0 * plan.fallback_size


def structured_work(
    plan: Any, m: int, ks: int, *, trace: bool = False, diagonal_only: bool = False, item: int = 4
) -> Work:
    """Work of the structured route on ``m`` samples and ``ks`` outputs (see module doc)."""
    from lossgeometry.kernel.rules.base import bilinear_costs

    pairs = _pairs(m, diagonal_only)
    kk = ks if trace else ks * ks
    F = forward_flops(plan)
    w = _passes(plan, m, ks, F, item) + Work(ops=30.0 * len(plan.entries))
    for e in plan.entries:
        G, S, dA, dB = e.shape
        if e.rule.name == "layernorm":
            X = 2 * dB
            w = w + Work(batched_flops=3.0 * m * ks * S * dB, bytes=2.0 * m * ks * X * item)
            w = w + Work(gemm_flops=2.0 * pairs * kk * X)
            continue
        if e.route == "materialize":
            X = G * dA * dB
            form = 2.0 * m * ks * G * S * dA * dB if e.rule.name != "embedding" else 0.0
            w = w + Work(batched_flops=form, bytes=3.0 * m * ks * X * item)
            w = w + Work(gemm_flops=2.0 * pairs * kk * X)
        elif S == 1:
            w = w + Work(gemm_flops=2.0 * pairs * (dA + kk * dB), bytes=3.0 * pairs * kk * item)
        else:
            flops = bilinear_costs(1, 1, ks, G, S, dA, dB)["gram"] * pairs
            w = w + Work(gemm_flops=2.0 * flops)  # GRAM_PENALTY included
    if plan.fallback_size:
        w = w + _passes(plan, m, ks, F, item)
        w = w + Work(
            bytes=3.0 * m * ks * plan.fallback_size * item,
            gemm_flops=2.0 * pairs * kk * plan.fallback_size,
            ops=100.0 * len(plan.fallback),
        )
    return w


def jacobian_work(
    plan: Any,
    p: int,
    m: int,
    ks: int,
    *,
    trace: bool = False,
    diagonal_only: bool = False,
    item: int = 4,
) -> Work:
    """Work of the jacobian route (``vmap(jacrev)`` of all ``p`` parameters, contracted)."""
    pairs = _pairs(m, diagonal_only)
    kk = ks if trace else ks * ks
    F = forward_flops(plan)
    return _passes(plan, m, ks, F, item) + Work(
        batched_flops=m * ks * F,
        bytes=3.0 * m * ks * p * item,
        gemm_flops=2.0 * pairs * kk * p,
        ops=100.0 * (len(plan.entries) + len(plan.fallback)),
    )


def estimate(
    problem: Problem,
    *,
    m: int | None = None,
    ks: int | None = None,
    trace: bool = False,
    diagonal_only: bool = False,
    cal: Calibration | None = None,
) -> dict[str, float]:
    """Predicted seconds of the ``structured`` and ``jacobian`` routes for a request.

    Args:
        problem: the problem (its structured plan is built, or taken from the cache).
        m: samples (default ``problem.n``).
        ks: outputs per sample (default ``problem.k``).
        trace: the ``outputs="trace"`` kernel.
        diagonal_only: only the per-sample blocks.
        cal: rates (default :func:`calibration` of the problem's device).
    """
    from lossgeometry.kernel.structured import build_plan

    plan = build_plan(problem)
    m = problem.n if m is None else m
    ks = problem.k if ks is None else ks
    cal = cal if cal is not None else calibration(problem.device)
    item = torch.empty((), dtype=problem.dtype).element_size()
    kw = dict(trace=trace, diagonal_only=diagonal_only, item=item)
    return {
        "structured": structured_work(plan, m, ks, **kw).seconds(cal),
        "jacobian": jacobian_work(plan, problem.p, m, ks, **kw).seconds(cal),
    }


def choose_method(
    problem: Problem,
    *,
    m: int,
    ks: int,
    trace: bool,
    diagonal_only: bool,
    fits: Callable[[str], bool],
) -> str:
    """The route ``method="auto"`` takes: ``"structured"``, ``"jacobian"`` or ``"ntvp"``.

    Args:
        problem: the problem.
        m: samples of the request.
        ks: outputs per sample.
        trace: the trace kernel.
        diagonal_only: only the per-sample blocks.
        fits: whether one sample's factors of a route (``"structured"``/``"jacobian"``) fit
            in the memory budget (``tangent_kernel`` asks its memory guard).

    ``ntvp`` when neither dense route fits; else the cheaper of the two by :func:`estimate`,
    ``jacobian`` only if :data:`MARGIN` times cheaper.
    """
    from lossgeometry.kernel.structured import build_plan

    s_ok, j_ok = fits("structured"), fits("jacobian")
    if not (s_ok or j_ok):
        return "ntvp"
    if not j_ok:
        return "structured"
    if not s_ok:
        return "jacobian"
    plan = build_plan(problem)
    if not plan.fallback and all(e.route != "materialize" for e in plan.entries):
        return "structured"  # nothing materialized: the Jacobian route cannot be cheaper
    t = estimate(problem, m=m, ks=ks, trace=trace, diagonal_only=diagonal_only)
    return "jacobian" if t["jacobian"] * MARGIN < t["structured"] else "structured"
