"""The ``lossgeometry`` command line (typer).

``lossgeometry analyze`` runs the main job: build the problem of a config (the built-in
default when none is given), train it, run the enabled report sections, write a report
directory. Feature commands (``kernel``, ``hessian``, ...) live in :mod:`lossgeometry.app.commands`,
one module each, and are registered at the bottom of this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from lossgeometry._version import __version__
from lossgeometry.app.commands.alphabeta import alphabeta_command
from lossgeometry.app.commands.certify import certify_command
from lossgeometry.app.commands.hessian import hessian_command
from lossgeometry.app.commands.kernel import kernel_command
from lossgeometry.app.commands.manifold import manifold_command
from lossgeometry.app.commands.surface import surface_command
from lossgeometry.app.commands.sweep import sweep_command
from lossgeometry.app.options import (
    ConfigOpt,
    ModelOpt,
    ProgressOpt,
    TimeoutOpt,
    TrustOpt,
    cli_errors,
    fail,
    load_cli_config,
    say,
)


def _hide_flag_types(params: list[Any]) -> list[Any]:
    """On/off flags show no type in ``--help`` (typer prints ``<bool>`` beside each flag)."""
    for p in params:
        if getattr(p, "is_flag", False) and getattr(p, "metavar", None) is None:
            p.metavar = ""
    return params


class _Command(TyperCommand):
    """A command whose ``--help`` lists flags without a ``<bool>`` type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _hide_flag_types(super().get_params(ctx))


class _Group(TyperGroup):
    """The command group, whose ``--help`` lists flags without a ``<bool>`` type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _hide_flag_types(super().get_params(ctx))


app = typer.Typer(
    cls=_Group,
    name="lossgeometry",
    help=(
        "Measure and certify the loss-landscape geometry of over-parameterized PyTorch models: "
        "tangent kernels, PL* certificates, curvature, the manifold of minima, the "
        "alpha-beta-condition. Run `lossgeometry analyze` for a report on the built-in default."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lossgeometry {__version__}")
        raise typer.Exit()


_ONE_PROCESS = ("run", "sweep")
"""Commands that run grids of their own: under torchrun they are refused (one process)."""


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Loss-landscape geometry of over-parameterized models."""
    from lossgeometry.distributed import in_torchrun

    if ctx.invoked_subcommand in _ONE_PROCESS and in_torchrun():
        fail(
            f"`lossgeometry {ctx.invoked_subcommand}` runs on one process (its grid points "
            "are separate runs): start it without torchrun; `analyze` and the measuring "
            "commands (kernel, hessian, certify, alphabeta, manifold, surface) run under "
            "torchrun"
        )


@app.command()
@cli_errors
def analyze(
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path("report"),
    model: ModelOpt = None,
    sections: Annotated[
        str | None,
        typer.Option(help="Comma-separated sections to run (overrides the config)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--fresh",
            help="Reuse the training run and the finished sections whose inputs did not change "
            "(config, section options, model factory source, data files, versions), or "
            "recompute everything.",
        ),
    ] = True,
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
    tensorboard: Annotated[
        Path | None,
        typer.Option(
            help="Also write the training records and every section's summary numbers as "
            "TensorBoard scalars into this log directory (needs lossgeometry[tensorboard])."
        ),
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(help="Also write them as JSON lines into this file."),
    ] = None,
) -> None:
    """Train the configured problem and write a report (index.html, figures, results.json).

    The loss's reduction, unless the config sets loss.reduction, is that loss's
    own default, the same as lg.Problem's: "sum" for mse (L = ½ Σᵢ ‖fᵢ − yᵢ‖²,
    the PL* papers' loss; mse is the default loss), "mean" for cross_entropy
    (L = (1/n) Σᵢ −log softmax(fᵢ)_yᵢ), "mean" for bce (nn.BCEWithLogitsLoss(), one-hot
    targets) and "mean" for nll (nn.NLLLoss(): the model outputs log-probabilities). The
    report's Problem section shows it.

    While it runs, a partial page of this run is in OUT/.staging/index.html (updated after
    each section); the report in OUT is replaced whole when the run ends.

    Under torchrun (torchrun --nproc-per-node N -m lossgeometry analyze ...) every rank runs
    the sections, rank 0 alone writes OUT; results.json records world_size
    (docs/distributed.md).
    """
    from lossgeometry.app.launch import start
    from lossgeometry.app.outdir import OutputDirBusy
    from lossgeometry.app.report.build import build_report
    from lossgeometry.app.report.export import export_report
    from lossgeometry.distributed import DistributedError

    listed = [s.strip() for s in sections.split(",") if s.strip()] if sections else None
    cfg = load_cli_config(config, model, listed, trust=trust_config)
    ranks = start(cfg.device, timeout)
    try:
        index = build_report(cfg, out, resume=resume, progress=progress, log=say, ranks=ranks)
    except OutputDirBusy as e:  # another run writes into `out`: nothing was touched
        fail(str(e))
        raise  # unreachable
    except DistributedError:  # another rank stopped: cli_errors says so
        raise
    except RuntimeError as e:  # sections failed; the report exists and shows the errors
        fail(str(e), code=1)
    if not ranks.is_main:
        return
    say(index.resolve(), label="[bold green]report:[/]")
    if tensorboard is not None or jsonl is not None:
        for where in export_report(out, tensorboard=tensorboard, jsonl=jsonl):
            say(where, label="[bold green]records:[/]")


