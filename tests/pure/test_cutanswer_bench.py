"""The cut-answer bench's pods' addresses: at 300 pods its address for pod 255 was
127.93.0.256, which the DNS stub's answer thread could not parse, so the stub died and every
pod saw DNS time out (a harness failure that read as the agents')."""

from __future__ import annotations

import ipaddress

import pytest

from bench.cutanswer import pod_address

pytestmark = pytest.mark.timeout(30)


def test_every_pod_address_of_a_thousand_is_a_distinct_loopback_address() -> None:
    addresses = [ipaddress.ip_address(pod_address(i)) for i in range(1000)]
    assert len(set(addresses)) == 1000
    assert all(a.is_loopback for a in addresses)
