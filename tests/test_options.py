from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from lossgeometry.options import Options, OptionsError


@dataclasses.dataclass(frozen=True)
class Demo(Options):
    top: int = 1
    tol: float = 1e-3
    method: Literal["lanczos", "arpack"] = "lanczos"
    progress: bool | None = None
    widths: tuple[int, ...] = (8, 16)

    def check(self) -> None:
        if self.top < 1:
            raise OptionsError(f"top = {self.top}: must be at least 1")


def test_defaults_and_lossless_conversions():
    d = Demo.from_mapping({"tol": 1, "widths": [4, 8]})
    assert d.tol == 1.0 and isinstance(d.tol, float)
    assert d.widths == (4, 8)
    assert d.to_dict() == {
        "top": 1,
        "tol": 1.0,
        "method": "lanczos",
        "progress": None,
        "widths": [4, 8],
    }


def test_unknown_key_names_it_and_the_closest():
    with pytest.raises(
        OptionsError, match=r"\[report.curvature\] tpo: unknown option; did you mean 'top'"
    ):
        Demo.from_mapping({"tpo": 2}, where="report.curvature")


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"top": 1.7}, "top = 1.7: expected an integer"),
        ({"top": True}, "top = True: expected an integer"),
        ({"top": "four"}, "top = 'four': expected an integer"),
        ({"tol": "x"}, "tol = 'x': expected a number"),
        ({"method": "power"}, "method = 'power': choose one of 'lanczos', 'arpack'"),
        ({"progress": 1}, "progress = 1: expected"),
        ({"widths": "8"}, "widths = '8': expected a list"),
        ({"widths": [8, "a"]}, r"widths\[1\] = 'a': expected an integer"),
        ({"top": 0}, "top = 0: must be at least 1"),
    ],
)
def test_wrong_types_name_the_key(data, msg):
    with pytest.raises(OptionsError, match=msg):
        Demo.from_mapping(data, where="x")


def test_keyword_construction_is_checked_too():
    with pytest.raises(OptionsError, match="expected an integer"):
        Demo(top=2.5)
    assert Demo(top=3).replace(tol=1e-6).tol == 1e-6
    with pytest.raises(OptionsError, match="did you mean 'tol'"):
        Demo().replace(tl=1.0)
