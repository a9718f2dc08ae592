"""Inputs of any shape and the bce loss from the command line and in the report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lossgeometry.app.cli import app

FACTORY = """
import torch
from torch import nn


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.out = nn.Linear(3, 8), nn.Linear(2, 8), nn.Linear(8, 1)

    def forward(self, x, z):
        return self.out(torch.tanh(self.a(x) + self.b(z)))


def make(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = {"x": torch.randn(12, 3, generator=g), "z": torch.randn(12, 2, generator=g)}
    Y = (torch.rand(12, 1, generator=g) > 0.5).float()
    torch.manual_seed(seed)
    return DictNet(), X, Y
"""


def test_analyze_a_dict_input_factory_with_bce(tmp_path):
    (tmp_path / "fm.py").write_text(FACTORY)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[loss]\nname = "bce"\n[train]\nsteps = 5\nlr = 0.5\nlr_scale = "none"\n'
        '[report]\nsections = ["problem", "training", "kernel", "curvature"]\n'
    )
    out = tmp_path / "rep"
    res = CliRunner().invoke(
        app,
        [
            "analyze",
            "-c",
            str(cfg),
            "--model",
            f"{tmp_path / 'fm.py'}:make",
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    sections = json.loads((out / "results.json").read_text())["sections"]
    assert all(s["error"] is None for s in sections.values()), sections
    problem = sections["problem"]["summary"]
    assert problem["loss"] == "bce" and problem["reduction"] == "mean"
    assert problem["n"] == 12 and problem["k"] == 1
    # bce's per-sample loss on (n, 1) targets: the kernel has order n·k = 12
    assert sections["kernel"]["summary"]["size"] == 12
    # oracle: λ_max of the dense float64 Hessian of torch's mean BCE at the factory's init
    import importlib.util

    import torch
    from torch.func import functional_call

    spec = importlib.util.spec_from_file_location("fm", tmp_path / "fm.py")
    fm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fm)
    model, X, Y = fm.make(seed=0)
    model = model.double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    w0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(w):
        parts = torch.split(w, [s.numel() for s in shapes])
        params = {n: t.view(s) for n, t, s in zip(names, parts, shapes, strict=True)}
        out = functional_call(model, params, (), {k: v.double() for k, v in X.items()})
        return torch.nn.functional.binary_cross_entropy_with_logits(out, Y.double())

    lam = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, w0))[-1].item()
    assert sections["curvature"]["summary"]["lambda_max_init"] == pytest.approx(lam, rel=2e-3)
