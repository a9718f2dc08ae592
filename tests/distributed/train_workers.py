"""What each rank computes in the 2-rank training tests (importable by spawned processes).

Each function builds the same float64 Problem on every rank, makes it data-parallel when a
process group runs (:func:`lossgeometry.distributed.shard` returns it unchanged on one
process), trains or records, and returns the numbers as a dict of tensors and floats, so the
parent compares the ranks with each other and with one process (``rank=None``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import lossgeometry as lg
from lossgeometry.conditions.alphabeta_study import analyze_trace
from lossgeometry.integrations import CSVSink, JSONLinesSink
from tests.distributed.workers import make_problem


def _arrays(prefix: str, d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {f"{prefix}.{k}": torch.as_tensor(np.asarray(d[k], dtype=np.float64)) for k in keys}


def _trajectory(prefix: str, traj: lg.Trajectory) -> dict[str, Any]:
    out = _arrays(prefix, traj.__dict__, ("steps", "loss", "grad_norm", "distance", "pl_ratio"))
    assert traj.w_final is not None
    out[f"{prefix}.w_final"] = traj.w_final
    out[f"{prefix}.num_steps"] = float(traj.num_steps)
    return out


def train_and_records(rank: int | None, out_dir: str, n: int = 11) -> dict[str, Any]:
    """``lg.train`` (SGD mini-batches, SPS, NGN) and ``record_conditions`` on ``n`` samples.

    Mini-batches of 4 (and 3) out of 11 samples: uneven shards (6 and 5), batches that fall on
    one rank only, and a dropped tail each epoch. The SGD run writes its records to a CSV sink
    at ``out_dir/train-rank{rank}.csv``: only rank 0 may create its file.
    """
    problem = lg.distributed.shard(make_problem(n))
    tag = "single" if rank is None else f"rank{rank}"
    out: dict[str, Any] = {"world_size": problem.world_size}
    batches: list[torch.Tensor] = []

    def seen(t: int, w: torch.Tensor, idx: Any, L: torch.Tensor, g: torch.Tensor) -> None:
        batches.append(torch.stack((L.detach(), g.norm())))

    csv_path = Path(out_dir) / f"train-{tag}.csv"
    sink = CSVSink(csv_path)
    sgd = lg.train(
        problem,
        "sgd",
        9,
        lr=0.02,
        batch_size=4,
        seed=3,
        record_every=2,
        callback=seen,
        sinks=[sink],
        progress=False,
    )
    sink.close()
    out.update(_trajectory("sgd", sgd))
    out["sgd.batch_loss_grad"] = torch.stack(batches)
    out["sgd.csv_written"] = float(csv_path.exists())
    for name, kw in (("sps", {"lr": 0.5}), ("ngn", {"lr": 0.05})):
        run = lg.train(problem, name, 5, batch_size=3, seed=1, progress=False, **kw)
        out.update(_trajectory(name, run))
    trace = lg.record_conditions(
        problem, "sgd", 6, batch_size=4, seeds=(0, 2), lr=0.02, full_loss_every=2, progress=False
    )
    out.update(
        _arrays(
            "ab",
            trace.__dict__,
            (
                "loss_batch",
                "loss_batch_final",
                "f_star_batch",
                "inner",
                "grad_norm",
                "distance",
                "full_step",
                "full_loss",
                "full_inner",
                "full_grad_norm",
                "full_distance",
                "final_loss",
                "batch_indices",
            ),
        )
    )
    out["ab.replay_error"] = float(trace.replay_error.max())
    study = analyze_trace(trace)
    out["ab.min_T"] = torch.as_tensor(study.min_T)
    out["ab.smallest_pair"] = torch.as_tensor(study.smallest_pair or [float("nan")] * 2)
    return out


def ddp_monitor(rank: int | None, out_dir: str, n: int = 11, steps: int = 6) -> dict[str, Any]:
    """A user's own loop with the model in ``DistributedDataParallel``, watched by Monitors.

    Each step draws a global mini-batch (the same seeded sampler on every rank); a rank
    computes the loss of its own samples in it, scaled so that DDP's average of the ranks'
    gradients is the gradient of the mini-batch mean: ``f_r = W/|B| · Σ_{i∈B∩shard} ℓ_i``.
    On one process the same loop runs without DDP (``W = 1``).

    * ``mon``: loss, gradient norm, distance, PL ratio, ``λ_max(∇²L)``, the Hessian density
      and the hindsight Aiming angles every third step, to a JSON-lines sink at
      ``out_dir/monitor-{rank}.jsonl`` (only rank 0 may create its file);
    * ``probe``: loss, ..., ``λ_max`` every other step on a probe of 7 samples drawn from
      the seed;
    * ``over0`` / ``over1``: ``budget=0.5`` with the clock of rank 0 (resp. rank 1) made to
      say "over budget": rank 0 decides for everyone, so the first skips every record after
      the start on every rank and the second skips none;
    * ``sps``: a second DDP model trained by SPS_max, whose closure returns
      :func:`lossgeometry.optim.mean_over_ranks` of the rank's loss.
    """
    model, X, Y = make_data(n)
    net: torch.nn.Module = model
    if rank is not None:
        net = torch.nn.parallel.DistributedDataParallel(model)
    # the Problem receives the DDP-wrapped model (it measures net.module)
    problem = lg.distributed.shard(lg.Problem(net, X, Y, loss="mse", chunk_size=3))
    assert problem.model is model
    tag = "single" if rank is None else f"rank{rank}"
    jsonl = Path(out_dir) / f"monitor-{tag}.jsonl"
    measure = ("hessian_max", "hessian_density", "aiming_angle")
    mons = {
        "mon": lg.Monitor(problem, every=3, measure=measure, sinks=[JSONLinesSink(jsonl)]),
        "probe": lg.Monitor(problem, every=2, probe=7, measure=("hessian_max",), seed=4),
        "over0": lg.Monitor(problem, every=2, budget=0.5),
        "over1": lg.Monitor(problem, every=2, budget=0.5),
    }
    slow = {"over0": 0 if rank is None else rank, "over1": 1}  # the rank whose clock is slow
    W = problem.world_size
    start, stop = (0, n) if problem.shard is None else (problem.shard.start, problem.shard.stop)

    def local_loss(m: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        mine = idx[(idx >= start) & (idx < stop)]
        return 0.5 * ((m(X[mine]) - Y[mine]) ** 2).sum() * (W / idx.numel())

    opt = torch.optim.SGD(net.parameters(), lr=0.02)
    sampler = lg.recording.BatchSampler(n, 4, seed=5)
    for step in range(steps + 1):
        if step > 0:
            idx = sampler.next()
            assert idx is not None
            opt.zero_grad()
            local_loss(net, idx).backward()
            opt.step()
        for name, mon in mons.items():
            if name in slow and step > 0:  # this rank's clock: far over, or far under, budget
                mon.measure_seconds = 1e9 if (rank or 0) == slow[name] else 0.0
            mon.step(step)
    hindsight = mons["mon"].close()
    out: dict[str, Any] = {}
    for name, mon in mons.items():
        keys = ("steps", "loss", "grad_norm", "distance", "pl_ratio")
        keys += ("hessian_max",) if name in ("mon", "probe") else ()
        out.update(_arrays(name, mon.records, keys))
        out[f"{name}.skipped"] = float(mon.skipped)
    out["mon.density"] = torch.as_tensor(
        np.stack([h.counts for _, h in mons["mon"].histograms["hessian_density"]])
    )
    out["mon.aiming"] = torch.as_tensor([hindsight[t] for t in sorted(hindsight)])
    out["mon.w"] = problem.params()
    out["mon.jsonl_written"] = float(jsonl.exists())
    out.update(_sps_in_ddp(rank, n, steps, start, stop))
    return out


def _sps_in_ddp(rank: int | None, n: int, steps: int, start: int, stop: int) -> dict[str, Any]:
    model, X, Y = make_data(n)
    net: torch.nn.Module = model
    W = 1
    if rank is not None:
        net = torch.nn.parallel.DistributedDataParallel(model)
        W = lg.distributed.world_size()
    opt = lg.optim.SPSMax(net.parameters(), lr=0.5)
    sampler = lg.recording.BatchSampler(n, 3, seed=6)
    gammas = []
    for _ in range(steps):
        idx = sampler.next()
        assert idx is not None
        mine = idx[(idx >= start) & (idx < stop)]

        def closure(mine: torch.Tensor = mine, b: int = idx.numel()) -> torch.Tensor:
            opt.zero_grad()
            loss = 0.5 * ((net(X[mine]) - Y[mine]) ** 2).sum() * (W / b)
            loss.backward()
            return lg.optim.mean_over_ranks(loss)

        opt.step(closure)
        gammas.append(opt.last_step_size)
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"sps.w": w, "sps.gamma": torch.tensor(gammas, dtype=torch.float64)}


def make_data(n: int, k: int = 2) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The model and data of :func:`tests.distributed.workers.make_problem` (square loss)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    return lg.models.mlp(3, 8, 1, k, seed=1).double(), X, Y
