"""``lossgeometry alphabeta``: the α-β-condition along a configured training run.

Records the run of the config (or the optimizer, step, batch size and seeds given on the
command line) with :func:`~lossgeometry.record_conditions`, prints the smallest feasible pair,
the Aiming and PL summaries, and writes the trace (JSON) and a figure. ``--example NAME``
checks one of the analytic examples instead (:func:`check_alpha_beta`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from lossgeometry.app.commands._defaults import study_options, with_default
from lossgeometry.app.options import (
    ConfigOpt,
    ModelOpt,
    ProgressOpt,
    TimeoutOpt,
    TrustOpt,
    cli_errors,
    load_cli_config,
    show,
)
from lossgeometry.conditions.alphabeta_study import AlphaBetaOptions as AO

DATA_PARALLEL = True
"""Whether the α-β study (its training runs and records) runs on this rank's shard under
torchrun (mini-batches drawn by global index, every step all-reduced)."""

EXAMPLE_ALPHA_MAX = 5.0
"""Heatmap range of ``--example`` without ``--alpha-max``: the analytic examples' pairs."""


def _seeds(text: str | None, default: int) -> list[int]:
    if text is None:
        return [default]
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ValueError("--seeds is empty")
    return seeds


@cli_errors
def alphabeta_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    optimizer: Annotated[
        str | None, typer.Option(help="Optimizer name (default: the config's [train]).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (default: the config's, auto-scaled).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Mini-batch size; 0 for full batch (default: config).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: config).")] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds, one run each (batch order).")
    ] = None,
    f_star: Annotated[
        float | None, typer.Option(help=with_default("f_i* for every sample.", AO, "f_star"))
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(help=with_default("Feasible pairs need α ≥ β + margin.", AO, "margin")),
    ] = None,
    exclude_last: Annotated[
        int | None,
        typer.Option(
            help=with_default("Steps at the end of each run left out of min T.", AO, "exclude_last")
        ),
    ] = None,
    full_loss_every: Annotated[
        int | None, typer.Option(help="Stride of full-data records (default: automatic).")
    ] = None,
    alpha_max: Annotated[
        float | None, typer.Option(help="Heatmap range [0, alpha_max] (default: automatic).")
    ] = None,
    grid: Annotated[
        int | None, typer.Option(help=with_default("Heatmap points per axis.", AO, "grid"))
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(help="Check an analytic example instead (example_1, example_2, ...)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (alphabeta.json, PNG).")
    ] = Path("alphabeta"),
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """The α-β-condition, Aiming and PL along a training run (or on an analytic example)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rich.console import Console
    from rich.table import Table

    from lossgeometry.app.launch import start
    from lossgeometry.results import atomic_write_json

    console = Console(markup=False)  # every line below is text (paths, names)
    opts = study_options(
        AO,
        f_star=f_star,
        margin=margin,
        exclude_last=exclude_last,
        full_loss_every=full_loss_every,
        alpha_max=alpha_max,
        grid=grid,
    )
    if example is not None:  # analytic: rank 0 alone under torchrun
        if start(None, timeout).is_main:
            out.mkdir(parents=True, exist_ok=True)
            _example(example, opts, out, console)
        return

    from lossgeometry.conditions.alphabeta_study import alphabeta_study
    from lossgeometry.curvature.stepsize import auto_lr

    cfg = load_cli_config(config, model, trust=trust_config)
    ranks = start(cfg.device, timeout)
    ranks.on_main(lambda: out.mkdir(parents=True, exist_ok=True))
    s = ranks.setup(cfg, do_train=False, progress=progress)
    problem = ranks.problem_for(s.problem, DATA_PARALLEL)
    tcfg = cfg["train"]
    if lr is None:
        lr = float(tcfg.get("lr", 0.1))
        if optimizer is None and tcfg.get("lr_scale") == "auto":
            lr *= auto_lr(problem, s.w0, seed=int(cfg.get("seed", 0)))
    bs = tcfg.get("batch_size") if batch_size is None else batch_size
    study = alphabeta_study(
        problem,
        optimizer or tcfg.get("optimizer", "gd"),
        int(steps if steps is not None else tcfg.get("steps", 100)),
        int(bs) if bs else None,
        seeds=_seeds(seeds, int(cfg.get("seed", 0))),
        lr=lr,
        optimizer_kwargs=tcfg.get("kwargs") if optimizer is None else None,
        options=opts,
        progress=progress,
    )
    if not ranks.is_main:  # rank 0 writes and prints
        return
    trace, pair, margin_ = study.trace, study.smallest_pair, opts.margin
    trace.save(out / "trace.json")
    summary: dict[str, Any] = {
        "problem": s.problem.summary(),
        "world_size": ranks.world_size,
        **trace.summary(margin_),
    }
    summary["smallest_pair"] = None if pair is None else {"alpha": pair[0], "beta": pair[1]}
    summary["study"] = study.summary()
    fig, axes = plt.subplots(
        1,
        2 if study.aiming is not None else 1,
        figsize=(10 if study.aiming is not None else 5, 3.8),
    )
    axes = np.atleast_1d(axes)
    study.plot(ax=axes[0])
    if study.aiming is not None:
        study.aiming.plot(ax=axes[1])
    fig.tight_layout()
    fig.savefig(out / "alphabeta.png", dpi=130)
    plt.close(fig)
    atomic_write_json(out / "alphabeta.json", summary)

    table = Table(title=f"α-β-condition along {len(trace.seeds)} run(s) of {trace.optimizer}")
    table.add_column("quantity")
    table.add_column("value")
    table.add_row("steps per run", str(int(trace.steps_per_run[0])))
    table.add_row("batch size", str(trace.batch_size or "full"))
    table.add_row(
        f"smallest pair (α ≥ β + {margin_:g})",
        "none holds" if pair is None else f"α = {pair[0]:.4g}, β = {pair[1]:.4g}",
    )
    if "aiming" in summary:
        am = summary["aiming"]
        table.add_row("Aiming fails at", f"{100 * am['negative_fraction']:.1f}% of full records")
        table.add_row("min aiming coefficient", f"{am['min_coefficient']:.4g}")
        table.add_row("PL µ (δ = 2)", f"{summary['pl']['delta=2']:.4g}")
    table.add_row("final loss (mean)", f"{float(np.mean(trace.final_loss)):.4g}")
    table.add_row("replay error", f"{float(trace.replay_error.max()):.2g}")
    show(table)
    console.print(f"wrote {out / 'alphabeta.json'}, {out / 'trace.json'}, {out / 'alphabeta.png'}")


def _example(name: str, opts: Any, out: Path, console: Any) -> None:
    import matplotlib.pyplot as plt

    from lossgeometry.examples.alpha_beta import check_alpha_beta, examples

    table_of = examples()
    if name not in table_of:
        raise ValueError(f"unknown example {name!r}; choose from {sorted(table_of)}")
    ex = table_of[name]()
    margin = opts.margin
    g = np.linspace(0.0, opts.alpha_max or EXAMPLE_ALPHA_MAX, opts.grid)
    region = "claimed" if ex.claimed_region else None
    chk = check_alpha_beta(ex, g, g, region=region, margin=margin)
    chk.save(out / f"{name}.json")
    fig, ax = plt.subplots(figsize=(5, 4))
    chk.plot(ax=ax)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=130)
    plt.close(fig)
    s = chk.summary()
    from rich.text import Text

    console.print(Text.assemble((ex.name, "bold"), f": {ex.description}; S = {ex.minimizers}"))
    console.print(f"pairs holding on {s['points']} points: {s['pairs_holding']} of {s['pairs']}")
    console.print(f"smallest pair (α ≥ β + {margin:g}): {s['smallest_pair']}")
    if region:
        console.print(
            f"paper's region: {s['region_pairs']} pairs, {s['region_fails']} fail, "
            f"{s['outside_holds']} hold outside it"
        )
    console.print(f"wrote {out / (name + '.json')}, {out / (name + '.png')}")
