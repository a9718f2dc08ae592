"""Quick start: measure your own model from Python (runs in a few seconds on a CPU)."""

from torch import nn

import lossgeometry as lg

X, Y = lg.data.load("digits", n=100, classes=[0, 1], one_hot=True)
model = nn.Sequential(nn.Linear(64, 512), nn.Tanh(), nn.Linear(512, 2))

problem = lg.Problem(model, X, Y, loss="mse")  # L(w) = 1/2 sum_i |f(w; x_i) - y_i|^2
print(problem)
spec = lg.kernel_spectrum(problem)  # the tangent kernel K = DF DF^T at the initialization
mu = 2 * problem.loss_scale * spec.lambda_min  # the PL* constant that lambda_min(K) implies
print(f"lambda_min(K) = {spec.lambda_min:.3g}, mu = {mu:.3g}")
run = lg.train(problem, "gd", steps=200, lr=5e-4, record_every=10)
print(f"loss {run.loss[0]:.3g} -> {run.loss[-1]:.3g}, min PL ratio {run.pl_ratio.min():.3g}")
run.save("quickstart_run.json")  # the recorded run (JSON) and its parameters (.pt)
