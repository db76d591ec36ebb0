"""EndpointSlice controller + CoreDNS `kubernetes` plugin: which pod names DNS answers, when.

A pod is in the Service's endpoints while it has an address and has not ended, and, unless the
Service sets `publishNotReadyAddresses`, only while it is Ready and not terminating. Each
pod's membership is kept as a timeline of (time, in/out); DNS shows the state as it was
`delay` seconds ago, which models the EndpointSlice / informer lag between a pod changing and
CoreDNS answering for it. The records follow the DNS spec for headless Services:
`<hostname>.<svc>.<ns>.svc.<zone>` A per endpoint whose pod's subdomain is the Service,
`<svc>.<ns>.svc.<zone>` A with every endpoint, `_<port>._<proto>.<svc>...` SRV per named port
(NXDOMAIN when empty).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.harness.clusterdns import ClusterDNS
from tests.harness.pod import Pod
from tests.harness.workload import Job, Service

Records = dict[str, tuple[str, ...]]


@dataclass
class _Member:
    pod: Pod
    times: list[float] = field(default_factory=list)
    states: list[bool] = field(default_factory=list)

    def at(self, when: float) -> bool:
        i = bisect.bisect_right(self.times, when)
        return self.states[i - 1] if i else False


def in_endpoints(pod: Pod, service: Service) -> bool:
    if not pod.started or pod.ended:
        return False
    if service.publish_not_ready_addresses:
        return True
    return pod.ready and not pod.terminating


def _target_port(service_port: int | str, job: Job) -> int | None:
    if isinstance(service_port, int):
        return service_port
    template = job.template
    for container in (*template.init_containers, *template.containers):
        for name, number in container.ports:
            if name == service_port:
                return number
    return None  # a named targetPort nobody declares: Kubernetes publishes no port


class Endpoints:
    """Membership timelines of one Service's pods, and the DNS records they imply."""

    def __init__(self, dns: ClusterDNS, service: Service, job: Job, delay: float) -> None:
        self.dns = dns
        self.service = service
        self.job = job
        self.delay = delay
        self.domain = f"{service.name}.{service.namespace}.svc.{dns.zone}"
        self._members: dict[str, _Member] = {}
        self._applied: Records = {}
        self._horizon = float("-inf")  # changes up to this time are in DNS
        self._lock = threading.Lock()

    def observe(self, pod: Pod, now: float) -> None:
        """Record the pod's membership now (called on every pod change)."""
        state = in_endpoints(pod, self.service)
        with self._lock:
            member = self._members.setdefault(pod.name, _Member(pod))
            if not member.states or member.states[-1] != state:
                member.times.append(now)
                member.states.append(state)

    def next_change(self) -> float | None:
        """When DNS must next be updated: for the first change the last sync did not cover
        (possibly already due)."""
        with self._lock:
            pending = [t for m in self._members.values() for t in m.times if t > self._horizon]
        return min(pending) + self.delay if pending else None

    def published(self, now: float) -> list[Pod]:
        horizon = now - self.delay
        with self._lock:
            return [m.pod for m in self._members.values() if m.at(horizon)]

    def desired(self, pods: Sequence[Pod]) -> Records:
        if not self.service.headless:
            return {}
        records: dict[str, list[str]] = {}
        for pod in sorted(pods, key=lambda p: (p.index, p.name)):
            fqdn = f"{pod.hostname}.{self.domain}."
            # An IPv6-only cluster publishes AAAA records alone, as Kubernetes does.
            rdtype = "AAAA" if ":" in pod.address else "A"
            # A pod has a name under the Service only when its subdomain names the Service.
            if pod.spec.job.template.subdomain == self.service.name:
                records.setdefault(fqdn, []).append(f"{rdtype} {pod.address}")
            records.setdefault(f"{self.domain}.", []).append(f"{rdtype} {pod.address}")
            for port in self.service.ports:
                number = _target_port(port.target_port, pod.spec.job)
                if port.name and number is not None:
                    srv = f"_{port.name}._{port.protocol.lower()}.{self.domain}."
                    records.setdefault(srv, []).append(f"SRV 0 100 {number} {fqdn}")
        return {name: tuple(dict.fromkeys(rds)) for name, rds in records.items()}

    def sync(self, now: float) -> None:
        """Make DNS answer what the endpoints were `delay` seconds ago."""
        self._horizon = now - self.delay
        want = self.desired(self.published(now))
        changed = {n: rds for n, rds in want.items() if self._applied.get(n) != rds}
        gone = [n for n in self._applied if n not in want]
        if changed:
            self.dns.set_many(changed)
        if gone:
            self.dns.remove_many(gone)
        self._applied = want

    def withdraw_all(self) -> None:
        if self._applied:
            self.dns.remove_many(list(self._applied))
        self._applied = {}
