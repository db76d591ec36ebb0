"""``python -m agent`` and the ``peer-agent`` command: the CLI, started cheaply."""

from __future__ import annotations

import gc

__all__ = ["main"]


def main() -> int:
    """Run the CLI. The cyclic GC is off while the agent imports itself: a start-up allocates
    hundreds of thousands of long-lived objects (modules, classes, functions) and collections
    among them free nothing; they cost 3 of the 80 ms of CPU before the first DNS query. Frozen
    afterwards, they are never scanned again, by the barrier's collections either."""
    gc.disable()
    try:
        from agent.commands.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
