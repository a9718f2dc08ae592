"""The cost model of ``method="auto"``: decisions under a fixed calibration, the disk cache.

No timing is asserted: the decisions are tested with fixed rates on the three model
structures of the benchmark (docs/benchmarks.md records that they match the measured
faster route), and the cache with a stand-in for the measurement.
"""

from __future__ import annotations

import json

import pytest
import torch

import lossgeometry as lg
from lossgeometry.kernel import calibration as calib
from lossgeometry.kernel import cost
from tests.kernel.kernel_oracle import oracle_kernel, rel_err

FIXED = cost.Calibration(
    gemm=150e9, batched=100e9, layer=40e9, bandwidth=20e9, overhead=2e-6, key="test"
)


@pytest.fixture(autouse=True)
def _fixed_rates():
    cost.set_calibration(FIXED)
    yield
    cost.set_calibration(None)


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _benchmark_problem(kind: str) -> lg.Problem:
    """The benchmark's MLP (n=256), CNN (n=256) and transformer (n=64), random data."""
    if kind == "mlp":
        model = lg.models.mlp(64, 256, 2, 10, parameterization="ntk", seed=0)
        X = torch.randn(256, 64, generator=_g())
    elif kind == "cnn":
        model = lg.models.cnn(1, (32, 32), 3, 10, input_size=8, parameterization="ntk", seed=0)
        X = torch.randn(256, 1, 8, 8, generator=_g())
    else:
        model = lg.models.transformer(
            vocab_size=50, d_model=64, nhead=4, dim_feedforward=128, num_classes=10,
            max_len=32, seed=0,
        )  # fmt: skip
        X = torch.randint(0, 50, (64, 32), generator=_g())
    return lg.Problem(model, X, torch.zeros(X.shape[0], 10))


def _choice(pb: lg.Problem, fitting=("structured", "jacobian"), **kw) -> str:
    how = dict(m=pb.n, ks=pb.k, trace=False, diagonal_only=False) | kw
    return cost.choose_method(pb, fits=lambda name: name in fitting, **how)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("mlp", "structured"), ("cnn", "structured"), ("transformer", "jacobian")],
)
def test_decisions_on_the_benchmark_structures(kind, expected):
    pb = _benchmark_problem(kind)
    assert _choice(pb) == expected
    est = cost.estimate(pb)
    ratio = est["structured"] / est["jacobian"]
    if expected == "jacobian":
        assert ratio > cost.MARGIN
    else:
        assert ratio < cost.MARGIN


def test_transformer_gap_is_the_probe_pass():
    """With a fallback layer, structured ≈ jacobian's passes + one more forward/backward.

    (Not exactly: the weight-gradient work of the parameter-free and LayerNorm/embedding
    parts differs between the two counts.)
    """
    pb = _benchmark_problem("transformer")
    from lossgeometry.kernel.structured import build_plan

    plan = build_plan(pb)
    assert plan.fallback  # the positional embedding (no batch dimension)
    s = cost.structured_work(plan, pb.n, pb.k)
    j = cost.jacobian_work(plan, pb.p, pb.n, pb.k)
    F = cost.forward_flops(plan)
    gap = (s.layer_flops + s.batched_flops) - (j.layer_flops + j.batched_flops)
    assert gap == pytest.approx(pb.n * (1 + pb.k) * F, rel=0.05)


def test_mlp_needs_no_calibration(monkeypatch):
    """All layers on the Gram route: structured without measuring anything."""
    cost.set_calibration(None)
    monkeypatch.setattr(cost, "calibration", lambda *a, **k: pytest.fail("calibrated"))
    assert _choice(_benchmark_problem("mlp")) == "structured"


def test_trace_and_diagonal_are_cheaper():
    pb = _benchmark_problem("cnn")
    full = cost.estimate(pb)
    for kw in ({"trace": True}, {"diagonal_only": True}):
        other = cost.estimate(pb, **kw)
        assert all(other[r] < full[r] for r in full)