@app.command("sections")
def list_sections() -> None:
    """List the report sections and whether they run by default."""
    from lossgeometry.app.sections.registry import available_sections

    for s in available_sections():
        flag = "on " if s.default else "off"
        typer.echo(f"{s.name:<12} [{flag}] {s.title}: {s.description}")


def main() -> None:
    """Entry point of the ``lossgeometry`` console script (and of ``python -m lossgeometry``).

    A command that ends normally ends the process group it started under torchrun; after a
    failure the process leaves without waiting for the others (its error on standard error,
    which a rank other than 0 has muted while it ran).
    """
    from lossgeometry.app.launch import stop, unmute

    try:
        app(prog_name="lossgeometry")
    except SystemExit as e:
        if e.code in (None, 0):
            stop()
        raise
    finally:
        unmute()


@app.command("run")
@cli_errors
def run_command(
    config: Annotated[
        str | None, typer.Argument(help="Experiment TOML (a path or a bundled name).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Run the paper-size grid.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List bundled experiments.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--fresh",
            help="Reuse the grid points finished earlier with the same inputs (settings, "
            "data files, versions), or recompute every point.",
        ),
    ] = True,
    progress: ProgressOpt = None,
) -> None:
    """Run a reproduction experiment from its TOML config; writes figures and a JSON table."""
    import json

    from lossgeometry.app.experiments import bundled_configs, run_experiment
    from lossgeometry.app.outdir import OutputDirBusy

    if list_ or config is None:
        configs = bundled_configs()
        for name in configs:
            typer.echo(f"{name:<22} {_experiment_line(name)}")
        if configs:
            typer.echo(f"(configs: {next(iter(configs.values())).parent})")
        return
    try:
        summary = run_experiment(config, out, full=full, progress=progress, resume=resume)
    except OutputDirBusy as e:
        fail(str(e))
        raise  # unreachable
    typer.echo(json.dumps(summary, indent=2, default=str)[:4000])


def _experiment_line(name: str) -> str:
    """One line about a bundled experiment: the first line of its module's docstring."""
    import sys

    from lossgeometry.app.experiments import available_experiments

    fn = available_experiments().get(name)
    doc = (sys.modules[fn.__module__].__doc__ or fn.__doc__ or "") if fn else ""
    lines = doc.strip().splitlines()
    return lines[0].replace("``", "") if lines else ""


# --- feature commands: one module each under app/commands, registered here -----------------
app.command("manifold")(manifold_command)
app.command("kernel")(kernel_command)
app.command("hessian")(hessian_command)
app.command("certify")(certify_command)
app.command("alphabeta")(alphabeta_command)
app.command("sweep")(sweep_command)
app.command("surface")(surface_command)
for _info in app.registered_commands:  # every command's --help: flags without a type
    if _info.cls in (None, TyperCommand):
        _info.cls = _Command
