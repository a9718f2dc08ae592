"""Two gloo ranks give the numbers of one process: the Problem's views and products.

Every quantity is compared with the one-process value to 1e-12 relative (float64; the ranks
sum in another order) and between the ranks exactly (every rank holds the same tensor).
"""

from __future__ import annotations

import pytest
import torch

import lossgeometry as lg
from tests.distributed import workers
from tests.distributed.harness import run_ranks

RTOL = 1e-12


def assert_same(got: dict, want: dict, rtol: float = RTOL) -> None:
    for key, ref in want.items():
        if key == "world_size":
            continue
        val = got[key]
        if isinstance(ref, torch.Tensor):
            assert val.shape == ref.shape and val.dtype == ref.dtype, key
            scale = max(float(ref.abs().max()), 1e-300)
            err = float((val - ref).abs().max()) / scale
        else:
            err = abs(val - ref) / max(abs(ref), 1e-300)
        assert err <= rtol, f"{key}: relative error {err:.2e}"


def assert_ranks_equal(results: list[dict]) -> None:
    for key, ref in results[0].items():
        for r in results[1:]:
            if isinstance(ref, torch.Tensor):
                assert torch.equal(r[key], ref), key
            else:
                assert r[key] == ref, key


@pytest.mark.parametrize(
    ("n", "loss", "own_shard"),
    [(11, "mse", False), (11, "cross_entropy", True), (3, "mse", True)],
    ids=["uneven-mse", "own-shard-ce", "one-sample-rank"],
)
def test_two_ranks_give_the_one_process_views(tmp_path, n, loss, own_shard):
    results = run_ranks(workers.views, tmp_path, n=n, loss=loss, own_shard=own_shard)
    assert [r["world_size"] for r in results] == [2, 2]
    assert_ranks_equal(results)
    want = workers.views(None, n=n, loss=loss)
    assert want["world_size"] == 1 and results[0]["n"] == n
    assert_same(results[0], want)


def test_two_ranks_give_the_one_process_spectra(tmp_path):
    results = run_ranks(workers.spectra, tmp_path)
    assert_ranks_equal(results)
    assert_same(results[0], workers.spectra(None))


def test_shard_bounds_is_the_documented_split():
    assert [lg.distributed.shard_bounds(11, 2, r) for r in range(2)] == [(0, 6), (6, 11)]
    assert [lg.distributed.shard_bounds(3, 2, r) for r in range(2)] == [(0, 2), (2, 3)]
    with pytest.raises(ValueError, match="at most 3 ranks"):
        lg.distributed.shard_bounds(3, 4, 0)


def test_one_process_functions_are_the_identity():
    problem = workers.make_problem(5)
    assert lg.distributed.shard(problem) is problem
    assert lg.distributed.data_parallel(problem) is problem
    assert lg.distributed.gather(problem) is problem
    assert (problem.world_size, problem.rank, problem.shard) == (1, 0, None)
    assert lg.distributed.init() is False  # no torchrun variables: one process


def test_bad_arguments_are_refused_on_one_process_too():
    with pytest.raises(ValueError, match="backend must be 'gloo' or 'nccl'"):
        lg.distributed.init(backend="mpi")
    with pytest.raises(ValueError, match="timeout must be a positive"):
        lg.distributed.init(timeout=0)
    with pytest.raises(TypeError, match=r"must be a lossgeometry\.Problem"):
        lg.distributed.data_parallel(torch.nn.Linear(2, 1))


def test_a_rank_that_raises_stops_the_others_with_a_clear_error(tmp_path):
    import time

    t0 = time.perf_counter()
    reports = run_ranks(workers.one_rank_raises, tmp_path, timeout=20, expect_failure=True)
    assert time.perf_counter() - t0 < 60
    assert reports[1]["error"] == "rank 1 fails on purpose"
    assert not reports[0]["ok"] and reports[0]["type"] == "DistributedError"
    assert "another rank raised, died or did not reach" in reports[0]["error"]


def test_a_rank_that_never_joins_gives_a_clear_error_within_the_timeout(tmp_path):
    import time

    t0 = time.perf_counter()
    reports = run_ranks(workers.nothing, tmp_path, timeout=3, nprocs=1, expect_failure=True)
    assert time.perf_counter() - t0 < 30
    assert reports[0]["type"] == "DistributedError"
    assert "did not all join" in reports[0]["error"] and "within 3 s" in reports[0]["error"]


def test_two_ranks_give_the_one_process_solvers_density_and_surface(tmp_path):
    ckpt = tmp_path / "surface.json"
    results = run_ranks(workers.solvers_and_surfaces, tmp_path, checkpoint=str(ckpt))
    assert_ranks_equal(results)
    assert ckpt.exists()  # rank 0 wrote the checkpoint
    want = workers.solvers_and_surfaces(None)
    got = dict(results[0])
    assert got["evaluated"] == want["evaluated"] == 16
    # SLQ density: the same Lanczos runs; the grid density is a smooth function of their nodes
    assert_same(got, want, rtol=1e-10)
    # resumed from rank 0's checkpoint, on both ranks: the same numbers, nothing recomputed
    again = run_ranks(workers.solvers_and_surfaces, tmp_path / "again", checkpoint=str(ckpt))
    assert_ranks_equal(again)
    assert torch.equal(again[0]["surface"], results[0]["surface"])
    assert again[0]["evaluated"] == again[1]["evaluated"] == 0


def test_unported_measurements_refuse_a_data_parallel_problem(tmp_path):
    reports = run_ranks(workers.unported, tmp_path, expect_failure=True)
    for rep in reports:
        assert rep["type"] == "ValueError", rep
        assert "does not run on a data-parallel Problem (world_size=2)" in rep["error"]
        assert "lossgeometry.distributed.gather" in rep["error"]
