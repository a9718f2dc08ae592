"""Errors that name the culprit, printed as they are (issue #16).

Rich reads ``[report.kernl]`` as a markup tag and drops it; every piece of user text the
commands print (messages, paths, table cells) must come out unchanged. A model factory that
raises is named with its error; a file-system error is one line, not a traceback.
"""

from __future__ import annotations

import pytest
from rich.table import Table
from typer.testing import CliRunner

from lossgeometry.app import options
from lossgeometry.app.cli import app
from lossgeometry.app.config import ModelFactoryError, build_problem, load_config
from lossgeometry.app.sweep.result import SweepResult, SweepRun
from tests.conftest import tiny_toml

runner = CliRunner()
BRACKETS = "[report.kernl] [bold]x[/bold]"


def _flat(text: str) -> str:
    """The output without whitespace (rich folds long lines at the terminal width)."""
    return "".join(text.split())


def test_say_fail_and_show_print_user_text_as_is(capsys):
    options.say(BRACKETS, label="[bold green]note:[/]")
    err = capsys.readouterr().err
    assert f"note: {BRACKETS}" in err
    table = Table(title=f"t {BRACKETS}")
    table.add_column(BRACKETS)
    table.add_row(BRACKETS)
    options.show(table)
    out = capsys.readouterr().out
    assert out.count("[report.kernl]") == 3 and out.count("[bold]x[/bold]") == 3
    with pytest.raises(options.typer.Exit) as ex:
        options.fail(f"unknown report section {BRACKETS}")
    assert ex.value.exit_code == 2
    assert f"error: unknown report section {BRACKETS}" in capsys.readouterr().err


def test_unknown_report_section_is_printed_with_its_brackets(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[report.kernl]\ntop = 1\n")
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "[report]kernl:unknownreportsection;didyoumean'kernel'?" in _flat(res.output)


def test_paths_with_brackets_survive_every_message(tmp_path):
    """The report line and the log lines of analyze, the results line of a command."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_toml(["problem"]))
    out = tmp_path / "r[x]"
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert _flat(f"report: {out.resolve()}/index.html") in _flat(res.output)
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(out), "--no-progress"])
    assert _flat(f"report: {out.resolve()}/index.html") in _flat(res.output)  # reused run
    k = tmp_path / "k[x].json"
    res = runner.invoke(app, ["kernel", "-c", str(cfg), "-o", str(k), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert _flat(f"results: {k}") in _flat(res.output)


def test_sweep_table_cells_are_text():
    run = SweepRun(
        name="n",
        params={"model.name": "[report.kernl]"},
        status="failed",
        seconds=1.0,
        directory="d",
        metrics={"training.loss_final": 0.5},
        error="ValueError: [report.kernl] is bad",
    )
    res = SweepResult(out="o", job="analyze", grid={"model.name": ["[report.kernl]"]}, runs=[run])
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(res.rich_table())  # cells are text even on a console with markup on
    text = console.export_text()
    assert "[report.kernl]" in text and "failed" in text and "[bold red]" not in text


def _factory_file(tmp_path, body: str) -> str:
    f = tmp_path / "fm.py"
    f.write_text("from torch import nn\n\n\ndef make(d_in, d_out, width=4):\n" + body)
    return f"{f}:make"


def test_a_factory_that_raises_is_named_with_its_error(tmp_path):
    spec = _factory_file(tmp_path, "    raise RuntimeError('no GPU [cuda:0] here')\n")
    cfg = load_config(overrides={"model": {"factory": spec}, "data": {"n": 8}})
    with pytest.raises(ModelFactoryError) as err:
        build_problem(cfg)
    msg = str(err.value)
    assert msg.startswith(f"model factory {spec!r} raised RuntimeError: no GPU [cuda:0] here")
    assert "(at fm.py, line 5)" in msg and "'d_in': 64" in msg
    assert isinstance(err.value.__cause__, RuntimeError)  # the traceback stays for Python
    # on the command line: the same line, exit status 2, not "section failed", no traceback
    res = runner.invoke(
        app, ["analyze", "--model", spec, "-o", str(tmp_path / "r"), "--sections", "problem"]
    )
    assert res.exit_code == 2, res.output
    flat = _flat(res.output)
    assert _flat(f"error: model factory {spec!r} raised RuntimeError: no GPU [cuda:0]") in flat
    assert "sections" not in res.output and "Traceback" not in res.output


def test_a_factory_called_with_a_wrong_keyword_says_which(tmp_path):
    spec = _factory_file(tmp_path, "    return nn.Linear(d_in, d_out)\n")
    cfg = load_config(overrides={"model": {"factory": spec, "kwargs": {"widht": 3}}})
    with pytest.raises(ModelFactoryError, match=r"raised TypeError: .*'widht'.*\[model.kwargs\]"):
        build_problem(cfg)


def test_output_path_that_is_a_file_is_one_clear_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_toml(["problem"]))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(blocker)])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    flat = _flat(res.output)
    assert _flat(f"error: output path {blocker} is a file, not a directory") in flat
    assert "another --out" in res.output


def test_os_error_message():
    e = PermissionError(13, "Permission denied", "/ro/report/index.html")
    assert options.os_error_message(e) == "Permission denied: /ro/report/index.html"
    assert options.os_error_message(OSError("disk full")) == "disk full"
