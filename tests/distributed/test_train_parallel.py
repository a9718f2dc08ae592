"""Training and α-β records on two gloo ranks give the records of one process.

``lg.train`` (SGD mini-batches on uneven shards, SPS, NGN), ``record_conditions`` and a
Monitor in a user's ``DistributedDataParallel`` loop: every rank holds bitwise the same
records and parameters, equal to one process's to 1e-12 relative (float64; the ranks sum in
another order), and only rank 0 writes a sink file. Two spawns in all (module fixtures).
"""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from tests.distributed import train_workers
from tests.distributed.harness import run_ranks
from tests.distributed.test_problem_parallel import RTOL, assert_ranks_equal, assert_same


def _split(results: dict, prefix: str) -> dict:
    return {k: v for k, v in results.items() if k.startswith(prefix + ".")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[list[dict], dict, object]:
    """(rank results, one-process result, folder) of :func:`train_workers.train_and_records`."""
    d = tmp_path_factory.mktemp("train")
    ranks = run_ranks(train_workers.train_and_records, d, out_dir=str(d))
    return ranks, train_workers.train_and_records(None, out_dir=str(d)), d


@pytest.fixture(scope="module")
def monitored(tmp_path_factory) -> tuple[list[dict], dict, object]:
    """(rank results, one-process result, folder) of :func:`train_workers.ddp_monitor`."""
    d = tmp_path_factory.mktemp("ddp")
    ranks = run_ranks(train_workers.ddp_monitor, d, out_dir=str(d))
    return ranks, train_workers.ddp_monitor(None, out_dir=str(d)), d


def test_ranks_hold_bitwise_the_same_records(trained, monitored):
    for ranks, _, _ in (trained, monitored):
        written = [k for k in ranks[0] if k.endswith("_written")]
        assert_ranks_equal([{k: v for k, v in r.items() if k not in written} for r in ranks])


def test_train_on_two_ranks_is_the_one_process_run(trained):
    ranks, single, _ = trained
    assert ranks[0]["world_size"] == 2 and single["world_size"] == 1
    for prefix in ("sgd", "sps", "ngn"):
        assert_same(_split(ranks[0], prefix), _split(single, prefix))
    # the records the run took (start, every 2nd step, end) and the mini-batch values seen
    assert ranks[0]["sgd.steps"].tolist() == [0, 2, 4, 6, 8, 9]
    assert ranks[0]["sgd.batch_loss_grad"].shape == (9, 2)
    assert not torch.equal(ranks[0]["sgd.w_final"], ranks[0]["ngn.w_final"])


def test_record_conditions_on_two_ranks_is_the_one_process_trace(trained):
    ranks, single, _ = trained
    got, want = _split(ranks[0], "ab"), _split(single, "ab")
    assert got["ab.replay_error"] == 0.0  # the replay on two ranks is exact
    assert torch.equal(got["ab.batch_indices"], want["ab.batch_indices"])  # the same batches
    assert got["ab.loss_batch"].shape == (12,)  # 2 seeds × 6 steps
    assert_same(got, want)


def test_monitor_in_a_ddp_loop_is_the_one_process_loop(monitored):
    ranks, single, _ = monitored
    for prefix in ("mon", "probe", "over0", "over1", "sps"):
        want = {k: v for k, v in _split(single, prefix).items() if not k.endswith("_written")}
        assert_same(_split(ranks[0], prefix), want)
    assert ranks[0]["mon.steps"].tolist() == [0, 3, 6]
    assert ranks[0]["probe.steps"].tolist() == [0, 2, 4, 6]
    assert ranks[0]["mon.aiming"].shape == (2,)
    assert torch.all(ranks[0]["sps.gamma"] > 0)


def test_the_time_budget_is_decided_on_rank_zero(monitored):
    ranks, _, _ = monitored
    # rank 0's clock is over budget: every rank skips every record after the start
    assert [r["over0.steps"].tolist() for r in ranks] == [[0.0], [0.0]]
    assert [r["over0.skipped"] for r in ranks] == [3.0, 3.0]
    # rank 1's clock is over budget but rank 0's is not: no rank skips
    assert [r["over1.steps"].tolist() for r in ranks] == [[0, 2, 4, 6]] * 2
    assert [r["over1.skipped"] for r in ranks] == [0.0, 0.0]


def test_only_rank_zero_writes_the_sinks(trained, monitored):
    for (ranks, single, d), kind in ((trained, "train"), (monitored, "monitor")):
        key = "sgd.csv_written" if kind == "train" else "mon.jsonl_written"
        assert [r[key] for r in ranks] == [1.0, 0.0] and single[key] == 1.0
        assert not list(d.glob(f"{kind}-rank1.*"))
    csv = _read_csv(trained[2] / "train-rank0.csv")
    want = _read_csv(trained[2] / "train-single.csv")
    assert [key for key, _ in csv] == [key for key, _ in want]  # the same records, in order
    for (_, v), (_, ref) in zip(csv, want, strict=True):
        assert math.isclose(v, ref, rel_tol=RTOL)
    text = (monitored[2] / "monitor-rank0.jsonl").read_text()
    scalars = [x for x in map(json.loads, text.splitlines()) if "loss" in x.get("scalars", {})]
    assert [x["step"] for x in scalars] == [0, 3, 6]
    assert [x["scalars"]["loss"] for x in scalars] == monitored[0][0]["mon.loss"].tolist()


def _read_csv(path) -> list[tuple[tuple[int, str], float]]:
    with path.open() as f:
        return [((int(r["step"]), r["name"]), float(r["value"])) for r in csv.DictReader(f)]
