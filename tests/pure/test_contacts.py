"""Addresses as contacts report them must match addresses as DNS lists them."""

from __future__ import annotations

import pytest

from agent.io.reaching import plain as _plain

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("seen", "listed"),
    [
        ("::ffff:198.18.1.3", "198.18.1.3"),  # IPv4 peer on a dual-stack listener
        ("198.18.1.3", "198.18.1.3"),
        ("fd00::3", "fd00::3"),
        ("", ""),  # a peer gone before it was accepted
    ],
)
def test_ipv4_mapped_addresses_are_plain(seen: str, listed: str) -> None:
    assert _plain(seen) == listed
