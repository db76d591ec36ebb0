"""``@value`` behaves as ``@dataclass(frozen=True)`` on the same fields, however it is called.

The core's inputs, effects, wire messages and config are ``@value`` classes (agent/values.py),
defined at every pod's start for a tenth of a frozen dataclass's cost: these tests hold them to
the dataclass's behaviour, the one the rest of the code and its tests were written against.
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.protocol.wire import Arrive, Release, decode, encode
from agent.values import value


@value
class Point:
    x: int
    label: str = "p"
    tags: tuple[str, ...] = ()
    seen: list[int] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class PointTwin:
    x: int
    label: str = "p"
    tags: tuple[str, ...] = ()
    seen: list[int] = field(default_factory=list, repr=False)


@value(kw_only=True)
class Pace:
    base: float
    cap: float = 1.0


@value
class Nothing:
    pass


_NAMES = ("x", "label", "tags", "seen")


@st.composite
def calls(draw: st.DrawFn) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments for Point: a positional prefix, then keywords in any order, defaults left out."""
    values = {
        "x": draw(st.integers()),
        "label": draw(st.text(max_size=3)),
        "tags": tuple(draw(st.lists(st.text(max_size=2), max_size=2))),
        "seen": draw(st.lists(st.integers(), max_size=2)),
    }
    cut = draw(st.integers(0, 4))
    args = tuple(values[n] for n in _NAMES[:cut])
    rest = [n for n in _NAMES[cut:] if n == "x" or draw(st.booleans())]
    kwargs = {n: values[n] for n in draw(st.permutations(rest))}
    return args, kwargs


@given(calls(), calls())
def test_a_value_is_built_compared_and_shown_as_its_frozen_dataclass_twin(
    one: tuple[tuple[Any, ...], dict[str, Any]], two: tuple[tuple[Any, ...], dict[str, Any]]
) -> None:
    a, b = Point(*one[0], **one[1]), Point(*two[0], **two[1])
    ta, tb = PointTwin(*one[0], **one[1]), PointTwin(*two[0], **two[1])
    assert dataclasses.asdict(a) == dataclasses.asdict(ta)
    assert list(vars(a)) == list(_NAMES)  # field order, whatever the order of the keywords
    assert repr(a) == repr(ta).replace("PointTwin", "Point")
    assert (a == b) == (ta == tb)
    if a == b:
        assert hash((a.x, a.label, a.tags)) == hash((b.x, b.label, b.tags))
    assert dataclasses.replace(a, label="q") == Point(a.x, "q", a.tags, a.seen)


def test_equal_fields_of_different_classes_are_not_equal() -> None:
    """Unlike tuples: a Release is never an Arrive with the same view (sum types rely on it)."""
    release: object = Release("v")
    assert Arrive("v") != release
    assert Arrive("v") == Arrive(view="v")
    assert len({Arrive("v"), Release("v"), Arrive("v")}) == 2
    assert Nothing() == Nothing() and hash(Nothing()) == hash(Nothing())


def test_a_value_cannot_be_changed() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.label
    assert point == Point(1)


def test_each_value_gets_its_own_default_from_a_factory() -> None:
    assert Point(1).seen is not Point(1).seen


@pytest.mark.parametrize(
    ("args", "kwargs", "says"),
    [
        ((), {}, "missing ['x']"),
        ((1,), {"x": 2}, "twice"),
        ((1,), {"colour": "red"}, "unknown ['colour']"),
        ((), {"x": 1, "label": "a", "tags": (), "colour": 1}, "unknown ['colour']"),
        ((1, "a", (), [], 5), {}, "takes 4 positional"),
    ],
)
def test_wrong_arguments_raise_type_error_naming_the_class(
    args: tuple[Any, ...], kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(TypeError, match=r"Point\(\).*" + says.replace("[", r"\[")):
        Point(*args, **kwargs)


def test_keyword_only_values_take_keywords_only() -> None:
    assert Pace(base=0.1) == Pace(cap=1.0, base=0.1)
    with pytest.raises(TypeError, match="takes 0 positional"):
        Pace(0.1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 0 positional"):
        Pace(0.1, 1.0)  # type: ignore[call-arg]


def test_values_pickle_and_cross_the_wire_unchanged() -> None:
    point = Point(3, "r", ("a",), [1])
    assert pickle.loads(pickle.dumps(point)) == point
    assert decode(encode(Arrive("digest"))) == Arrive("digest")


def test_a_value_is_a_dataclass_to_the_standard_library() -> None:
    assert Point.__match_args__ == _NAMES
    assert Pace.__match_args__ == ()
    assert Nothing.__doc__ == "Nothing()"
    assert [f.name for f in dataclasses.fields(Point)] == list(_NAMES)
    assert dataclasses.is_dataclass(Point)


def _define(body: str) -> type:
    """A class defined from source under ``@value``, as a module with PEP 563 defines it."""
    scope: dict[str, Any] = {"value": value, "field": field}
    exec(
        compile(f"from __future__ import annotations\n@value\nclass C:\n{body}", "<t>", "exec"),
        scope,
    )
    return scope["C"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        ("    seen: list[int] = []\n", ValueError, "mutable default"),
        ("    a: int = 1\n    b: int\n", TypeError, "without a default after one with"),
        ("    count: ClassVar[int] = 0\n", TypeError, "no class variables"),
    ],
)
def test_a_class_dataclasses_would_refuse_or_read_otherwise_is_refused(
    body: str, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        _define(body)


def test_a_value_inherits_no_fields() -> None:
    with pytest.raises(TypeError, match="inherits no fields"):
        value(type("Sub", (Point,), {"__annotations__": {"y": "int"}}))


def test_defaults_stay_on_the_class_as_on_a_dataclass() -> None:
    """A default is the class attribute, a factory's field is none: as ``dataclasses`` has it."""
    assert Point.label == PointTwin.label == "p"
    assert not hasattr(Point, "seen") and not hasattr(PointTwin, "seen")
    assert [f.default_factory for f in dataclasses.fields(Point)] == [
        f.default_factory for f in dataclasses.fields(PointTwin)
    ]
