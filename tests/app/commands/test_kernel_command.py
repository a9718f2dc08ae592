"""The `lossgeometry kernel` command and the report section, on a tiny config."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app

TINY = """
seed = 0
dtype = "float64"
[data]
name = "digits"
n = 12
[model]
name = "mlp"
width = 16
depth = 1
activation = "tanh"
parameterization = "ntk"
[train]
optimizer = "gd"
lr = 0.05
lr_scale = "none"
steps = 5
record_every = 1
"""


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_cli_kernel_both_points(tmp_path, tiny_config):
    out = tmp_path / "k.json"
    npy = tmp_path / "K.npy"
    res = CliRunner().invoke(
        app,
        [
            "kernel",
            "-c",
            str(tiny_config),
            "--at",
            "both",
            "-o",
            str(out),
            "--save-kernel",
            str(npy),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["points"]) == {"init", "trained"}
    K0 = np.load(tmp_path / "K_init.npy")
    KT = np.load(tmp_path / "K_trained.npy")
    assert K0.shape == (120, 120)
    ev = np.linalg.eigvalsh(K0)
    assert data["points"]["init"]["lambda_min"] == pytest.approx(ev[0], rel=1e-8)
    change = np.linalg.norm(KT - K0) / np.linalg.norm(K0)
    assert data["relative_change"] == pytest.approx(change, rel=1e-10)
    assert data["pl_star_mu"]["init"] == pytest.approx(2 * ev[0], rel=1e-8)  # reduction "sum"
    assert data["plan"]["fallback"] == []


def test_cli_kernel_matrix_free_and_errors(tmp_path, tiny_config):
    out = tmp_path / "k.json"
    res = CliRunner().invoke(
        app, ["kernel", "-c", str(tiny_config), "--solver", "lanczos", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    spec = lg.KernelSpectrum.from_dict(json.loads(out.read_text())["points"]["init"])
    assert spec.method == "lanczos" and spec.residual_norms.size == 2
    res = CliRunner().invoke(app, ["kernel", "-c", str(tiny_config), "--at", "end"])
    assert res.exit_code == 2 and "--at must be" in res.output


def test_report_section(tmp_path, tiny_config):
    import matplotlib

    matplotlib.use("Agg")
    from lossgeometry.app.config import load_config, setup
    from lossgeometry.app.sections.base import Context
    from lossgeometry.app.sections.registry import available_sections

    spec = {s.name: s for s in available_sections()}["kernel"]
    cfg = load_config(tiny_config)
    s = setup(cfg, do_train=True, progress=False)
    ctx = Context(problem=s.problem, config=cfg, w0=s.w0, trajectory=s.trajectory, outdir=tmp_path)
    out = spec.fn(ctx)
    assert out.skipped is None
    r = out.results
    K0 = lg.tangent_kernel(s.problem, s.w0)
    assert r["init"]["lambda_min"] == pytest.approx(float(torch.linalg.eigvalsh(K0)[0]), rel=1e-8)
    assert r["relative_change"] > 0
    assert (tmp_path / "figures" / "kernel_spectrum.png").exists()
    assert "λ_min" in out.html
    json.dumps(r)  # JSON-able
    # too large for dense and matrix-free off: skipped with a reason
    ctx.options = {"max_size": 10, "matrix_free": False}
    assert "max_size" in spec.fn(ctx).skipped
    ctx.options = {"bogus": 1}
    with pytest.raises(ValueError, match="unknown"):
        spec.fn(ctx)
