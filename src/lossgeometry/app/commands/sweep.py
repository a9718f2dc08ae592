"""``lossgeometry sweep``: run a grid of configurations and print a table of the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lossgeometry.app.options import (
    ConfigOpt,
    ProgressOpt,
    TrustOpt,
    cli_errors,
    fail,
    say,
    show,
)


def parse_value(text: str) -> Any:
    """A command-line grid value: ``true``/``false`` → bool, then int, float, else string."""
    s = text.strip()
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """``["model.width=64,128", "seed=0,1"]`` → ``{"model.width": [64, 128], "seed": [0, 1]}``.

    Raises:
        ValueError: a spec without ``=``, without values, or a key given twice.
    """
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, eq, values = spec.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--grid {spec!r}: expected KEY=V1,V2,... (e.g. model.width=64,128)")
        if key in grid:
            raise ValueError(f"--grid {key!r} is given twice; list all its values in one --grid")
        vals = [parse_value(v) for v in values.split(",") if v.strip()]
        if not vals:
            raise ValueError(f"--grid {spec!r}: no values after '='")
        grid[key] = vals
    return grid


@cli_errors
def sweep_command(
    experiment: Annotated[
        str | None,
        typer.Argument(
            help="Experiment (a bundled name or TOML path) for --job run; or use -c.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            help="KEY=V1,V2,... with a dotted config key, e.g. model.width=64,128 or seed=0,1; "
            "repeat for more keys (the runs are the cartesian product). Values parse as int, "
            "float, true/false, else string.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep directory.")] = Path("sweep"),
    job: Annotated[
        str,
        typer.Option(help="analyze (a report per run) or run (an experiment per run)."),
    ] = "analyze",
    workers: Annotated[
        int, typer.Option(min=1, help="Runs at the same time (a process pool when > 1).")
    ] = 1,
    backend: Annotated[
        str | None,
        typer.Option(
            help="local, or ray (Ray tasks; needs the ray extra of lossgeometry). "
            "Default: ray with --ray-address or --ranks-per-point > 1, else local.",
            show_default=False,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Join this Ray cluster: auto (the one `ray start --head` started on this "
            "machine) or HOST:PORT of its head. Default: start a local Ray instance.",
            show_default=False,
        ),
    ] = None,
    ranks_per_point: Annotated[
        int,
        typer.Option(
            "--ranks-per-point",
            min=1,
            help="Run each point as N torch.distributed ranks (Ray Train's TorchTrainer, "
            "gloo); rank 0 writes the run's files.",
        ),
    ] = 1,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--fresh",
            help="Skip runs that finished with the same config (default) or rerun all.",
        ),
    ] = True,
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
) -> None:
    """Run a grid of configurations: one report (or experiment) per point, then a table.

    Each run writes OUT/NAME/ (NAME from its values, e.g. width=64,seed=0) with its
    config.json and outputs; OUT/sweep.json holds the table. Rerunning skips finished runs
    and retries failed ones. Exits with status 1 if any run failed. On a Ray cluster
    (`ray start --head` on the head node, then --ray-address auto) OUT must be a directory
    every node can write.
    """
    from lossgeometry.app.outdir import OutputDirBusy
    from lossgeometry.app.sweep.core import sweep

    if experiment is not None and config is not None:
        fail("give either a config (-c) or an experiment argument, not both")
    if not grid:
        fail("give at least one --grid KEY=V1,V2,... (e.g. --grid model.width=64,128)")
    source: Any = config if config is not None else experiment
    if trust_config and config is not None and job == "analyze":
        from lossgeometry.app.config import load_config

        # the file read here, trusted; the sweep gets its tables (as from Python)
        source = load_config(config, trust=True).to_dict()
    try:
        result = sweep(
            source,
            parse_grid(grid or []),
            out,
            job=job,  # type: ignore[arg-type]
            workers=workers,
            backend=backend,  # type: ignore[arg-type]
            resume=resume,
            progress=progress,
            ray_address=ray_address,
            ranks_per_point=ranks_per_point,
        )
    except (ImportError, OutputDirBusy, ConnectionError) as e:  # no ray; `out` taken; no cluster
        fail(str(e))
        raise  # unreachable
    show(result.rich_table())
    for r in result.failed:
        say(f"{r.name}: {r.error} (see {r.directory}/error.json)", label="[bold red]failed:[/]")
    say(Path(result.out).resolve() / "sweep.json", label="[bold green]sweep:[/]")
    if result.failed:
        raise typer.Exit(code=1)
