"""Second-order measurements on stock attention, against a dense float64 oracle.

torch's fused attention kernels (CPU flash attention, the multi-head-attention fast path) have
no double backward and no forward-mode AD; every second-order product of lossgeometry selects
the math backend by itself (:mod:`lossgeometry._attention`). The oracle is
``torch.autograd.functional.hessian`` of the loss written from scratch, under the math backend.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.functional import hessian, jacobian
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

import lossgeometry as lg
from lossgeometry._attention import differentiable_attention
from lossgeometry.linalg.hutchinson import hutchpp

D, T, N = 8, 3, 4


class EncoderModel(nn.Module):
    """A stock ``nn.TransformerEncoderLayer`` and a linear head (eval mode: fast path on)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(D, 2, 12, dropout=0.0, batch_first=True)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(x).mean(dim=1))


class DecoderModel(nn.Module):
    """A stock ``nn.TransformerDecoderLayer`` attending to its own input."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(D, 2, 12, dropout=0.0, batch_first=True)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(x, x).mean(dim=1))


class MHAModel(nn.Module):
    """``nn.MultiheadAttention`` without attention weights (the scaled-dot-product path)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(D, 2, batch_first=True)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(x, x, x, need_weights=False)
        return self.head(y.mean(dim=1))


class SDPAModel(nn.Module):
    """A module calling ``F.scaled_dot_product_attention`` itself (causal, two heads)."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(D, D)
        self.kv = nn.Linear(D, D)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.reshape(n, T, 2, D // 2).transpose(1, 2)

        kv = heads(self.kv(x))
        y = F.scaled_dot_product_attention(heads(self.q(x)), kv, kv, is_causal=True)
        return self.head(y.transpose(1, 2).reshape(n, T, D).mean(dim=1))


MODELS = [EncoderModel, DecoderModel, MHAModel, SDPAModel]


def _problem(cls: type[nn.Module], dtype: torch.dtype = torch.float64) -> lg.Problem:
    torch.manual_seed(0)
    model = cls().to(dtype).eval()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(N, T, D, generator=g).to(dtype)
    Y = torch.randn(N, 2, generator=g).to(dtype)
    return lg.Problem(model, X, Y)


def _oracle(problem: lg.Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """``(∇²L, J)`` of ``L = ½‖F − Y‖²`` from scratch: own parameter split, plain autograd."""
    model = problem.model
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    X, Y = problem.batch()

    def outputs(w: torch.Tensor) -> torch.Tensor:
        parts, pos = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            size = shape.numel()
            parts[name] = w[pos : pos + size].reshape(shape)
            pos += size
        return functional_call(model, parts, (X,))

    def loss(w: torch.Tensor) -> torch.Tensor:
        return 0.5 * (outputs(w) - Y).pow(2).sum()

    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    with sdpa_kernel(SDPBackend.MATH):
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            H = hessian(loss, w)
            J = jacobian(lambda w_: outputs(w_).reshape(-1), w)
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
    return H, J


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_dense_hessian_of_stock_attention_matches_the_oracle(cls: type[nn.Module]) -> None:
    problem = _problem(cls)
    H_ref, J_ref = _oracle(problem)
    scale = float(H_ref.abs().max())
    H = lg.hessian_operator(problem).to_dense()
    assert torch.allclose(H, H_ref, atol=1e-10 * scale, rtol=0)
    H_fwd = lg.hessian_operator(problem, backend="fwdrev").to_dense()
    assert torch.allclose(H_fwd, H_ref, atol=1e-10 * scale, rtol=0)
    G = lg.hessian_operator(problem, of="ggn").to_dense()
    assert torch.allclose(G, J_ref.T @ J_ref, atol=1e-10 * scale, rtol=0)
    v = torch.randn(problem.p, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(problem.hvp(None, v), H_ref @ v, atol=1e-9 * scale, rtol=0)
    jv = problem.jvp(None, v).reshape(-1)
    assert torch.allclose(jv, J_ref @ v, atol=1e-10 * float(J_ref.abs().max()), rtol=0)

    spec = lg.hessian_spectrum(problem, solver="dense")
    ref = torch.linalg.eigvalsh(H_ref)
    assert spec.converged
    assert abs(float(spec.top[0]) - float(ref[-1])) <= 1e-9 * scale
    assert abs(float(spec.bottom[0]) - float(ref[0])) <= 1e-9 * scale
    trace = lg.hessian_trace(problem, estimator="exact")
    assert trace.estimate == pytest.approx(float(torch.trace(H_ref)), rel=1e-9, abs=1e-9 * scale)
    hutch = lg.hessian_trace(problem, samples=30)  # Hutch++: the oracle with the same probes
    same = hutchpp(H_ref, 30, seed=0, block=16)
    assert hutch.estimate == pytest.approx(same.estimate, rel=1e-8, abs=1e-9 * scale)


@pytest.mark.parametrize("cls", [EncoderModel, SDPAModel], ids=lambda c: c.__name__)
def test_model_hessian_of_stock_attention_matches_the_oracle(cls: type[nn.Module]) -> None:
    """``M_r = ∇²L − JᵀJ`` (MSE, sum): the model-Hessian operator and the directional form."""
    problem = _problem(cls)
    H_ref, J_ref = _oracle(problem)
    M_ref = H_ref - J_ref.T @ J_ref
    r = problem.residual()
    M = lg.model_hessian_operator(problem, None, r).to_dense()
    assert torch.allclose(M, M_ref, atol=1e-10 * float(H_ref.abs().max()), rtol=0)
    norm = lg.model_hessian_norm(problem, maxiter=3, restarts=1)
    assert 0 < norm.norm


def test_float32_attention_hessian_runs_and_agrees_with_float64() -> None:
    """A float32 encoder (the CPU flash kernel's dtype) against its float64 copy."""
    problem = _problem(EncoderModel, torch.float32)
    H32 = lg.hessian_operator(problem).to_dense().double()
    H64 = lg.hessian_operator(problem, dtype=torch.float64).to_dense()
    assert torch.allclose(H32, H64, atol=1e-4 * float(H64.abs().max()), rtol=0)


def test_the_context_restores_the_attention_settings() -> None:
    before = torch.backends.mha.get_fastpath_enabled()
    math_before = torch.backends.cuda.math_sdp_enabled()
    flash_before = torch.backends.cuda.flash_sdp_enabled()
    with differentiable_attention():
        assert not torch.backends.mha.get_fastpath_enabled()
        assert not torch.backends.cuda.flash_sdp_enabled()
        assert torch.backends.cuda.math_sdp_enabled()
        with differentiable_attention():  # nested
            assert not torch.backends.mha.get_fastpath_enabled()
        assert not torch.backends.mha.get_fastpath_enabled()
    assert torch.backends.mha.get_fastpath_enabled() == before
    assert torch.backends.cuda.math_sdp_enabled() == math_before
    assert torch.backends.cuda.flash_sdp_enabled() == flash_before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_attention_hessian_on_cuda_matches_the_cpu_oracle() -> None:
    problem = _problem(EncoderModel)
    H_ref, _ = _oracle(problem)
    H = lg.hessian_operator(problem.to("cuda")).to_dense().cpu()
    assert torch.allclose(H, H_ref, atol=1e-9 * float(H_ref.abs().max()), rtol=0)
    cuda32 = problem.to("cuda", torch.float32)
    spec = lg.hessian_spectrum(cuda32, solver="dense")
    ref = float(torch.linalg.eigvalsh(H_ref)[-1])
    assert float(spec.top[0]) == pytest.approx(ref, rel=1e-3)
