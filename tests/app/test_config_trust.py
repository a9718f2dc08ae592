"""A config is data, not code (issue #16): a TOML file names no code to run unless trusted.

The hostile case of the audit: ``[model] factory = "os:system"`` with ``[model.kwargs]
command = "touch MARKER"`` ran the command. Every test here checks that the marker file is
never created unless the user said ``--trust-config`` (or typed the factory themselves).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lossgeometry.app.cli import app
from lossgeometry.app.config import UntrustedConfigError, build_problem, load_config
from lossgeometry.app.config.trust import CODE_KEYS
from lossgeometry.options import OptionsError
from tests.conftest import tiny_toml

runner = CliRunner()


def _hostile(tmp_path, command: str | None = None) -> tuple:
    """A config whose model factory is ``os:system`` running ``touch MARKER``."""
    marker = tmp_path / "MARKER"
    cmd = command or f"touch {marker}"
    path = tmp_path / "hostile.toml"
    path.write_text(
        f'[model]\nfactory = "os:system"\n[model.kwargs]\ncommand = {json.dumps(cmd)}\n'
        "[train]\nsteps = 1\n"
    )
    return path, marker


def test_a_file_naming_a_factory_is_refused_and_runs_nothing(tmp_path):
    path, marker = _hostile(tmp_path)
    with pytest.raises(UntrustedConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: [model] factory = 'os:system' names code")
    assert "--trust-config" in msg and "--model FILE.py:FUNCTION" in msg
    assert "[model] name = 'mlp'" in msg
    assert isinstance(err.value, OptionsError) and isinstance(err.value, ValueError)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["kernel", "hessian", "certify", "manifold", "alphabeta"])
def test_every_command_refuses_the_hostile_config(tmp_path, command):
    path, marker = _hostile(tmp_path)
    res = runner.invoke(app, [command, "-c", str(path), "-o", str(tmp_path / "o"), "--no-progress"])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "names code to import and run" in text and "--trust-config" in text
    assert not marker.exists()
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert "--trust-config" in res.output  # every command that reads a config takes it


def test_analyze_and_sweep_refuse_the_hostile_config(tmp_path):
    path, marker = _hostile(tmp_path)
    res = runner.invoke(app, ["analyze", "-c", str(path), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--trust-config" in " ".join(res.output.split())
    res = runner.invoke(
        app, ["sweep", "-c", str(path), "--grid", "seed=0,1", "-o", str(tmp_path / "s")]
    )
    assert res.exit_code == 2 and "--trust-config" in " ".join(res.output.split())
    assert not marker.exists()
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_trust_config_lets_the_users_own_factory_through(tmp_path):
    """With --trust-config (or trust=True) the factory of the file is the model."""
    fm = tmp_path / "fm.py"
    fm.write_text(
        "from torch import nn\n\ndef make(d_in, d_out, hidden=4):\n"
        "    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out))\n"
    )
    path = tmp_path / "mine.toml"
    path.write_text(
        tiny_toml(["problem"])
        .replace('[model]\nname = "mlp"\nwidth = 12\ndepth = 1\n', "")
        .replace("[train]", f'[model]\nfactory = "{fm}:make"\n[model.kwargs]\nhidden = 5\n[train]')
    )
    with pytest.raises(UntrustedConfigError):
        load_config(path)
    cfg = load_config(path, trust=True)
    pb, _ = build_problem(cfg)
    assert pb.p == 64 * 5 + 5 + 5 * 10 + 10
    out = tmp_path / "r"
    res = runner.invoke(app, ["analyze", "-c", str(path), "-o", str(out), "--trust-config"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["config"]["model"]["kwargs"] == {
        "hidden": 5
    }
    # the sweep reads the trusted file the same way (checked up to the grid: no run needed)
    res = runner.invoke(
        app,
        [
            "sweep",
            "-c",
            str(path),
            "--trust-config",
            "--grid",
            "train.stpes=1",
            "-o",
            str(tmp_path / "s2"),
        ],
    )
    assert res.exit_code == 2 and "train.stpes" in res.output and "trust" not in res.output


def test_a_factory_from_the_command_line_or_python_is_the_users_own(tmp_path):
    """--model replaces the file's factory (which is never imported); Python overrides are
    code the user wrote, so they need no flag."""
    path, marker = _hostile(tmp_path)
    cfg = load_config(path, {"model": {"factory": "examples/my_model.py:make"}})
    assert cfg.model.factory == "examples/my_model.py:make"
    assert cfg.model.kwargs == {"command": f"touch {marker}"}  # data: passed to the user's own
    over = load_config(overrides={"model": {"factory": "examples/my_model.py:make"}})
    assert over.model.is_factory
    # another built-in model from the caller replaces the file's factory too
    assert load_config(path, {"model": {"name": "mlp"}}).model.name == "mlp"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"loss": {"name": "os:system"}}, r"\[loss\] name = 'os:system'"),
        ({"train": {"optimizer": "os:system"}}, r"\[train\] optimizer = 'os:system'.*unknown"),
        ({"data": {"name": "os:system"}}, r"\[data\] name = 'os:system'.*unknown data set"),
        ({"model": {"name": "os:system"}}, r"\[model\] name = 'os:system'.*unknown model"),
        ({"report": {"sections": ["os:system"]}}, r"\[report\] sections.*unknown"),
    ],
)
def test_every_other_name_is_looked_up_in_an_allow_list(tmp_path, table, match):
    """The other strings that select something to call are registry names, never imports."""
    path = tmp_path / "c.toml"
    ((tname, sub),) = table.items()
    lines = [f"[{tname}]"] + [f"{k} = {json.dumps(v)}" for k, v in sub.items()]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(OptionsError, match=match):
        load_config(path, trust=True)  # refused even when trusted: not a registered name


def test_code_keys_are_exactly_the_factory():
    """The one key that imports code; a new one must be added here (and to the docs)."""
    assert CODE_KEYS == (("model", "factory"),)
