"""Variations of a workload, for scenarios that differ from a shipped manifest in one field.

Each returns a new Workload (descriptions are frozen); the scenario stays "this YAML, except
X", which is how a user would describe their own change.
"""

from __future__ import annotations

from dataclasses import replace

from tests.harness.workload import Container, EnvVar, Workload


def with_completions(workload: Workload, n: int) -> Workload:
    """n pods at once (completions = parallelism = n), and PEER_AGENT_PEERS to match."""
    jobs = tuple(replace(j, completions=n, parallelism=n) for j in workload.jobs)
    return with_env(replace(workload, jobs=jobs), "PEER_AGENT_PEERS", str(n), only_if_set=True)


def with_publish_not_ready(workload: Workload, flag: bool) -> Workload:
    services = tuple(replace(s, publish_not_ready_addresses=flag) for s in workload.services)
    return replace(workload, services=services)


def with_dns_policy(workload: Workload, policy: str) -> Workload:
    jobs = tuple(replace(j, template=replace(j.template, dns_policy=policy)) for j in workload.jobs)
    return replace(workload, jobs=jobs)


def with_backoff_limit(workload: Workload, limit: int) -> Workload:
    return replace(workload, jobs=tuple(replace(j, backoff_limit=limit) for j in workload.jobs))


def _set_env(container: Container, name: str, value: str, only_if_set: bool) -> Container:
    names = [e.name for e in container.env]
    if name in names:
        env = tuple(EnvVar(name, value=value) if e.name == name else e for e in container.env)
    elif only_if_set:
        return container
    else:
        env = (*container.env, EnvVar(name, value=value))
    return replace(container, env=env)


def with_env(workload: Workload, name: str, value: str, *, only_if_set: bool = False) -> Workload:
    """Set an env var in every container (only where it is already set, if only_if_set)."""
    jobs = []
    for job in workload.jobs:
        t = job.template
        template = replace(
            t,
            init_containers=tuple(_set_env(c, name, value, only_if_set) for c in t.init_containers),
            containers=tuple(_set_env(c, name, value, only_if_set) for c in t.containers),
        )
        jobs.append(replace(job, template=template))
    return replace(workload, jobs=tuple(jobs))


def with_args(workload: Workload, container: str, args: tuple[str, ...]) -> Workload:
    """Replace one container's args (the examples' way of choosing what runs)."""
    jobs = []
    for job in workload.jobs:
        t = job.template
        containers = tuple(
            replace(c, args=args) if c.name == container else c for c in t.containers
        )
        jobs.append(replace(job, template=replace(t, containers=containers)))
    return replace(workload, jobs=tuple(jobs))


def with_command(workload: Workload, container: str, command: tuple[str, ...]) -> Workload:
    """Replace one container's command (and drop its args): the image's entrypoint is not run."""
    jobs = []
    for job in workload.jobs:
        t = job.template
        containers = tuple(
            replace(c, command=command, args=()) if c.name == container else c for c in t.containers
        )
        jobs.append(replace(job, template=replace(t, containers=containers)))
    return replace(workload, jobs=tuple(jobs))
