"""Test support for several test directories: servers and clients that misbehave on purpose."""
