import json
import re

import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.app.config import (
    DEFAULT_CONFIG,
    AnalyzeConfig,
    as_config,
    build_problem,
    load_config,
    load_factory,
    merge,
    run_training,
)
from lossgeometry.app.report.build import config_hash
from lossgeometry.curvature.stepsize import auto_lr
from lossgeometry.options import OptionsError

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
    assert cfg.seed == 3 and cfg.train.steps == 5 and cfg.train.lr == 0.5  # typed fields
    pb, _ = build_problem(cfg)
    assert pb.n == 12 and pb.p > 0


def test_default_config_round_trips_and_keeps_its_hash():
    cfg = load_config()
    assert cfg == AnalyzeConfig() and cfg.to_dict() == DEFAULT_CONFIG
    # the exact dict the untyped config had, except that the loss's reduction is left to the
    # loss's own default (issue #17: one default per loss), so the config hash changed once
    assert DEFAULT_CONFIG == {
        "seed": 0,
        "dtype": "float32",
        "data": {"name": "digits", "n": 128, "standardize": True},
        "model": {
            "name": "mlp",
            "width": 256,
            "depth": 2,
            "activation": "tanh",
            "parameterization": "ntk",
        },
        "loss": {"name": "mse"},
        "train": {
            "optimizer": "gd",
            "lr": 1.0,
            "lr_scale": "auto",
            "steps": 400,
            "batch_size": 0,
            "record_every": 2,
        },
        "report": {},
    }
    assert config_hash(cfg) == "e1af665760f75b82"  # was "ec92197b3b90eb6f" with "sum" set
    assert cfg.loss.effective_reduction == "sum"  # the same loss as before: ½ Σ ‖f − y‖²
    assert config_hash(load_config("examples/default.toml")) == "5f90226754089207"
    assert config_hash(load_config("examples/sgd_cross_entropy.toml")) == "fb22c508425f71df"
    # to_dict -> JSON -> from_mapping gives the same config, for every bundled example
    for path in (None, "examples/default.toml", "examples/sgd_cross_entropy.toml"):
        c = load_config(path)
        back = AnalyzeConfig.from_mapping(json.loads(json.dumps(c.to_dict())))
        assert back == c and back.to_dict() == c.to_dict()
        assert as_config(c.to_dict()) == c


def test_mapping_view_reads_like_the_toml_and_is_read_only():
    cfg = load_config(overrides={"train": {"kwargs": {"momentum": 0.5}}})
    assert cfg.get("seed", 7) == 0 and cfg.get("name") is None and "name" not in cfg
    assert cfg["train"].get("kwargs") == {"momentum": 0.5} and cfg["train"]["steps"] == 400
    assert dict(cfg["model"]) == DEFAULT_CONFIG["model"] and list(cfg) == list(DEFAULT_CONFIG)
    assert load_config()["train"].get("kwargs") is None  # unset options are absent
    with pytest.raises(TypeError):
        cfg["train"]["steps"] = 3  # type: ignore[index]
    cfg["train"]["kwargs"]["momentum"] = 0.9  # a copy: the config does not change
    assert cfg.train.kwargs == {"momentum": 0.5}


def test_merge_rule_and_model_replacement():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    out = merge(base, {"a": {"b": 2}, "d": {"e": 1}})
    assert out == {"a": {"b": 2, "c": [1, 2]}, "d": {"e": 1}}
    out["a"]["c"].append(3)
    assert base["a"]["c"] == [1, 2]  # no shared containers
    # a table naming another model (or a factory) replaces the default model's table
    assert dict(load_config(overrides={"model": {"name": "cnn"}})["model"]) == {"name": "cnn"}
    f = {"factory": "examples/my_model.py:make", "kwargs": {"hidden": 8}}
    assert dict(load_config(overrides={"model": f})["model"]) == f
    # ... while the same model merges key by key
    assert load_config(overrides={"model": {"width": 8}})["model"]["depth"] == 2
    # a second factory keeps the first one's kwargs (as `--model` on a factory config)
    c = load_config(overrides={"model": f})
    c2 = as_config(merge(c.to_dict(), {"model": {"factory": "x.py:g"}}))
    assert c2.model.kwargs == {"hidden": 8} and c2.model.factory == "x.py:g"


