"""Geometry along an ordinary PyTorch training loop, with lg.Monitor.

Every 10 steps the Monitor records the loss, the PL ratio, the top Hessian eigenvalue and the
smallest tangent-kernel eigenvalue on a fixed probe of 128 samples, without changing the
model's state; the records go to a JSON-lines file and into `monitor.png`. Run:
`python examples/monitor_loop.py` (a few seconds on a laptop CPU).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.integrations import JSONLinesSink

torch.manual_seed(0)
X, Y = lg.data.load("digits", n=512, one_hot=True)
model = nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 10))
problem = lg.Problem(model, X, Y, reduction="mean")

sink = JSONLinesSink("geometry.jsonl")
monitor = lg.Monitor(
    problem, every=10, probe=128, measure=("hessian_max", "kernel_min"), sinks=[sink]
)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for step in range(201):
    monitor.step(step)
    idx = torch.randint(0, 512, (32,))
    opt.zero_grad()
    nn.functional.mse_loss(model(X[idx]), Y[idx]).backward()
    opt.step()
monitor.close()

r = monitor.records
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
axes[0].semilogy(r["steps"], r["loss"], "o-", ms=3)
axes[0].set_title("loss on the probe")
axes[1].plot(r["steps"], r["hessian_max"], "o-", ms=3, label="λ_max(∇²L)")
axes[1].axhline(2 / 0.5, color="k", ls=":", lw=1, label="2/lr (GD stability)")
axes[1].set_title("top Hessian eigenvalue")
axes[1].legend(fontsize=8)
axes[2].semilogy(r["steps"], r["kernel_min"], "o-", ms=3)
axes[2].set_title("λ_min of the tangent kernel")
for ax in axes:
    ax.set_xlabel("SGD step")
    ax.grid(alpha=0.3, which="both")
fig.tight_layout()
fig.savefig("monitor.png", dpi=110)
print(f"{len(r['steps'])} records; overhead {monitor.overhead()['fraction']:.0%} of the loop")
