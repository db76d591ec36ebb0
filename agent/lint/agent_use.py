"""How a container runs peer-agent, as far as its manifest tells (for `peer-agent lint`).

A container runs the agent when it sets ``PEER_AGENT_*`` variables (a workload image may bundle
the zipapp), or when its argv (the image's entrypoint when the image is peer-agent
and no command is given, else command + args, else a `sh -c` script among them) contains
`peer-agent`, `peer-agent.pyz` or `python -m agent`, followed by a subcommand that joins the
barrier. Copying the zipapp (`cp /opt/peer-agent/peer-agent.pyz ...`) is not running it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from agent.values import value

__all__ = ["AgentUse", "agent_use"]

PROGRAMS = frozenset({"peer-agent", "peer-agent.pyz"})
SUBCOMMANDS = frozenset({"run", "wait", "sidecar", "doctor"})


@value
class AgentUse:
    """The subcommand and the literal settings lint checks; the ``*_field`` say where they are."""

    subcommand: str  # "" when only PEER_AGENT_* variables show it (an image bundling the agent)
    peers: str | None
    peers_field: str
    #: PEER_AGENT_PEERS comes from valueFrom: present, but unknowable without the cluster.
    peers_dynamic: bool
    probe: str | None
    probe_field: str
    opts: tuple[str, ...] = ()
    env: tuple[tuple[str, dict[Any, Any]], ...] = ()

    def setting(self, flag: str, variable: str) -> tuple[str | None, str]:
        """The literal value of an option (the flag wins) and where it is; None when unset or
        not literal (valueFrom)."""
        value = _option(self.opts, flag)
        if value is not None:
            return value, "args"
        return _env_value(dict(self.env).get(variable))[0], f"env[{variable}]"

    def field_path(self, variable: str) -> str | None:
        """The Downward API fieldPath a variable is taken from, if it is."""
        ref = _map(_map(dict(self.env).get(variable)).get("valueFrom")).get("fieldRef")
        path = _map(ref).get("fieldPath")
        return path if isinstance(path, str) else None


def agent_use(container: dict[Any, Any]) -> AgentUse | None:
    env = {
        e["name"]: e
        for e in _list(container.get("env"))
        if isinstance(e, dict) and isinstance(e.get("name"), str)  # `name: []` is not a name
    }
    found = _invocation(container)
    if found is None and any(str(name).startswith("PEER_AGENT_") for name in env):
        found = "", []  # a workload image that bundles the zipapp and is configured for it
    if found is None:
        return None
    subcommand, opts = found
    peers, peers_field = _option(opts, "--peers"), "args"
    peers_dynamic = False
    if peers is None:
        peers, peers_dynamic = _env_value(env.get("PEER_AGENT_PEERS"))
        peers_field = "env[PEER_AGENT_PEERS]"
    probe, probe_field = _option(opts, "--probe"), "args"
    if probe is None:
        probe, _ = _env_value(env.get("PEER_AGENT_PROBE"))
        probe_field = "env[PEER_AGENT_PROBE]"
    return AgentUse(
        subcommand,
        peers,
        peers_field,
        peers_dynamic,
        probe,
        probe_field,
        tuple(opts),
        tuple((str(k), v) for k, v in env.items()),
    )


def _list(x: object) -> list[Any]:
    return x if isinstance(x, list) else []


def _map(x: object) -> dict[Any, Any]:
    return x if isinstance(x, dict) else {}


def _words(x: object) -> list[str]:
    return [w if isinstance(w, str) else str(w) for w in _list(x)]


def _invocation(container: dict[Any, Any]) -> tuple[str, list[str]] | None:
    command, args = _words(container.get("command")), _words(container.get("args"))
    image = container.get("image")
    if not command and isinstance(image, str) and _is_agent_image(image):
        argv = ["peer-agent", *args]  # the image's ENTRYPOINT is peer-agent
    else:
        argv = command + args
    found = _find(argv)
    for word in argv:
        if found is not None:
            break
        if any(ch.isspace() for ch in word):  # a shell script: `sh -c "... peer-agent wait"`
            found = _find(_shell_words(word))
    return found


def _find(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    for i, word in enumerate(argv):
        if word.rsplit("/", 1)[-1] in PROGRAMS:
            at = i + 1
        elif word == "-m" and argv[i + 1 : i + 2] == ["agent"]:
            at = i + 2
        else:
            continue
        if at < len(argv) and argv[at] in SUBCOMMANDS:
            rest = list(argv[at + 1 :])
            # In `run` mode everything after `--` is the workload's, not ours.
            return argv[at], rest[: rest.index("--")] if "--" in rest else rest
    return None


def _option(opts: Sequence[str], flag: str) -> str | None:
    value = None
    for i, word in enumerate(opts):  # the last one wins, as with argparse
        if word == flag and i + 1 < len(opts):
            value = opts[i + 1]
        elif word.startswith(flag + "="):
            value = word[len(flag) + 1 :]
    return value


def _env_value(entry: dict[Any, Any] | None) -> tuple[str | None, bool]:
    if entry is None:
        return None, False
    value = entry.get("value")
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value), False
    return None, "valueFrom" in entry


def _is_agent_image(image: str) -> bool:
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return repository == "peer-agent"


def _shell_words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # unbalanced quotes: whitespace is good enough to spot the agent
        return text.split()
