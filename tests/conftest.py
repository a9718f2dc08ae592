"""Shared fixtures: tiny models and data in float64, for dense-oracle comparisons."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def tiny_mlp(d_in: int = 3, width: int = 5, d_out: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, d_out)).double()


def tiny_cnn(channels: int = 2, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, channels, kernel_size=3, padding=1, stride=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(channels * 3 * 3, classes),
    ).double()


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def tiny_toml(sections: list[str], *, width: int = 12, extra: str = "") -> str:
    """A tiny ``analyze`` config for CLI/report tests: 16 digits, a one-hidden-layer MLP of
    ``width``, 6 GD steps recorded every 2, the given report ``sections``, then ``extra``."""
    return (
        'seed = 0\n[data]\nname = "digits"\nn = 16\none_hot = true\n'
        f'[model]\nname = "mlp"\nwidth = {width}\ndepth = 1\n'
        "[train]\nsteps = 6\nrecord_every = 2\n"
        f"[report]\nsections = {sections!r}\n".replace("'", '"')
        + extra
    )


def pytest_configure(config):
    # the package's own code and tests use the current call style: a deprecated one
    # (lossgeometry._compat.deprecated_call_style) is an error here, except inside
    # ``pytest.warns(DeprecationWarning)``, where the tests of the old styles check it
    for pattern in (
        r"error:passing .* by position to .* is deprecated:DeprecationWarning",
        r"error:.*\(\). the argument '.*' is now called:DeprecationWarning",
    ):
        config.addinivalue_line("filterwarnings", pattern)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(pytest.mark.timeout(3600))
