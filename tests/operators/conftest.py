"""Shared fixtures: every operator on tiny float64 problems, paired with its dense oracle.

``case`` yields ``(name, operator, oracle)`` for each operator kind (loss Hessian with both
backends, GGN, model Hessian, Jacobian and its adjoint, both Gram matrices, NTK, a dense
matrix), so the tests in this folder run every check on every operator (curvlinops style).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import lossgeometry as lg
from lossgeometry.operators import GramOperator, JacobianOperator, as_torch_operator
from tests.operators import operator_oracles as orc

Case = tuple[str, lg.TorchLinearOperator, torch.Tensor]


def _hessian(model: str, loss: str, reduction: str, backend: str) -> Callable[[], tuple]:
    def build() -> tuple:
        P = orc.make_problem(model, loss, reduction)
        w = orc.point(P)
        return lg.hessian_operator(P, w, backend=backend), orc.loss_hessian(P, w)

    return build


def _ggn(model: str, loss: str, reduction: str) -> Callable[[], tuple]:
    def build() -> tuple:
        P = orc.make_problem(model, loss, reduction)
        w = orc.point(P)
        return lg.hessian_operator(P, w, of="ggn"), orc.ggn(P, w)

    return build


def _model_hessian(model: str, backend: str) -> Callable[[], tuple]:
    def build() -> tuple:
        P = orc.make_problem(model)
        w = orc.point(P)
        u = torch.randn(P.n, P.k, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        op = lg.model_hessian_operator(P, w, u, backend=backend, max_vectors=5)
        return op, orc.model_hessian(P, w, u)

    return build


def _jacobian(model: str, sel: list[int] | None, idx: list[int] | None, adjoint: bool = False):
    def build() -> tuple:
        P = orc.make_problem(model)
        w = orc.point(P)
        s = None if sel is None else torch.tensor(sel)
        i = None if idx is None else torch.tensor(idx)
        J = JacobianOperator(P, w, sel=s, indices=i, chunk_size=2)
        Jd = orc.jacobian(P, w, sel, idx)
        return (J.T, Jd.T) if adjoint else (J, Jd)

    return build


def _gram(model: str, side: str) -> Callable[[], tuple]:
    def build() -> tuple:
        P = orc.make_problem(model)
        w = orc.point(P)
        Jd = orc.jacobian(P, w)
        G = GramOperator(JacobianOperator(P, w), side)
        return G, (Jd @ Jd.T if side == "outer" else Jd.T @ Jd)

    return build


def _ntk(model: str, sel: list[int] | None, idx: list[int] | None) -> Callable[[], tuple]:
    def build() -> tuple:
        P = orc.make_problem(model)
        w = orc.point(P)
        op = lg.ntk_operator(P, w, chunk_size=2, outputs=sel or "full", indices=idx)
        Jd = orc.jacobian(P, w, sel, idx)
        return op, Jd @ Jd.T

    return build


def _dense() -> tuple:
    M = torch.randn(9, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return as_torch_operator(M), M


BUILDERS: dict[str, Callable[[], tuple]] = {
    "hessian-mlp-mse-sum-revrev": _hessian("mlp", "mse", "sum", "revrev"),
    "hessian-mlp-ce-mean-fwdrev": _hessian("mlp", "cross_entropy", "mean", "fwdrev"),
    "hessian-cnn-mse-mean-revrev": _hessian("cnn", "mse", "mean", "revrev"),
    "ggn-mlp-ce-mean": _ggn("mlp", "cross_entropy", "mean"),
    "ggn-cnn-mse-sum": _ggn("cnn", "mse", "sum"),
    "model_hessian-mlp-revrev": _model_hessian("mlp", "revrev"),
    "model_hessian-cnn-fwdrev": _model_hessian("cnn", "fwdrev"),
    "jacobian-mlp": _jacobian("mlp", None, None),
    "jacobian-cnn-outputs-samples": _jacobian("cnn", [0, 2], [1, 4, 5]),
    "jacobian_adjoint-mlp": _jacobian("mlp", None, None, adjoint=True),
    "gram_outer-mlp": _gram("mlp", "outer"),
    "gram_inner-cnn": _gram("cnn", "inner"),
    "ntk-mlp": _ntk("mlp", None, None),
    "ntk-cnn-outputs-samples": _ntk("cnn", [0, 2], [1, 4, 5]),
    "dense-rectangular": _dense,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def case(request: pytest.FixtureRequest) -> Case:
    """``(name, operator, dense float64 oracle)``; the operator's counter starts at zero."""
    op, oracle = BUILDERS[request.param]()
    op.reset_matvecs()
    return request.param, op, oracle
