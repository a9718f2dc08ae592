"""The memory guard: parsing, limits, and refusals before allocation."""

from __future__ import annotations

import pytest
import torch

import lossgeometry as lg
from lossgeometry.kernel import memory


def test_parse_and_format_bytes():
    assert memory.parse_bytes(123) == 123
    assert memory.parse_bytes("8GiB") == 8 * 1024**3
    assert memory.parse_bytes("1.5 GB") == 1_500_000_000
    assert memory.parse_bytes("500mb") == 500_000_000
    for bad in ("lots", "5 parsecs", -1, 0, True, None):
        with pytest.raises(ValueError):
            memory.parse_bytes(bad)
    assert memory.format_bytes(3 * 1024**3) == "3.00 GiB"
    assert memory.format_bytes(10) == "10 B"


def test_available_memory_and_default_limit():
    avail = memory.available_memory()
    assert avail > 0
    lim = memory.memory_limit()
    assert 0 < lim <= avail


def test_module_setting_and_argument_precedence():
    try:
        memory.set_max_memory("1MiB")
        assert memory.memory_limit() == 1024**2
        assert memory.memory_limit("2MiB") == 2 * 1024**2
    finally:
        memory.set_max_memory(None)
    assert memory.MAX_MEMORY is None


def test_check_memory_message():
    with pytest.raises(ValueError, match=r"the thing needs about 1\.00 GiB.*try less") as e:
        memory.check_memory(1024**3, "the thing", "1MiB", hint="try less")
    assert "max_memory" in str(e.value)
    assert memory.check_memory(10, "x", 100) == 100


def test_tangent_kernel_refuses_before_allocating():
    g = torch.Generator().manual_seed(0)
    model = lg.models.mlp(3, 5, 1, 4, seed=0)
    pb = lg.Problem(model, torch.randn(50, 3, generator=g), torch.zeros(50, 4))
    # the 200 × 200 float32 kernel needs 160 kB
    with pytest.raises(
        ValueError, match=r"200 × 200 kernel needs about 156\.25 KiB.*ntk_operator"
    ) as e:
        lg.tangent_kernel(pb, max_memory=100_000)
    assert "solver='lanczos'" in str(e.value)
    # the diagonal blocks fit
    assert lg.tangent_kernel(pb, diagonal_only=True, max_memory=100_000).shape == (50, 4, 4)
    # an explicit chunk that cannot fit is refused with a chunk_size hint
    with pytest.raises(ValueError, match="chunk_size"):
        lg.tangent_kernel(pb, chunk_size=50, max_memory=170_000)
