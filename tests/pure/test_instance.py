"""Instance ids and their order (pure): field by field, start time first."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.protocol.instance import instance_id, is_instance, newer, order

pytestmark = pytest.mark.timeout(30)

_NS = st.integers(min_value=0, max_value=2**64 - 1)
_TAG = st.integers(min_value=0, max_value=2**32 - 1)


@given(_NS, _TAG, _NS, _TAG)
def test_the_later_start_is_newer_whatever_the_tags(
    started_a: int, tag_a: int, started_b: int, tag_b: int
) -> None:
    """The start time decides; the tag only breaks a tie; an id is never newer than itself."""
    a, b = instance_id(started_a, tag_a), instance_id(started_b, tag_b)
    assert is_instance(a)
    assert newer(a, b) == ((started_a, tag_a) > (started_b, tag_b))
    assert not (newer(a, b) and newer(b, a))
    assert not newer(a, a)


def test_an_oom_killed_instance_is_older_than_its_restart() -> None:
    """Issue 21 hole 4: an exit code once rode at the end of the id (``…x137`` against
    ``…x0``), and ids were ordered by length first: the dead instance came out newer."""
    dead, restarted = instance_id(1_000, 0xFFFFFFFF), instance_id(2_000, 0)
    assert newer(restarted, dead) and not newer(dead, restarted)


def test_the_empty_id_is_older_than_any() -> None:
    assert newer(instance_id(0, 0), "") and not newer("", instance_id(0, 0))
    assert order("") < order(instance_id(0, 0))


@pytest.mark.parametrize(
    "text", ["f" * 16, "f" * 32, "0" * 16 + "-" + "0" * 8 + "x137", "F" * 16 + "-" + "F" * 8]
)
def test_anything_else_is_not_an_instance(text: str) -> None:
    """The wire refuses these (``tests/pure/test_wire.py``); asked anyway, order says so."""
    with pytest.raises(ValueError):
        order(text)


_ID_TEXT = st.text(alphabet="0123456789abcdefABCDEF-x\n٣", max_size=27) | st.builds(
    instance_id, _NS, _TAG
)


@given(_ID_TEXT)
def test_an_instance_id_is_exactly_what_its_pattern_says(text: str) -> None:
    """``is_instance`` tests characters (a compiled pattern cost every start 0.8 million
    instructions); it accepts exactly the texts the pattern matches whole."""
    assert is_instance(text) == bool(re.fullmatch(r"([0-9a-f]{16})-([0-9a-f]{8})", text))


@pytest.mark.parametrize("text", ["f" * 16, "F" * 16 + "-" + "F" * 8])
def test_an_id_asked_again_is_ordered_as_the_first_time(text: str) -> None:
    """``order`` keeps the ids it has parsed (a hello's id is compared again and again): a
    kept id orders as a fresh parse does, and a bad one raises each time it is asked."""
    good = instance_id(5, 7)
    assert order(good) == order(good) == (5, 7)
    for _ in range(2):
        with pytest.raises(ValueError):
            order(text)
