"""The Jobs each cluster case runs, as the YAML a user would apply: peer-agent and the baselines.

Every tool gets the same Job (``example-job``, N pods at once, subdomain ``headless-svc``) and
differs only in its container, so the measured difference is the tool's:

- ``peer-agent``: ``peer-agent run -- true`` (the shipped seed example's shape, JSON logs so the
  bench can read when each agent started listening).
- ``seed``: the seed document's bash ping loop, unchanged but for its index list (``for i in 0 1
  2`` names N pods); needs ping and the pod's resolv.conf search list, as in the seed.
- ``nslookup``: the init loop training operators ship (``until nslookup NAME; do sleep 2; done``
  with busybox), once per peer, in the main container.
- ``wait-for-it``: Debian's ``wait-for-it NAME:PORT -t 0`` once per peer, each pod serving its
  port with busybox ``nc -lk`` so it can be waited for.

The baselines' Service publishes addresses as the seed's does (only Ready pods); peer-agent's
sets ``publishNotReadyAddresses`` as every manifest we ship does.
"""

from __future__ import annotations

from tests.harness.workload import Workload, parse

__all__ = ["MARK", "TOOLS", "job", "script"]

TOOLS = ("peer-agent", "seed", "nslookup", "wait-for-it")
WAIT_PORT = 29500  # what wait-for-it waits for (a typical MASTER_PORT)
MARK = "bench-released"
# After the wait, every tool's "workload" logs when it began and runs for HOLD seconds. A real
# workload runs for minutes; without it, the seed's loop and the nslookup loop deadlock: the
# last pod leaves (and drops out of DNS) before the others' next poll sees it (the early-exit
# race peer-agent's barrier exists to prevent), and there would be nothing to time.
HOLD = 3
WORKLOAD = f'echo "{MARK} $(date +%s.%N)"; sleep {HOLD}'


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def script(tool: str, n: int, *, workload: str = WORKLOAD) -> str:
    """The container's shell script for a baseline tool, then ``workload``."""
    indices = " ".join(str(i) for i in range(n))
    if tool == "seed":  # the seed's text, whitespace included
        return (
            f"""for i in {indices}
do
  gotStatus="-1"
  wantStatus="0"
  while [ $gotStatus -ne $wantStatus ]
  do
    ping -c 1 example-job-${{i}}.headless-svc > /dev/null 2>&1
    gotStatus=$?
    if [ $gotStatus -ne $wantStatus ]; then
      echo "Failed to ping pod example-job-${{i}}.headless-svc, retrying in 1 second..."
      sleep 1
    fi
  done
  echo "Successfully pinged pod: example-job-${{i}}.headless-svc"
done
"""
            + workload
        )
    if tool == "nslookup":
        return (
            f"""for i in {indices}
do
  until nslookup example-job-$i.headless-svc; do echo waiting for example-job-$i; sleep 2; done
done
"""
            + workload
        )
    if tool == "wait-for-it":
        return f"""busybox nc -ll -p {WAIT_PORT} -e true &
for i in {indices}
do
  wait-for-it -q example-job-$i.headless-svc:{WAIT_PORT} -t 0
done
{workload}
kill %1"""
    raise ValueError(tool)


def job(
    tool: str, n: int, *, timeout: float = 120.0, cpu: str | None = None, driver: str = "auto"
) -> Workload:
    """The Service and Indexed Job of ``n`` pods for ``tool``; ``cpu``: every pod's
    ``resources.limits.cpu`` (e.g. ``100m``), as a LimitRange default would set it."""
    if tool == "peer-agent":
        service_extra = """  publishNotReadyAddresses: true
  ports:
    - name: peer-agent
      port: 29300
"""
        container = f"""- name: example-workload
  image: peer-agent
  args: [run, --, sh, -c, '{WORKLOAD}']
  env:
  - name: PEER_AGENT_PEERS
    value: "{n}"
  - name: PEER_AGENT_TIMEOUT
    value: "{timeout:g}s"
  - name: PEER_AGENT_LOG_FORMAT
    value: json
  - name: PEER_AGENT_DRIVER
    value: {driver}
  - name: PEER_AGENT_JOB_UID
    valueFrom:
      fieldRef:
        fieldPath: metadata.labels['batch.kubernetes.io/controller-uid']"""
    else:
        service_extra = ""
        image = {"seed": "bash", "nslookup": "busybox", "wait-for-it": "bash"}[tool]
        shell = "sh" if image == "busybox" else "bash"
        container = f"""- name: example-workload
  image: {image}
  command:
  - {shell}
  - -c
  - |
{_indent(script(tool, n), 4)}"""
    if cpu is not None:
        container += f'\n  resources:\n    limits:\n      cpu: "{cpu}"'
    return parse(
        f"""apiVersion: v1
kind: Service
metadata:
  name: headless-svc
spec:
  clusterIP: None
  selector:
    job-name: example-job
{service_extra}---
apiVersion: batch/v1
kind: Job
metadata:
  name: example-job
spec:
  completions: {n}
  parallelism: {n}
  completionMode: Indexed
  template:
    spec:
      subdomain: headless-svc
      restartPolicy: Never
      containers:
{_indent(container, 6)}
"""
    )
