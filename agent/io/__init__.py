"""The I/O shell: anyio tasks that perform the core's effects and feed it what happened.

It decides nothing about the barrier; every decision is ``agent.core.agent``'s.
"""
