r"""Per-machine rates for the kernel cost model (:mod:`~lossgeometry.kernel.cost`).

:func:`measure` times five kernels on a device, float32: a ``512 × 512 @ 512 × 1024`` GEMM,
batched ``(160 × 256) @ (256 × 64)`` products (per-sample-gradient shapes), the forward and
input-gradient pass of a 3x3 convolution (8 × 16 × 32 × 32, 16 channels: the rate of the
layer passes, well below the GEMM's on a CPU), a 16 MiB copy and 200 tiny additions (the
dispatch time), best of 5 after a warm-up, about 0.3 s on a CPU.
:func:`calibration` measures once per machine and caches the result on disk, in
``$XDG_CACHE_HOME/lossgeometry/calibration.json`` (default ``~/.cache/lossgeometry``), keyed
by :func:`calibration_key` (torch version, device, thread count). The file is written
atomically (a temporary file in the same folder, then ``os.replace``); a corrupt, foreign or
implausible entry is measured again and rewritten, other keys are kept.
:func:`set_calibration` fixes the numbers (tests do).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

CACHE_FILE = "calibration.json"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Measured speeds of one machine (device, torch version, threads)."""

    gemm: float
    """flop/s of a large float32 matrix product (the kernel contraction ``P Pᵀ``)."""
    batched: float
    """flop/s of batched small matrix products (per-sample gradients)."""
    layer: float
    """flop/s of a layer's forward and backward passes (a 3x3 convolution, 16 channels)."""
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
        for f in ("gemm", "batched", "layer", "bandwidth", "overhead"):
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
    """Time the five kernels of the model on ``device`` (float32; about 0.3 s on a CPU)."""
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
    # a layer pass: forward and input gradient of a 3x3 convolution, 16 -> 16 channels
    xc = rnd(8, 16, 32, 32).requires_grad_(True)
    wc = rnd(16, 16, 3, 3)

    def conv_pass() -> None:
        with torch.enable_grad():
            out = torch.nn.functional.conv2d(xc, wc, padding=1)
            torch.autograd.grad(out, xc, out)

    layer = _rate(conv_pass, 2 * 2.0 * 8 * 16 * 9 * 16 * 32 * 32, dev)
    src = rnd(1 << 22)
    dst = torch.empty_like(src)
    bandwidth = _rate(lambda: dst.copy_(src), 2.0 * src.numel() * 4, dev)
    tiny = rnd(4)

    def ops() -> None:
        for _ in range(200):
            tiny.add(1.0)

    overhead = 1.0 / _rate(ops, 200.0, dev)
    return Calibration(gemm, batched, layer, bandwidth, overhead, key=calibration_key(dev))


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


def calibrate(device: torch.device | str = "cpu") -> Calibration:
    """Measure ``device`` again now and replace its cached entry."""
    return calibration(device, refresh=True)
