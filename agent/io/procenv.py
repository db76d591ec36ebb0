"""This process's environment as other processes read it (``/proc/<pid>/environ``), scrubbed.

``/proc/<pid>/environ`` shows the strings the process was started with, on its own stack between
``env_start`` and ``env_end`` (fields 50 and 51 of ``/proc/<pid>/stat``). Deleting a variable
(``os.environ``, ``unsetenv``) leaves those bytes as they are, so a child that reads its parent's
environment (any process of the same user may) still finds a secret there: the workload of
``run --exit-barrier``, whose parent the agent stays. :func:`scrub` overwrites the value in place.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["scrub"]

_ENV_START = 50 - 3  # stat(5)'s field number, counted from the first field after "(comm)"


def scrub(name: str) -> bool:
    """Remove ``name`` from this process's environment, ``/proc/self/environ`` included (its
    value overwritten with NUL bytes); whether it was there. OSError when ``/proc`` cannot say
    where the environment is (then only ``os.environ`` forgot it)."""
    os.environ.pop(name, None)
    with open("/proc/self/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    try:
        start, end = int(fields[_ENV_START]), int(fields[_ENV_START + 1])
    except (IndexError, ValueError):
        raise OSError(f"/proc/self/stat has no env_start/env_end: {fields!r:.80}") from None
    with open("/proc/self/environ", "rb") as environ:
        strings = environ.read()
    if end - start != len(strings):  # not where the strings are: touch nothing
        raise OSError("/proc/self/stat: env_start..env_end is not /proc/self/environ's size")
    key, offset, found = name.encode() + b"=", start, False
    for entry in strings.split(b"\0"):
        value_at, length = offset + len(key), len(entry) - len(key)
        ours = entry.startswith(key) and length > 0 and value_at + length <= end
        # the bytes at that address are the entry /proc showed: checked before the write
        if ours and ctypes.string_at(offset, len(entry)) == entry:
            ctypes.memset(value_at, 0, length)
            found = True
        offset += len(entry) + 1
    return found
