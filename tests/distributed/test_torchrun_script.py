"""A real torchrun launch of a user's script: two ranks print the one-process numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.distributed.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "distributed_spectrum.py"


def _run(args: list[str], out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    env.pop("LOSSGEOMETRY_SMALL", None)
    res = subprocess.run(
        [*args, str(SCRIPT), "--samples", "40", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out.parent,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(out.read_text())


def test_torchrun_two_ranks_give_the_one_process_numbers(tmp_path):
    one = _run([sys.executable], tmp_path / "one.json")
    port = free_port()
    two = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(port),
        ],
        tmp_path / "two.json",
    )
    assert one.pop("world_size") == 1 and two.pop("world_size") == 2
    for key, ref in one.items():
        got = two[key]
        for a, b in zip(
            got if isinstance(got, list) else [got],
            ref if isinstance(ref, list) else [ref],
            strict=True,
        ):
            assert abs(a - b) <= 1e-12 * max(abs(b), 1e-300), (key, a, b)
