from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import pytest

from lossgeometry.options import (
    Options,
    OptionsError,
    check_value,
    located,
    unknown_key_message,
)


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


@dataclasses.dataclass(frozen=True)
class Outer(Options):
    inner: Demo = dataclasses.field(default_factory=Demo)
    name: str = "x"


def test_nested_tables_keep_their_location():
    assert Outer.from_mapping({"inner": {"top": 2}}).inner.top == 2
    with pytest.raises(OptionsError, match=r"^\[inner\] tpo: unknown option; did you mean 'top'"):
        Outer.from_mapping({"inner": {"tpo": 2}})
    with pytest.raises(OptionsError, match=r"^\[cfg.inner\] top = 'a': expected an integer"):
        Outer.from_mapping({"inner": {"top": "a"}}, where="cfg")
    with pytest.raises(OptionsError, match=r"^\[cfg\] inner = 3: expected a table"):
        Outer.from_mapping({"inner": 3}, where="cfg")
    with pytest.raises(OptionsError, match=r"^\[cfg\] expected a table, got 'inner'"):
        Outer.from_mapping("inner", where="cfg")  # type: ignore[arg-type]


def test_located_and_unknown_key_message():
    assert located("k: bad", "") == "k: bad"
    assert located("k: bad", "a") == "[a] k: bad"
    assert located("[b] k: bad", "a") == "[a.b] k: bad"
    msg = unknown_key_message("kernl", ["kernel", "problem"], "report", what="report section")
    assert msg == (
        "[report] kernl: unknown report section; did you mean 'kernel'? "
        "Valid names: kernel, problem"
    )
    assert unknown_key_message("zzz", ["top"]) == "zzz: unknown option. Valid options: top"


def test_check_value_against_any_annotation():
    from collections.abc import Mapping, Sequence

    assert check_value([1, 2], Sequence[int], "classes") == (1, 2)
    assert check_value(3, float, "noise") == 3.0 and isinstance(check_value(3, float, "x"), float)
    assert check_value(None, int | None, "n") is None
    assert check_value(len, Callable[..., Any], "fn") is len  # not checkable: accepted
    with pytest.raises(OptionsError, match=r"classes = 'abc': expected a list"):
        check_value("abc", Sequence[int], "classes")
    with pytest.raises(OptionsError, match=r"classes\[1\] = 'b': expected an integer"):
        check_value([1, "b"], Sequence[int], "classes")
    with pytest.raises(OptionsError, match=r"classes = \[1, 'b'\]: expected Sequence or none"):
        check_value([1, "b"], Sequence[int] | None, "classes")
    with pytest.raises(OptionsError, match=r"kw = 1: expected a table"):
        check_value(1, Mapping[str, Any], "kw")


def test_fixed_length_tuples():
    @dataclasses.dataclass(frozen=True)
    class Box(Options):
        span: tuple[float, int] = (1.0, 2)

    assert Box.from_mapping({"span": [3, 4]}).span == (3.0, 4)
    with pytest.raises(OptionsError, match=r"span\[1\] = 'x': expected an integer"):
        Box.from_mapping({"span": [3, "x"]})
    with pytest.raises(OptionsError, match="expected 2 entries"):
        Box.from_mapping({"span": [3]})
