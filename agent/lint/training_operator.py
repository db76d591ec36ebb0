"""`peer-agent lint` rules for the Kubeflow Training Operator's v1 jobs (``kubeflow.org/v1``
PyTorchJob, TFJob, XGBoostJob, JAXJob, PaddleJob).

What the operator does decides what can go wrong (``agent.topology.training_operator``): pods
and per-replica Services ``<job>-<type>-<i>``, published only once Ready, and the pod count and
rank in variables it puts into containers, never into init containers. Pure, and as forgiving
of malformed input as :mod:`agent.lint.rules`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.lint.common import Agent, Report, agents_in, as_int, long_name
from agent.lint.finding import Finding, as_map

__all__ = ["REPLICA_SPECS", "lint_training_operator"]

#: kind → the field holding its replica specs
REPLICA_SPECS = {
    "PyTorchJob": "pytorchReplicaSpecs",
    "TFJob": "tfReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "JAXJob": "jaxReplicaSpecs",
    "PaddleJob": "paddleReplicaSpecs",
}


def lint_training_operator(
    kind: str, name: str, spec: dict[Any, Any], report: Report
) -> Iterator[Finding]:
    field = REPLICA_SPECS[kind]
    replicas = {str(t): as_map(r) for t, r in as_map(spec.get(field)).items()}
    total = sum(as_int(r.get("replicas"), 1) for r in replicas.values())
    agents: dict[str, list[Agent]] = {}
    for rtype, rspec in replicas.items():
        last = f"{name}-{rtype.lower()}-{as_int(rspec.get('replicas'), 1) - 1}"
        yield from long_name(
            report, "metadata.name", last, f"the last {rtype} (a Service name too)"
        )
        pod = as_map(as_map(rspec.get("template")).get("spec"))
        agents[rtype] = agents_in(pod, f"spec.{field}.{rtype}.template.spec")
    if not any(agents.values()):
        return
    yield from _every_replica_type(agents, f"spec.{field}", report)
    yield from _unsupported(kind, spec, replicas, report)
    for agent in (a for found in agents.values() for a in found):
        yield from _agent(kind, agent, total, report)


def _every_replica_type(
    agents: dict[str, list[Agent]], field: str, report: Report
) -> Iterator[Finding]:
    running = sorted(t for t, found in agents.items() if found)
    for rtype in sorted(t for t, found in agents.items() if not found):
        yield report(
            f"{field}.{rtype}.template.spec.containers",
            f"runs no peer-agent, but {', '.join(running)} does: the barrier counts every pod "
            f"of the job, so it waits for the {rtype} pods for ever",
            f"run peer-agent in the {rtype} pods too, or in none",
        )


def _unsupported(
    kind: str, spec: dict[Any, Any], replicas: dict[str, dict[Any, Any]], report: Report
) -> Iterator[Finding]:
    if kind == "PaddleJob" and "Master" in replicas:
        yield report(
            "spec.paddleReplicaSpecs.Master",
            "makes a parameter-server PaddleJob, whose pods are not told how many servers "
            "there are: peer-agent cannot name the peers",
            "use a collective PaddleJob (Worker only), or no peer-agent",
        )
    if kind == "TFJob" and spec.get("enableDynamicWorker") is True:
        yield report(
            "spec.enableDynamicWorker",
            "is true: TF_CONFIG then lists only the pod's own part of the cluster, so "
            "peer-agent cannot name the peers",
            "remove it",
        )
    elastic = as_map(spec.get("elasticPolicy"))
    low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
    if kind == "PyTorchJob" and low is not None and high is not None and low != high:
        yield report(
            "spec.elasticPolicy",
            f"lets the workers number {low} to {high} (PET_NNODES={low}:{high}): a barrier "
            "needs one count; peer-agent fails unless it is given PEER_AGENT_PEERS",
            "set minReplicas = maxReplicas, or PEER_AGENT_PEERS to the Worker replicas",
            "warning",
        )


def _agent(kind: str, agent: Agent, total: int, report: Report) -> Iterator[Finding]:
    if agent.init:
        yield report(
            agent.path,
            "runs peer-agent in an init container: the operator puts its variables (the pod "
            "count, the rank) into containers only, and its per-replica Services publish a pod "
            "only once it is Ready, which it is not while an init container runs: the barrier "
            "waits for ever",
            "run it in the training container: peer-agent run --exit-barrier -- <command>",
        )
        return
    peers, where = agent.use.setting("--peers", "PEER_AGENT_PEERS")
    if peers is not None and peers != str(total):
        yield report(
            f"{agent.path}.{where}",
            f"says {peers} peers, but the job has {total} pods",
            "remove it: the operator gives the pod count",
        )
    exit_barrier, _ = agent.use.setting("--exit-barrier", "PEER_AGENT_EXIT_BARRIER")
    leaves_together = "--exit-barrier" in agent.use.opts or exit_barrier == "true"
    if kind == "PyTorchJob" and agent.use.subcommand == "run" and not leaves_together:
        yield report(
            f"{agent.path}.args",
            "runs without --exit-barrier: torchrun's store lives on the master, and a pod that "
            "completes leaves DNS at once, so the last pods' final exchanges can fail",
            "peer-agent run --exit-barrier -- torchrun ...",
            "warning",
        )
