"""The Lightning callback, run by a real ``lightning.Trainer`` on CPU for a few steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lossgeometry as lg

L = pytest.importorskip("lightning.pytorch")
from lossgeometry.integrations import JSONLinesSink, LossGeometryCallback  # noqa: E402


class _Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return 0.5 * ((self.net(x) - y) ** 2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.02)


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 3, generator=g, dtype=torch.float64)
    return X, torch.randn(16, 2, generator=g, dtype=torch.float64)


def _trainer(callback, **kw):
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        **kw,
    )


class _Iterates(L.Callback):
    """The parameters after every optimizer step (the oracle's points)."""

    def __init__(self) -> None:
        self.w: dict[int, torch.Tensor] = {}

    def on_train_start(self, trainer, pl_module):
        self.w[0] = torch.cat([p.detach().reshape(-1).clone() for p in pl_module.parameters()])

    def on_train_batch_end(self, trainer, pl_module, *args):
        w = torch.cat([p.detach().reshape(-1).clone() for p in pl_module.parameters()])
        self.w[trainer.global_step] = w


def test_callback_records_every_n_steps_on_the_probe(tmp_path) -> None:
    X, Y = _data()
    probe = [0, 3, 5, 9, 12]
    cb = LossGeometryCallback(
        lambda module: lg.Problem(module.net, X, Y),
        every_n_steps=2,
        measure=("hessian_max", "kernel_min"),
        probe=probe,
        sinks=[JSONLinesSink(tmp_path / "g.jsonl")],
    )
    its = _Iterates()
    module = _Module()
    trainer = _trainer(cb, max_steps=6)
    trainer.callbacks.append(its)
    trainer.fit(module, DataLoader(TensorDataset(X, Y), batch_size=4))
    mon = cb.monitor
    assert mon is not None and mon.records["steps"] == [0, 2, 4, 6]
    ref = lg.Problem(module.net, X[probe], Y[probe])
    for j, t in enumerate(mon.records["steps"]):
        w = its.w[t]
        assert mon.records["loss"][j] == pytest.approx(float(ref.loss(w)), rel=1e-12)
        H = torch.autograd.functional.hessian(
            lambda w_: 0.5 * ((ref.forward(w_, X[probe]) - Y[probe]) ** 2).sum(), w
        )
        assert mon.records["hessian_max"][j] == pytest.approx(
            float(torch.linalg.eigvalsh(H)[-1]), rel=1e-6
        )
    lines = [json.loads(s) for s in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == [0, 2, 4, 6]


def test_callback_every_n_epochs_and_its_errors() -> None:
    X, Y = _data()
    cb = LossGeometryCallback(
        lambda module: lg.Problem(module.net, X, Y), every_n_epochs=1, budget=10.0
    )
    _trainer(cb, max_epochs=2).fit(_Module(), DataLoader(TensorDataset(X, Y), batch_size=8))
    assert cb.monitor is not None and cb.monitor.records["steps"] == [0, 2, 4]
    assert np.all(np.diff(cb.monitor.records["loss"]) < 0)
    with pytest.raises(ValueError, match="exactly one"):
        LossGeometryCallback(lambda m: None, every_n_steps=1, every_n_epochs=1)
    with pytest.raises(ValueError, match="positive integer"):
        LossGeometryCallback(lambda m: None, every_n_steps=0)
