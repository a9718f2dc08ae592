"""What the first kernel call relies on: the cheap finiteness check stays exact."""

from __future__ import annotations

import pytest
import torch

from lossgeometry.operators.base import require_finite


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_require_finite_catches_every_non_finite_entry(bad: float) -> None:
    x = torch.ones(3, 4)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="NaN/Inf"):
        require_finite(x)


def test_require_finite_passes_finite_values_whose_sum_overflows() -> None:
    x = torch.full((8,), 3e38)
    assert torch.isinf(x.sum())
    assert require_finite(x) is x
