"""Simulation of peer-agent clusters over the real pure cores (no I/O, no real clock)."""