# (config, the key it names, the closest valid name or the hint the message gives)
BAD = [
    ({"sed": 1}, "sed: unknown option", "'seed'"),
    ({"trian": {"steps": 3}}, "trian: unknown option", "'train'"),
    ({"train": {"stpes": 3}}, "[train] stpes: unknown option", "did you mean 'steps'"),
    ({"loss": {"nme": "mse"}}, "[loss] nme: unknown option", "did you mean 'name'"),
    ({"report": {"kernel": 5}}, "[report] kernel = 5: expected a table", "[report.kernel]"),
    ({"report": {"kernl": {"top": 1}}}, "[report] kernl: unknown report section", "'kernel'"),
    ({"report": {"sectons": ["problem"]}}, "[report] sectons: unknown", "'sections'"),
    ({"report": {"sections": ["problme"]}}, "[report] sections: unknown", "'problem'"),
    ({"report": {"sections": "problem"}}, "[report] sections = 'problem'", '["problem"]'),
    ({"report": {"kernel": {"enabled": 1}}}, "[report.kernel] enabled = 1", "true or false"),
    ({"seed": 1.7}, "seed = 1.7: expected an integer", ""),
    ({"train": {"steps": True}}, "[train] steps = True: expected an integer", ""),
    ({"train": {"steps": "four"}}, "[train] steps = 'four': expected an integer", ""),
    ({"train": {"lr": "big"}}, "[train] lr = 'big': expected a number", ""),
    ({"train": {"optimizer": "adamm"}}, "[train] optimizer = 'adamm'", "did you mean 'adam'"),
    ({"train": {"lr_scale": "aut"}}, "[train] lr_scale = 'aut'", "'auto'"),
    ({"data": "digits"}, "data = 'digits': expected a table", '[data] name = "digits"'),
    ({"model": "mlp"}, "model = 'mlp': expected a table", '[model] name = "mlp"'),
    ({"data": {"nn": 3}}, "[data] nn: unknown option of data set 'digits'", "'n'"),
    ({"data": {"n": "3"}}, "[data] n = '3'", "int"),
    ({"data": {"name": "digts"}}, "[data] name = 'digts': unknown data set", "'digits'"),
    ({"data": {"name": "mnist1d", "splt": "test"}}, "[data] splt", "did you mean 'split'"),
    ({"data": {"name": "digits", "dtype": "float64"}}, "[data] dtype: unknown", "Valid"),
    ({"model": {"widht": 3}}, "[model] widht: unknown option of model 'mlp'", "'width'"),
    ({"model": {"width": 2.5}}, "[model] width = 2.5: expected an integer", ""),
    ({"model": {"name": "mpl"}}, "[model] name = 'mpl': unknown model", "'mlp'"),
    ({"model": {"name": "cnn", "chanels": [2]}}, "[model] chanels", "'channels'"),
    ({"model": {"kwargs": {"a": 1}}}, "[model] kwargs: unknown option of model 'mlp'", ""),
    ({"model": {"factory": "m.py:f", "kwarg": {}}}, "[model] kwarg", "'kwargs'"),
    ({"model": {"factory": "m.py:f", "name": "mlp"}}, "[model] name: unknown option", "factory"),
    ({"loss": {"name": "mae"}}, "[loss] name = 'mae'", "'cross_entropy'"),
    ({"dtype": "float16"}, "dtype must be one of ['float32', 'float64']", "'float16'"),
]


@pytest.mark.parametrize(("user", "names_key", "names_fix"), BAD)
def test_bad_configs_name_the_key_and_the_fix(tmp_path, user, names_key, names_fix):
    with pytest.raises(OptionsError) as err:
        load_config(overrides=user)
    msg = str(err.value)
    assert msg.startswith(names_key), msg
    assert names_fix in msg, msg
    # the same from a TOML file: the message starts with the file
    text = "\n".join(_toml_lines(user))
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{p}: {names_key}")):
        load_config(p)


