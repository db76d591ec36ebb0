"""Peers listed in a file (``--peers-from``): hostfiles as launchers read them (MPI Operator's
``/etc/mpi/hostfile``: Open MPI ``host slots=N``, Intel MPI and MPICH ``host:N``; Volcano's
``/etc/volcano/<task>.host``: one ``host.subdomain`` a line; or a plain list), how a listed name
becomes an absolute one, and which line is this pod.

Pure: text in, hosts out.
"""

from __future__ import annotations

import re

from agent.topology.inputs import OPT, Derived, Inputs
from agent.topology.marks import volcano_hosts
from agent.topology.model import Listed, is_dns_label, is_dns_subdomain
from agent.topology.sources import Origin, Source, Sources
from agent.values import value

__all__ = ["Host", "hostfile", "parse_hostfile", "qualify"]

#: compiled at its first use (``re`` caches it): hostfile and Volcano pods only
_SLOTS = r"^(?:slots|max_slots|max-slots)=(\d+)$"


@value
class Host:
    name: str  # lower case; a trailing dot kept: the name is absolute
    slots: int | None = None


def _slots(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def parse_hostfile(text: str) -> tuple[list[Host], list[str]]:
    """The hosts in file order, each once, and a problem per line that is not a host."""
    hosts: list[Host] = []
    seen: set[str] = set()
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        name, _, count = fields[0].lower().partition(":")
        slots = _slots(count) if count else None
        bad = bool(count) and slots is None
        for extra in fields[1:]:
            match = re.match(_SLOTS, extra.lower())
            if match and extra.lower().startswith("slots"):
                slots = _slots(match.group(1))
                bad = bad or slots is None
            elif not match:
                bad = True
        if bad or not is_dns_subdomain(name.rstrip(".")):
            problems.append(f"line {number}: not 'HOST', 'HOST slots=N' or 'HOST:N': {raw!r}")
            continue
        if name.rstrip(".") not in seen:
            seen.add(name.rstrip("."))
            hosts.append(Host(name, slots))
    return hosts, problems


def qualify(name: str, *, service: str | None, namespace: str, zone: str) -> str:
    """The absolute name (without the trailing dot) a pod's search list would find first.

    ``host`` (with ``--service``: ``host.<service>``), ``host.<subdomain>`` (Volcano),
    ``host.<subdomain>.<ns>`` (LWS), ``host.<subdomain>.<ns>.svc`` (MPI Operator) gain the rest of
    ``<ns>.svc.<zone>``; an absolute name or one already ending in ``svc.<zone>`` is kept.
    """
    if name.endswith("."):
        return name[:-1]
    if name.endswith(f".svc.{zone}"):
        return name
    parts = name.split(".")
    if parts[-1] == "svc":
        return f"{name}.{zone}"
    if len(parts) == 1:
        return f"{name}.{service}.{namespace}.svc.{zone}" if service else name
    if len(parts) == 2:
        return f"{name}.{namespace}.svc.{zone}"
    if len(parts) == 3:
        return f"{name}.svc.{zone}"
    return name


def hostfile(i: Inputs, namespace: str | None) -> Derived | None:
    """The peers of ``--peers-from``, else of the Volcano task list naming this pod."""
    opt = OPT["peers_from"]
    path, also = i.get("peers_from"), ""
    if path is not None:
        read = i.facts.file(path)
        if read.data is None:
            i.p.add(opt, f"cannot read {path!r}: {read.error}")
            return None
        text = read.data.decode("utf-8", "replace")
    elif (found := volcano_hosts(i.environ, i.hostname)) is not None:
        path = also = found[0]
        text = found[1].replace(",", "\n")
    else:
        i.p.add(opt, "required under --topology hostfile: the file listing the peers")
        return None
    hosts, problems = parse_hostfile(text)
    for problem in problems[:5]:
        i.p.add(opt, f"{path}: {problem}", also=also)
    if not hosts and not problems:
        i.p.add(opt, f"{path!r} lists no hosts", also=also)
    service = i.get("service")
    if namespace is None or problems or not hosts:
        return None
    if any("." not in h.name for h in hosts) and service is None:
        i.p.add(
            opt,
            f"{path!r} lists bare hostnames: give their Service with --service / "
            "PEER_AGENT_SERVICE",
        )
        return None
    names = tuple(qualify(h.name, service=service, namespace=namespace, zone=i.zone) for h in hosts)
    own = i.entry.fqdn if i.entry else None
    index = next(
        (n for n, name in enumerate(names) if name == own or name.split(".")[0] == i.hostname),
        None,
    )
    if i.get("peers") is not None and i.get("peers") != str(len(names)):
        i.p.add(OPT["peers"], f"{path!r} lists {len(names)} hosts, not {i.get('peers')}")
        return None
    shared = None if service else _one_service(names, f"{namespace}.svc.{i.zone}")
    named = next((n.split(".")[1] for n in names if n.count(".") > 1), None)
    gave = _Found(index is not None, shared is not None, named is not None)
    sources = _sources(i, path, gave, variable=bool(also))
    job = i.get("job_name") or named or "hosts"
    return Derived(job, Listed(names), service or shared, namespace, len(names), index, sources)


@value
class _Found:
    """What the listed names gave: this pod's line, the Service they share, the job's name."""

    line: bool
    service: bool
    job: bool


def _sources(i: Inputs, path: str, found: _Found, *, variable: bool) -> Sources:
    """Where a listed topology's values came from: the file (or a controller's variable), the
    names in it, or the options."""
    in_names = Source(Origin.DERIVED, f"the names in {path}")
    return Sources(
        peers=Source(Origin.VARIABLE if variable else Origin.POD_FILE, path),
        index=Source(Origin.DERIVED, f"this pod's line in {path}") if found.line else None,
        job=i.source("job_name") or (in_names if found.job else Source(Origin.DEFAULT, "hosts")),
        service=i.source("service") or (in_names if found.service else None),
    )


def _one_service(names: tuple[str, ...], base: str) -> str | None:
    """The headless Service every listed pod is published in, when they share one: asking it
    finds them all in one query (bulk discovery), as for the other topologies."""
    services = {n[: -len(base) - 1].partition(".")[2] for n in names if n.endswith(f".{base}")}
    if len(services) == 1 and all(n.endswith(f".{base}") for n in names):
        (service,) = services
        return service if is_dns_label(service) else None
    return None
