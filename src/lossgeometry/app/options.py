"""What every ``lossgeometry`` command shares: options, the error console, config loading.

Commands live in :mod:`lossgeometry.app.commands` (one module each) and in
:mod:`lossgeometry.app.cli`; they import their shared options and error handling from here,
never from the CLI module that registers them, so no command imports its registrar.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from lossgeometry.app.config import AnalyzeConfig

console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config (see examples/); default: the built-in one."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Your model factory, 'package.module:function' or 'file.py:function'; it returns "
        "an nn.Module (data from the config) or (model, X, Y).",
    ),
]
ProgressOpt = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: on a tty).")
]


def fail(msg: str) -> None:
    """Print a clear error and exit with status 2 (no traceback).

    The message is printed as is: ``[train] stpes`` is text, not console markup.
    """
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(msg)}")
    raise typer.Exit(code=2)


def load_cli_config(
    config: Path | None, model: str | None, sections: list[str] | None = None
) -> AnalyzeConfig:
    """The config of ``--config`` with ``--model`` (and ``--sections``) applied, checked.

    ``--model`` replaces the config's model by the factory (keeping a factory's
    ``[model.kwargs]``); ``--sections`` replaces ``[report] sections``. Errors become clean
    exits (status 2) that name the key.
    """
    from lossgeometry.app.config import load_config

    over: dict[str, Any] = {}
    if model:
        over["model"] = {"factory": model}
    if sections is not None:
        over["report"] = {"sections": sections}
    try:
        return load_config(config, over)
    except (ValueError, FileNotFoundError, TypeError) as e:
        fail(str(e))
        raise  # unreachable


def cli_errors(fn: Any) -> Any:
    """Decorator: turn the library's ValueError/TypeError/FileNotFoundError into clean exits."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError) as e:
            fail(str(e))

    return wrapper
