"""The pure core: the agent's every decision, as events and ``now`` in, effects out.

No module here imports anyio, dns, socket, os, time, random or logging (the import-linter
contracts in ``pyproject.toml``); the I/O shell (``agent.io``) performs what it decides.
"""
