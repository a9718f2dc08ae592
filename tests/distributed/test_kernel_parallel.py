"""Two gloo ranks give the tangent kernel, its spectrum and the PL* certificate of one process.

Every quantity is compared with the one-process value to 1e-12 relative (float64; the ranks
sum in another order) and between the ranks exactly (every rank holds the same tensor); each
rank's row block is compared with the rows it names of the one-process kernel. The row-sharded
case computes λ_min where the memory limit refuses the whole dense kernel on one process.
"""

from __future__ import annotations

import pytest
import torch

import lossgeometry as lg
from tests.distributed import kernel_workers as kw
from tests.distributed.harness import run_ranks
from tests.distributed.test_problem_parallel import RTOL, assert_ranks_equal, assert_same

ROWS = ("rows_full", "rows_trace", "rows_subset", "rows_diag")
ONE_PROCESS_KERNEL = {"rows_full": "full", "rows_trace": "trace", "rows_subset": "subset"}


@pytest.fixture(scope="module")
def kernel_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernels")
    return run_ranks(kw.kernels, tmp), kw.kernels(None)


def _split(results: dict) -> tuple[dict, dict]:
    rows = {k: v for k, v in results.items() if k.split("/")[-1].startswith(ROWS)}
    return {k: v for k, v in results.items() if k not in rows}, rows


def test_two_ranks_give_the_one_process_kernels(kernel_runs):
    ranks, one = kernel_runs
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert_ranks_equal([_split(r)[0] for r in ranks])
    want, _ = _split(one)
    # one process checks the rules on its first two (small) samples only, so it keeps the
    # tied layer's rule and its structured kernel is wrong for the large samples; the ranks
    # check theirs, rank 1 refuses the rule, and both fall back: the exact kernel
    assert (one["tied/fallback"], ranks[0]["tied/fallback"]) == (0.0, 1.0)
    assert_same({"tied": ranks[0]["tied/structured"]}, {"tied": one["tied/jacobian"]})
    assert_same(
        ranks[0],
        {
            k: v
            for k, v in want.items()
            if k.split("/")[-1] != "fallback" and k != "tied/structured"
        },
    )
    assert ranks[1]["rank0/rows_subset"].shape == (0, 4)
    assert ranks[0]["rank0_only"].shape == (4, 4)
    for meth in kw.METHODS:  # the block between the ranks is written with its mirror image
        K = ranks[0][f"{meth}/full"]
        assert torch.equal(K[:8, 8:], K[8:, :8].T) and K.shape == (14, 14)
        assert ranks[0][f"{meth}/subset"].shape == (12, 12)


def test_each_rank_holds_its_rows_of_the_kernel(kernel_runs):
    ranks, one = kernel_runs
    for meth in kw.METHODS:
        for rows in ROWS:
            got = [r[f"{meth}/{rows}"] for r in ranks]
            index = [r[f"{meth}/{rows}_index"] for r in ranks]
            # the ranks' rows are disjoint and together all rows of the kernel
            every = torch.cat(index).sort().values
            assert torch.equal(every, torch.arange(every.numel())), (meth, rows)
            if rows == "rows_diag":
                want = one[f"{meth}/diag"]
            else:
                want = one[f"{meth}/{ONE_PROCESS_KERNEL[rows]}"]
            scale = float(want.abs().max())
            for block, idx in zip(got, index, strict=True):
                assert block.shape[1:] == want.shape[1:], (meth, rows)
                err = float((block - want[idx]).abs().max()) / scale
                assert err <= RTOL, f"{meth}/{rows}: relative error {err:.2e}"
    # rank 0 holds samples 0..3 (4 of 7), rank 1 samples 4..6
    assert ranks[0]["structured/rows_full"].shape == (8, 14)
    assert ranks[1]["structured/rows_trace"].shape == (3, 7)


def test_two_ranks_give_the_one_process_spectra_and_certificate(tmp_path):
    ranks = run_ranks(kw.spectra, tmp_path)
    assert_ranks_equal(ranks)
    one = kw.spectra(None)
    # LOBPCG may take another number of steps to the same eigenvalues (rounding of the sums)
    counts = {k for k in one if k.endswith("/matvecs")}
    assert_same(ranks[0], {k: v for k, v in one.items() if k not in counts})
    assert one["cert/certified"] == 1.0 and one["cert/mu"] > 0
    dense = one["dense/lambda_min"]
    for solver in ("lanczos", "arpack", "lobpcg", "sharded"):
        assert abs(ranks[0][f"{solver}/lambda_min"] - dense) <= 1e-8 * dense, solver


def test_lambda_min_where_the_dense_kernel_does_not_fit_one_process(tmp_path):
    limit = int(0.75 * kw.full_kernel_bytes())  # each rank's rows take half of the kernel
    one = kw.make_problem(kw.LARGE_N)
    with pytest.raises(ValueError, match="more than the memory limit"):
        lg.tangent_kernel(one, max_memory=limit)
    oracle = torch.linalg.eigvalsh(lg.tangent_kernel(one))  # float64, no limit
    ranks = run_ranks(kw.sharded_lambda_min, tmp_path, max_memory=limit)
    assert_ranks_equal(ranks)
    got = ranks[0]
    assert got["method"] == "sharded" and got["converged"] == 1.0
    assert "more than the memory limit" in got["refused"]  # the whole kernel: refused
    assert got["rows_shape"].tolist() == [40, 80]  # 20 samples × k = 2 rows on each rank
    assert abs(got["lambda_min"] - float(oracle[0])) <= 1e-10 * float(oracle[0])
    assert abs(got["lambda_max"] - float(oracle[-1])) <= 1e-12 * float(oracle[-1])


def test_pair_schedule_computes_every_pair_of_ranks_once():
    from lossgeometry.kernel.exchange import pair_schedule

    for W in range(1, 9):
        pairs = pair_schedule(W)
        unordered = [frozenset(p) for p in pairs]
        assert len(unordered) == len(set(unordered)) == W * (W + 1) // 2
        per_rank = [sum(r == p[0] for p in pairs) for r in range(W)]
        assert max(per_rank) - min(per_rank) <= 1
