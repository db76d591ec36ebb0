"""``python -m agent`` is the same program as ``peer-agent``."""

from agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
