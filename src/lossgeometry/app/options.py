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
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help=(
            "Progress bars (default: on a tty; elsewhere a line with done/total and ETA every "
            "20 s, and the estimated cost of a long measurement first). --no-progress: neither."
        ),
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Under torchrun: seconds each rank waits for the others (to join, and in every "
        "exchange) before it stops with an error (default: 300). Ignored on one process.",
    ),
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-config",
        help="Let the config file name code to run (a model factory, 'file.py:function'). "
        "Only for a config you wrote or whose author you trust: without it a config may name "
        "built-in models, data sets, losses and optimizers only (a config is data).",
    ),
]


def esc(value: object) -> str:
    """``str(value)`` escaped for rich: ``[report.kernl]`` prints as is, not as a markup tag.

    Every piece of user text (messages, paths, names, table cells) printed through a rich
    console goes through this; only the labels the program writes itself are markup.
    """
    from rich.markup import escape

    return escape(str(value))


def say(text: object, *, label: str = "", out: Console | None = None) -> None:
    """Print ``text`` (user text, escaped) after an optional markup ``label``.

    ``say(path, label="[bold green]report:[/]")`` prints ``report: PATH`` with ``PATH``
    exactly as it is. ``out`` defaults to the error console (stderr).
    """
    (out or console).print(f"{label} {esc(text)}" if label else esc(text))


def show(renderable: Any, *, err: bool = False) -> None:
    """Print a rich renderable (a table) with console markup off, on stdout (``err``: stderr).

    Its title and every cell print as they are: a cell ``[report.kernl]`` stays.
    """
    Console(stderr=err, markup=False).print(renderable)


def fail(msg: str, code: int = 2) -> None:
    """Print a clear error and exit with status ``code`` (no traceback).

    The message is printed as is: ``[train] stpes`` is text, not console markup. Under
    torchrun it starts with the rank (``rank 1 of 2: ...``), as every rank prints its own.
    """
    from lossgeometry.app.launch import rank_prefix, unmute

    unmute()  # a rank other than 0 prints its own error
    say(rank_prefix() + msg, label="[bold red]error:[/]")
    raise typer.Exit(code=code)


def load_cli_config(
    config: Path | None,
    model: str | None,
    sections: list[str] | None = None,
    *,
    trust: bool = False,
) -> AnalyzeConfig:
    """The config of ``--config`` with ``--model`` (and ``--sections``) applied, checked.

    ``--model`` replaces the config's model by the factory (keeping a factory's
    ``[model.kwargs]``); ``--sections`` replaces ``[report] sections``. A config file that
    names a model factory is refused unless ``trust`` (``--trust-config``). Errors become
    clean exits (status 2) that name the key.
    """
    from lossgeometry.app.config import load_config

    over: dict[str, Any] = {}
    if model:
        over["model"] = {"factory": model}
    if sections is not None:
        over["report"] = {"sections": sections}
    try:
        return load_config(config, over, trust=trust)
    except (ValueError, FileNotFoundError, TypeError) as e:
        fail(str(e))
        raise  # unreachable


def os_error_message(e: OSError) -> str:
    """One line for a file-system error: ``Permission denied: report/index.html``.

    A file where a directory is needed (``--out`` names a file) says so.
    """
    if e.filename is None:
        return str(e)
    where = str(e.filename) + (f" -> {e.filename2}" if e.filename2 is not None else "")
    msg = f"{e.strerror or type(e).__name__}: {where}"
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        msg += " (a file is where a directory is needed: choose another --out)"
    return msg


def cli_errors(fn: Any) -> Any:
    """Decorator: the library's ValueError/TypeError and file-system errors become clean exits.

    One line on stderr, status 2, no traceback; the message is printed as text (:func:`fail`).
    Under torchrun, a failure of the other ranks (:class:`~lossgeometry.distributed.
    DistributedError`: one raised, died or did not answer within ``--timeout``) is one line
    too, with status 1.
    """
    import functools

    from lossgeometry.distributed import DistributedError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DistributedError as e:
            fail(str(e), code=1)
        except (ValueError, TypeError) as e:
            fail(str(e))
        except OSError as e:  # a missing file, a read-only or full disk, a file as --out
            fail(os_error_message(e))

    return wrapper