def test_ntvp_only_when_nothing_else_fits():
    torch.manual_seed(0)
    model = lg.models.mlp(3, 256, 2, 2, seed=0).double()
    X = torch.randn(4, 3, generator=_g(), dtype=torch.float64)
    pb = lg.Problem(model, X, torch.zeros(4, 2, dtype=torch.float64))
    assert _choice(pb, fitting=()) == "ntvp"
    assert _choice(pb, fitting=("jacobian",)) == "jacobian"
    assert _choice(pb, fitting=("structured",)) == "structured"
    K = lg.tangent_kernel(pb, max_memory=8 * 8 * 8 + 10**3)  # the kernel fits, factors not
    assert rel_err(K, oracle_kernel(model, X)) < 1e-10


def test_auto_on_a_transformer_is_exact():
    model = lg.models.transformer(
        vocab_size=7, d_model=8, nhead=2, dim_feedforward=8, num_classes=3, max_len=5, seed=0
    ).double()
    X = torch.randint(0, 7, (3, 5), generator=_g())
    pb = lg.Problem(model, X, torch.zeros(3, 3, dtype=torch.float64))
    K = lg.tangent_kernel(pb)  # whatever route auto takes
    assert rel_err(K, oracle_kernel(model, X)) < 1e-10
    for meth in ("structured", "jacobian"):
        assert rel_err(lg.tangent_kernel(pb, method=meth), K) < 1e-12


# --------------------------------------------------------------------- the calibration cache
@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty XDG cache and a counting stand-in for the measurement."""
    cost.set_calibration(None)
    calib._MEMO.clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake(device="cpu"):
        calls.append(device)
        return cost.Calibration(1e11, 5e10, 3e10, 1e10, 1e-6, key=calib.calibration_key(device))

    monkeypatch.setattr(calib, "measure", fake)
    yield tmp_path / "lossgeometry" / calib.CACHE_FILE, calls
    calib._MEMO.clear()


def test_calibration_is_measured_once_and_cached(cache):
    path, calls = cache
    a = calib.calibration("cpu")
    assert len(calls) == 1 and path.exists()
    data = json.loads(path.read_text())
    key = calib.calibration_key(torch.device("cpu"))
    assert key in data and f"torch {torch.__version__}" in key and "threads" in key
    calib._MEMO.clear()  # a new process: read from disk
    assert calib.calibration("cpu") == a and len(calls) == 1
    assert not list(path.parent.glob(".calibration-*"))  # no temporary file left


OLD = '{"KEY": {"gemm": 1, "batched": 1, "bandwidth": 1, "overhead": 1}}'  # no "layer"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"KEY": {"gemm": -1}}', OLD])
def test_corrupt_cache_is_measured_again(cache, content):
    path, calls = cache
    path.parent.mkdir(parents=True)
    key = calib.calibration_key(torch.device("cpu"))
    path.write_text(content.replace("KEY", key))
    cal = calib.calibration("cpu")
    assert len(calls) == 1 and cal.gemm == 1e11
    assert json.loads(path.read_text())[key]["gemm"] == 1e11


def test_other_machines_entries_are_kept(cache):
    path, _ = cache
    path.parent.mkdir(parents=True)
    other = {"gemm": 1.0, "batched": 1.0, "layer": 1.0, "bandwidth": 1.0, "overhead": 1.0}
    path.write_text(json.dumps({"torch 0.1 | cuda:X | threads 9": other}))
    calib.calibration("cpu")
    data = json.loads(path.read_text())
    assert data["torch 0.1 | cuda:X | threads 9"] == other and len(data) == 2


def test_unwritable_cache_still_calibrates(cache, monkeypatch):
    path, calls = cache
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    path.parent.write_text("a file where the folder should be")
    assert calib.calibration("cpu").gemm == 1e11 and len(calls) == 1


def test_calibration_from_dict_rejects_bad_numbers():
    with pytest.raises(ValueError, match="positive"):
        cost.Calibration.from_dict(
            {"gemm": 0, "batched": 1, "layer": 1, "bandwidth": 1, "overhead": 1}
        )
    d = FIXED.to_dict()
    assert cost.Calibration.from_dict(d) == FIXED
