import pytest
import torch

import lossgeometry as lg
from lossgeometry.app.config import build_problem, load_config, load_factory
from lossgeometry.curvature.stepsize import auto_lr

TINY = """
seed = 3
[data]
name = "synthetic-regression"
n = 12
[model]
name = "mlp"
width = 16
depth = 1
[train]
steps = 5
lr = 0.5
"""


def test_defaults_and_merge(tmp_path):
    cfg = load_config()
    assert cfg["model"]["name"] == "mlp" and cfg["data"]["name"] == "digits"
    p = tmp_path / "c.toml"
    p.write_text(TINY)
    cfg = load_config(p)
    assert cfg["seed"] == 3 and cfg["data"]["n"] == 12
    assert cfg["model"]["activation"] == "tanh"  # filled from defaults
    pb, _ = build_problem(cfg)
    assert pb.n == 12 and pb.p > 0


def test_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    odd = tmp_path / "odd.toml"
    odd.write_text("[trian]\nsteps = 3\n")
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config(odd)


def test_model_factory_import_errors(tmp_path):
    with pytest.raises(ValueError, match="could not import"):
        load_factory("no_such_module_xyz:make")
    with pytest.raises(ValueError, match="module:function"):
        load_factory("just_a_name")
    f = tmp_path / "m.py"
    f.write_text("def make():\n    return 1\n")
    with pytest.raises(ValueError, match="no callable"):
        load_factory(f"{f}:other")
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('missing dependency foo')\n")
    with pytest.raises(ValueError, match="missing dependency foo"):
        load_factory(f"{broken}:make")


def test_factory_with_own_data_and_with_config_data():
    cfg = load_config(overrides={"model": {"factory": "examples/my_model.py:make_with_data"}})
    cfg["model"] = {"factory": "examples/my_model.py:make_with_data"}
    pb, name = build_problem(cfg)
    assert pb.n == 40 and pb.k == 1 and "own data" in name
    cfg["model"] = {"factory": "examples/my_model.py:make", "kwargs": {"hidden": 8}}
    cfg["data"] = {"name": "digits", "n": 20, "one_hot": True}
    pb, _ = build_problem(cfg)
    assert pb.p == 64 * 8 + 8 + 8 * 10 + 10


def test_auto_lr_is_inverse_top_hessian_eigenvalue():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 4, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(4, 1, bias=False).double()
    pb = lg.Problem(model, X, torch.randn(5, 1, generator=g, dtype=torch.float64))
    lam = torch.linalg.eigvalsh(X.T @ X)[-1].item()  # H = XᵀX for ½‖Xw − y‖²
    assert auto_lr(pb, pb.params(), iters=200) == pytest.approx(1 / lam, rel=1e-6)
