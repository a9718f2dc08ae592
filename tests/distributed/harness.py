"""Run a function on 2 gloo ranks spawned from pytest, and collect what each rank returns.

``run_ranks(fn, world_size=2, **kwargs)`` starts ``world_size`` fresh processes (spawn) with
torchrun's variables set, so :func:`lossgeometry.distributed.init` starts a real gloo group;
rank ``r`` calls ``fn(r, **kwargs)`` and its return value (a dict of tensors and numbers) is
saved with ``torch.save`` and read back here. A rank that raises makes ``run_ranks`` raise
with that rank's traceback, unless ``expect_failure`` (then the ranks' error texts come back).
"""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(
    rank: int,
    fn: Callable[..., Any],
    world_size: int,
    port: int,
    out: str,
    timeout: float,
    kwargs: dict[str, Any],
) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    import lossgeometry as lg

    path = Path(out) / f"rank{rank}.pt"
    ok = False
    try:
        lg.distributed.init(timeout=timeout)
        result = fn(rank, **kwargs)
        torch.save({"ok": True, "result": result}, path)
        ok = True
    except BaseException as e:  # report every failure to the parent
        torch.save(
            {
                "ok": False,
                "type": type(e).__name__,
                "error": str(e),
                "traceback": traceback.format_exc(),
            },
            path,
        )
    finally:
        lg.distributed.shutdown(wait=ok)


def run_ranks(
    fn: Callable[..., Any],
    tmp_path: Path,
    *,
    world_size: int = 2,
    timeout: float = 60.0,
    expect_failure: bool = False,
    nprocs: int | None = None,
    **kwargs: Any,
) -> list[Any]:
    """``[fn(0, **kwargs), fn(1, **kwargs), …]`` computed on ``world_size`` gloo ranks.

    ``nprocs`` starts fewer processes than ``world_size`` (a rank that never joins).
    """
    out = tmp_path / "ranks"
    out.mkdir(parents=True, exist_ok=True)
    mp.start_processes(
        _entry,
        args=(fn, world_size, free_port(), str(out), timeout, kwargs),
        nprocs=world_size if nprocs is None else nprocs,
        join=True,
        start_method="spawn",
    )
    started = world_size if nprocs is None else nprocs
    reports = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(started)]
    if expect_failure:
        return reports
    for r, rep in enumerate(reports):
        if not rep["ok"]:
            raise AssertionError(
                f"rank {r} raised {rep['type']}: {rep['error']}\n{rep['traceback']}"
            )
    return [rep["result"] for rep in reports]
