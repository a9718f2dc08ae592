"""``torchrun -m lossgeometry analyze`` for real: 2 gloo ranks started by torch.distributed.run.

Three launches (about 10 s each): a tiny float64 report on 2 ranks against the same report on
one process (numbers to 1e-10 relative, ``world_size`` recorded, rank 0 the only writer); a
rank that raises; a rank that hangs, which rank 0 reports within ``--timeout``. The failing
rank comes from a model factory that misbehaves on ``RANK=1`` only, so no test hook lives in
the package.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import lossgeometry
from lossgeometry.app.config import load_config
from lossgeometry.app.report.build import build_report
from tests.conftest import tiny_toml

SECTIONS = ["problem", "training", "surface", "kernel", "curvature", "manifold"]
DATA_PARALLEL = {
    "problem": True,
    "training": True,
    "surface": True,
    "kernel": True,
    "curvature": True,
    "manifold": False,
}
"""How each section runs on 2 ranks (the registry's flags): the training steps, the surface's
losses, the kernel's rows and the curvature's Hessian products are combined over the ranks;
the manifold analysis runs on all samples on each rank."""
SMALL = (
    '[report.curvature]\nsolver = "lanczos"\nprobes = 2\nsteps = 20\ntrace_samples = 20\n'
    "[report.manifold]\nhessian = false\nwalk_steps = 1\n"
)
"""Fewer products than the defaults, so that the launch takes seconds."""

_TIMING = ("seconds", "time", "created", "timings")

FACTORY = """
import os, time
import torch
from torch import nn

def make(d_in, d_out, seed):
    if os.environ.get("RANK") == "1":
        if os.environ.get("LG_TEST_HANG"):
            time.sleep(120)
        raise RuntimeError("rank 1 fails on purpose")
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, 6), nn.Tanh(), nn.Linear(6, d_out))
"""


def _config(path: Path, extra_model: str = "") -> Path:
    text = 'dtype = "float64"\n' + tiny_toml(SECTIONS, extra=SMALL)
    if extra_model:
        text = text.replace('[model]\nname = "mlp"\nwidth = 12\ndepth = 1\n', extra_model)
    path.write_text(text, encoding="utf-8")
    return path


def _torchrun(args: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> Any:
    """``python -m torch.distributed.run --standalone --nproc-per-node 2 -m lossgeometry …``."""
    src = str(Path(lossgeometry.__file__).resolve().parents[1])
    full_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "lossgeometry",
        *args,
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=240)
    return proc, time.monotonic() - t0


def _numbers(tree: Any, where: str = "") -> dict[str, Any]:
    """Every leaf of a JSON tree by its path, timings left out."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            if not any(t in k for t in _TIMING):
                out.update(_numbers(v, f"{where}.{k}"))
        return out
    if isinstance(tree, list):
        out = {}
        for i, v in enumerate(tree):
            out.update(_numbers(v, f"{where}[{i}]"))
        return out
    return {where: tree}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_two_ranks_equal_one_process_and_rank_0_alone_writes(tmp_path: Path) -> None:
    cfg_path = _config(tmp_path / "tiny.toml")
    one = tmp_path / "one"
    build_report(load_config(cfg_path), one, progress=False, log=lambda *_: None)
    cwd = tmp_path / "cwd"  # where the ranks run: nothing may appear here
    cwd.mkdir()
    two = tmp_path / "two"
    proc, _ = _torchrun(["analyze", "-c", str(cfg_path), "-o", str(two)], cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    res1 = json.loads((one / "results.json").read_text())
    res2 = json.loads((two / "results.json").read_text())
    assert res1["meta"]["world_size"] == 1
    assert res2["meta"]["world_size"] == 2
    for name in SECTIONS:
        s1, s2 = res1["sections"][name], res2["sections"][name]
        assert s1["error"] is None and s2["error"] is None, (s1["error"], s2["error"])
        assert (s1["world_size"], s1["data_parallel"]) == (1, False)
        assert (s2["world_size"], s2["data_parallel"]) == (2, DATA_PARALLEL[name])
    # the numbers: 1e-10 relative; eigen-residual norms are round-off (~1e-14), hence the
    # absolute floor 1e-12 (far below any reported quantity here). The manifold analysis
    # (Gauss-Newton from w_T, one-process on every rank) starts from the data-parallel
    # training's w_T, equal to one process's to ~1e-16; one ulp of w_T moves its Jacobian's
    # singular values by up to 10 % here, so only its integers, flags and texts are compared.
    n1 = _numbers({k: v for k, v in res1.items() if k != "meta"})
    n2 = _numbers({k: v for k, v in res2.items() if k != "meta"})
    assert n1.keys() == n2.keys()
    bad = []
    for key, a in n1.items():
        b = n2[key]
        if key.endswith((".world_size", ".data_parallel")):
            continue
        if key.startswith(".sections.manifold.") and isinstance(a, float):
            continue
        if isinstance(a, float) or isinstance(b, float):
            if math.isnan(a) and math.isnan(b):
                continue
            if abs(a - b) > 1e-10 * max(abs(a), abs(b)) + 1e-12:
                bad.append(f"{key}: {a!r} vs {b!r}")
        elif a != b:
            bad.append(f"{key}: {a!r} vs {b!r}")
    assert not bad, "\n".join(bad[:40])
    curv = res2["sections"]["curvature"]["results"]["points"]["trained"]["spectrum"]
    assert curv["top"][0] > 0  # a real measurement was compared
    assert res2["sections"]["manifold"]["results"]["success"] is True

    # one writer: the same files as the one-process report, nothing in the ranks' directory
    assert _files(two) == _files(one)
    assert _files(cwd) == set()
    page = (two / "index.html").read_text(encoding="utf-8")
    assert "world_size 2" in page and "data-parallel over 2 ranks" in page
    assert "on all samples on each of 2 ranks (not data-parallel)" in page  # manifold
    assert (proc.stdout + proc.stderr).count("report:") == 1  # rank 0 alone prints


def test_a_rank_that_raises_stops_every_rank_and_leaves_the_report(tmp_path: Path) -> None:
    factory = tmp_path / "factory.py"
    factory.write_text(FACTORY, encoding="utf-8")
    model = f'[model]\nfactory = "{factory.as_posix()}:make"\n'
    cfg_path = _config(tmp_path / "bad.toml", model)
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("the previous report", encoding="utf-8")
    args = ["analyze", "-c", str(cfg_path), "-o", str(out), "--trust-config", "--timeout", "30"]
    proc, seconds = _torchrun(args, tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert seconds < 120, text
    assert "error: rank 1 of 2: model factory" in text
    assert "rank 1 fails on purpose" in text
    assert (out / "index.html").read_text(encoding="utf-8") == "the previous report"
    assert not (out / "results.json").exists()


@pytest.mark.timeout(300)
def test_a_rank_that_hangs_gives_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    factory = tmp_path / "factory.py"
    factory.write_text(FACTORY, encoding="utf-8")
    model = f'[model]\nfactory = "{factory.as_posix()}:make"\n'
    cfg_path = _config(tmp_path / "hang.toml", model)
    out = tmp_path / "out"
    args = ["analyze", "-c", str(cfg_path), "-o", str(out), "--trust-config", "--timeout", "5"]
    proc, seconds = _torchrun(args, tmp_path, env={"LG_TEST_HANG": "1"})
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert seconds < 100, text  # rank 1 sleeps 120 s: rank 0 gave up after 5
    assert "error: rank 0 of 2: a collective over the ranks failed" in text
    assert "within 5 s" in text
    assert not (out / "results.json").exists()
    assert (out / ".staging").is_dir()  # rank 0's run, left for a rerun


# --- without a launch: one process, the config's device, the timeout -----------------------


def test_one_process_ranks_are_the_identity() -> None:
    from lossgeometry.app.launch import Ranks, start
    from lossgeometry.app.sections.registry import available_sections

    ranks = start(None, None)  # no torchrun variables here
    assert ranks == Ranks() and ranks.is_main and not ranks.distributed
    assert Ranks.current() == Ranks()  # no process group in this process
    marker = object()
    assert ranks.same(marker) is marker and ranks.on_main(lambda: marker) is marker
    problem, _ = _tiny_problem()
    assert ranks.problem_for(problem, True) is problem
    flags = {s.name: s.data_parallel for s in available_sections()}
    assert {k: flags[k] for k in DATA_PARALLEL} == DATA_PARALLEL


def _tiny_problem() -> Any:
    from lossgeometry.app.config import as_config, build_problem

    return build_problem(as_config({"data": {"n": 8}, "model": {"width": 4, "depth": 1}}))


def test_timeout_must_be_positive() -> None:
    from lossgeometry.app.launch import start

    with pytest.raises(ValueError, match="--timeout must be a positive number of seconds"):
        start(None, 0)


def test_device_of_the_config() -> None:
    import torch

    from lossgeometry.app.config import AnalyzeConfig, as_config, build_problem
    from lossgeometry.options import OptionsError

    assert "device" not in AnalyzeConfig().to_dict()  # unset: the cache keys stay as they were
    assert as_config({"device": "cpu"}).to_dict()["device"] == "cpu"
    with pytest.raises(OptionsError, match="device must be 'cpu' or 'cuda'"):
        as_config({"device": "gpu"})
    problem, _ = build_problem(as_config({"device": "cpu", "data": {"n": 8}}))
    assert problem.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            build_problem(as_config({"device": "cuda", "data": {"n": 8}}))
