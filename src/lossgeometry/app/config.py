"""TOML configurations: model, data, loss, optimizer, steps, seed, report sections.

A config is a TOML file; missing keys take the built-in defaults of :data:`DEFAULT_CONFIG`
(an over-parameterized MLP on a subset of scikit-learn's digits, trained by full-batch GD).
See ``examples/*.toml`` for commented examples.

The model may come from a user's own factory: ``[model] factory = "package.module:function"``
or ``"path/to/file.py:function"`` (``--model`` on the command line). The factory is called
with the keyword arguments in ``[model.kwargs]`` plus, if it accepts them, ``d_in`` and
``d_out``, and returns either an ``nn.Module`` (data then come from ``[data]``) or a tuple
``(model, X, Y)`` (its own data).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from lossgeometry.curvature.stepsize import auto_lr
from lossgeometry.problem import Problem
from lossgeometry.train import Trajectory, train

DEFAULT_CONFIG: dict[str, Any] = {
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
    "loss": {"name": "mse", "reduction": "sum"},
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
"""The built-in default: ``lossgeometry analyze`` with no arguments runs this."""

_TOP_KEYS = {"seed", "dtype", "data", "model", "loss", "train", "report", "name", "description"}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The one merge rule of configs: tables merge key by key, any other value replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Read a TOML config (or none) and fill in the defaults.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the TOML does not parse, or has unknown top-level tables.
    """
    user: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} not found (see examples/*.toml)")
        try:
            user = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{p} is not valid TOML: {e}") from None
    unknown = set(user) - _TOP_KEYS
    if unknown:
        raise ValueError(
            f"unknown config keys {sorted(unknown)}; top-level keys are {sorted(_TOP_KEYS)}"
        )
    if "factory" in user.get("model", {}):
        # a user model replaces the built-in model table entirely
        cfg = merge({k: v for k, v in DEFAULT_CONFIG.items() if k != "model"}, user)
    else:
        cfg = merge(DEFAULT_CONFIG, user)
    if overrides:
        cfg = merge(cfg, overrides)
    return cfg


def load_factory(spec: str) -> Any:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"``.

    Raises:
        ValueError: the spec has no ``:``, the module does not import or lacks the function.
    """
    if ":" not in spec:
        raise ValueError(f"--model {spec!r}: expected 'module:function' or 'file.py:function'")
    mod_name, _, fn_name = spec.rpartition(":")
    try:
        if mod_name.endswith(".py") or "/" in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            modspec = importlib.util.spec_from_file_location(path.stem, path)
            assert modspec is not None and modspec.loader is not None
            module = importlib.util.module_from_spec(modspec)
            modspec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(mod_name)
    except Exception as e:  # any import-time failure of user code
        raise ValueError(
            f"--model {spec!r}: could not import {mod_name!r} ({type(e).__name__}: {e}). "
            "Check the module path (run from the folder that contains it) or give a .py file"
        ) from e
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"--model {spec!r}: {mod_name!r} has no callable {fn_name!r}")
    return fn


DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
"""The dtype names a config may use (the one table: analyze, experiments and sweeps)."""


def resolve_dtype(name: Any, key: str = "dtype") -> torch.dtype:
    """The torch dtype a config names; a clear error names ``key`` and the choices."""
    if isinstance(name, str) and name in DTYPES:
        return DTYPES[name]
    raise ValueError(f"{key} must be one of {sorted(DTYPES)}, got {name!r}")


@dataclass
class Setup:
    """A config turned into objects: the problem, the start point, and (optionally) the run."""

    config: dict[str, Any]
    problem: Problem
    w0: torch.Tensor
    trajectory: Trajectory | None
    dataset_name: str


def _build_data(dcfg: dict[str, Any], loss_name: str, seed: int) -> tuple[Any, Any, Any]:
    from lossgeometry import data

    kwargs = {k: v for k, v in dcfg.items() if k != "name"}
    if loss_name == "cross_entropy":
        kwargs["one_hot"] = False
    elif "one_hot" not in kwargs:  # MSE on class labels: one-hot targets by default
        kwargs["one_hot"] = not str(dcfg["name"]).startswith("synthetic-regression")
    kwargs.setdefault("seed", seed)
    ds = data.load(dcfg["name"], **kwargs)
    return ds, ds.X, ds.Y


def build_problem(cfg: dict[str, Any]) -> tuple[Problem, str]:
    """Build the :class:`Problem` a config describes (model initialized with ``seed``)."""
    from lossgeometry import models

    seed = int(cfg.get("seed", 0))
    loss_cfg = cfg.get("loss", {})
    loss_name = loss_cfg.get("name", "mse")
    mcfg = dict(cfg["model"])
    dtype = resolve_dtype(cfg.get("dtype", "float32"))
    # data first: a factory that returns its own data simply ignores it
    ds, X, Y = _build_data(cfg["data"], loss_name, seed)
    d_in, d_out = ds.d_in, ds.d_out
    if "factory" in mcfg:
        fn = load_factory(mcfg["factory"])
        kwargs = dict(mcfg.get("kwargs", {}))
        params = inspect.signature(fn).parameters
        for name, val in (("d_in", d_in), ("d_out", d_out), ("seed", seed)):
            if name in params and name not in kwargs and val is not None:
                kwargs[name] = val
        torch.manual_seed(seed)
        made = fn(**kwargs)
        if isinstance(made, tuple) and len(made) == 3:
            model, X, Y = made
            name = f"{mcfg['factory']} (own data)"
        elif isinstance(made, nn.Module):
            model = made
            name = cfg["data"]["name"]
        else:
            raise TypeError(
                f"model factory {mcfg['factory']!r} returned {type(made).__name__}; it must "
                "return an nn.Module or a tuple (model, X, Y)"
            )
    else:
        mname = mcfg.pop("name", "mlp")
        if mname == "mlp":
            if ds is not None and len(ds.input_shape) > 1:
                X = X.reshape(X.shape[0], -1)
            mcfg.setdefault("d_in", ds.d_in)
            mcfg.setdefault("d_out", ds.d_out)
        elif mname in ("cnn", "resnet"):
            shape = ds.input_shape
            if len(shape) == 1:
                X = X.reshape(X.shape[0], 1, shape[0])
                shape = (1, shape[0])
                mcfg.setdefault("dim", 1)
            mcfg.setdefault("in_channels", shape[0])
            mcfg.setdefault("num_classes", ds.d_out)
            mcfg.setdefault("input_size", shape[1] if len(shape) == 2 else tuple(shape[1:]))
        mcfg.setdefault("seed", seed)
        model = models.build(mname, **mcfg)
        name = cfg["data"]["name"]
    model = model.to(dtype=dtype)
    problem = Problem(
        model,
        X,
        Y,
        loss=loss_name,
        reduction=loss_cfg.get("reduction"),
        chunk_size=loss_cfg.get("chunk_size"),
    )
    return problem, name


def setup(cfg: dict[str, Any], *, do_train: bool = True, progress: bool | None = None) -> Setup:
    """Build the problem of ``cfg`` and, if ``do_train``, run its training."""
    problem, name = build_problem(cfg)
    w0 = problem.params()
    traj = None
    if do_train:
        traj = run_training(problem, cfg, progress=progress)
    return Setup(cfg, problem, w0, traj, name)


def run_training(problem: Problem, cfg: dict[str, Any], progress: bool | None = None) -> Trajectory:
    """Run the ``[train]`` table of ``cfg`` on ``problem`` from its current parameters."""
    tcfg = dict(cfg["train"])
    w0 = problem.params()
    lr = float(tcfg.get("lr", 0.1))
    if tcfg.get("lr_scale", None) == "auto":
        lr = lr * auto_lr(problem, w0, seed=int(cfg.get("seed", 0)))
    elif tcfg.get("lr_scale") not in (None, "none", 1, 1.0):
        raise ValueError("train.lr_scale must be 'auto' (lr in units of 1/λ_max(H)) or 'none'")
    bs = tcfg.get("batch_size") or None
    return train(
        problem,
        tcfg.get("optimizer", "gd"),
        steps=int(tcfg.get("steps", 100)),
        lr=lr,
        batch_size=bs,
        seed=int(cfg.get("seed", 0)),
        record_every=int(tcfg.get("record_every", 1)),
        optimizer_kwargs=tcfg.get("kwargs"),
        progress=progress,
    )
