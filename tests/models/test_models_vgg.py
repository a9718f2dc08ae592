"""The small VGG: shapes, parameter count, forward against a functional re-implementation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lossgeometry.models import count_parameters, vgg


def test_default_is_the_benchmark_vgg():
    model = vgg(seed=0)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    convs = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    expected = sum((9 * a + 1) * b for a, b in convs) + (64 * 4 * 4 + 1) * 10
    assert count_parameters(model) == expected == 82_330
    assert isinstance(model.pool1, nn.MaxPool2d)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_forward_matches_functional_definition(pool):
    model = vgg(2, 3, (3, "M", 4, 4, "M"), input_size=(8, 6), hidden=(5,), pool=pool, seed=1)
    model = model.double()
    x = torch.randn(4, 2, 8, 6, dtype=torch.float64)
    p = F.max_pool2d if pool == "max" else F.avg_pool2d
    h = F.relu(F.conv2d(x, model.conv1.weight, model.conv1.bias, padding=1))
    h = p(h, 2)
    h = F.relu(F.conv2d(h, model.conv2.weight, model.conv2.bias, padding=1))
    h = F.relu(F.conv2d(h, model.conv3.weight, model.conv3.bias, padding=1))
    h = p(h, 2).flatten(1)
    assert h.shape[1] == 4 * 2 * 1
    h = F.relu(h @ model.fc1.weight.T + model.fc1.bias)
    torch.testing.assert_close(model(x), h @ model.out.weight.T + model.out.bias)
    torch.testing.assert_close(model(x[1]), model(x)[1])  # unbatched sample


def test_per_sample_jacobians_under_vmap():
    model = vgg(3, 2, (2, "M", 3), input_size=4, pool="avg", seed=0)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.randn(3, 3, 4, 4)

    def f(p, xi):
        return functional_call(model, p, (xi,))

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)
    assert jac["conv1.weight"].shape == (3, 2, 2, 3, 3, 3)


def test_seed_and_errors():
    a, b = vgg(seed=3), vgg(seed=3)
    assert all(torch.equal(u, v) for u, v in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ValueError, match="at least one convolution"):
        vgg(config=("M",))
    with pytest.raises(ValueError, match="config entry"):
        vgg(config=(4, "X"))
    with pytest.raises(ValueError, match="too small"):
        vgg(config=(2, "M", "M", "M"), input_size=4)
    with pytest.raises(ValueError, match="pool"):
        vgg(pool="sum")