def _toml_lines(d, prefix=""):
    """A minimal TOML writer for the table above (values first, then tables)."""
    for k, v in d.items():
        if not isinstance(v, dict):
            yield f"{k} = {json.dumps(v)}"
    for k, v in d.items():
        if isinstance(v, dict):
            yield f"[{prefix}{k}]"
            yield from _toml_lines(v, f"{prefix}{k}.")


def test_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(TypeError, match="mapping"):
        as_config(["seed", 1])


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
    assert dict(cfg["model"]) == {"factory": "examples/my_model.py:make_with_data"}
    pb, name = build_problem(cfg)
    assert pb.n == 40 and pb.k == 1 and "own data" in name
    cfg = load_config(
        overrides={
            "model": {"factory": "examples/my_model.py:make", "kwargs": {"hidden": 8}},
            "data": {"name": "digits", "n": 20, "one_hot": True},
        }
    )
    pb, _ = build_problem(cfg)
    assert pb.p == 64 * 8 + 8 + 8 * 10 + 10


def test_dict_and_typed_configs_build_the_same_problem_and_run():
    """build_problem/run_training take an AnalyzeConfig or a dict (defaults filled in)."""
    over = {"data": {"n": 10}, "model": {"width": 6, "depth": 1}, "train": {"steps": 3}}
    typed = load_config(overrides=over)
    a, _ = build_problem(typed)
    b, _ = build_problem(merge(DEFAULT_CONFIG, over))
    c, _ = build_problem(over)  # a partial dict: the defaults fill the rest
    assert torch.equal(a.params(), b.params()) and torch.equal(a.params(), c.params())
    ta = run_training(a, typed, progress=False)
    tb = run_training(b, merge(DEFAULT_CONFIG, over), progress=False)
    assert np.array_equal(ta.loss, tb.loss) and ta.lr == tb.lr and ta.num_steps == 3
    # lr_scale = "auto": the step is lr / λ_max(H(w0)); "none": lr itself
    assert ta.lr == pytest.approx(auto_lr(a, a.params(), seed=0))
    none = run_training(a, merge(typed.to_dict(), {"train": {"lr_scale": "none"}}), progress=False)
    assert none.lr == 1.0


def test_optimizers_of_the_registry_are_valid_names():
    from lossgeometry.optim.registry import optimizer_names

    for name in optimizer_names():
        assert load_config(overrides={"train": {"optimizer": name}}).train.optimizer == name
    assert load_config(overrides={"train": {"optimizer": "Adam"}}).train.optimizer == "Adam"


def test_auto_lr_is_inverse_top_hessian_eigenvalue():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 4, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(4, 1, bias=False).double()
    pb = lg.Problem(model, X, torch.randn(5, 1, generator=g, dtype=torch.float64))
    lam = torch.linalg.eigvalsh(X.T @ X)[-1].item()  # H = XᵀX for ½‖Xw − y‖²
    assert auto_lr(pb, pb.params(), iters=200) == pytest.approx(1 / lam, rel=1e-6)


def test_certified_gd_from_a_config_takes_the_certificate_step():
    """An optimizer that sets its own step gets no lr from the config (lr would be refused)."""
    over = {
        "dtype": "float64",
        "data": {"n": 8},
        "model": {"width": 64, "depth": 1},
        "train": {
            "optimizer": "certified_gd",
            "steps": 3,
            "record_every": 1,
            "kwargs": {"allow_uncertified": True},
        },
    }
    cfg = load_config(overrides=over)
    pb, _ = build_problem(cfg)
    w0 = pb.params()
    run = run_training(pb, cfg, progress=False)
    cert = lg.certify_plstar(pb, w0)
    assert run.num_steps == 3 and run.lr is None
    # one GD step with the certificate's step size, checked against the recorded loss
    w1 = w0 - cert.step_size * pb.grad(w0)
    assert run.loss[1] == pytest.approx(float(pb.loss(w1)), rel=1e-9)
