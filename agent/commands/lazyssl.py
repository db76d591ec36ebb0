"""``ssl`` loaded at its first use, not at the event loop's start: the CLI never speaks TLS.

asyncio and anyio's backend import ``ssl`` when ``anyio.run`` starts, and with it OpenSSL
(``_ssl`` and its libraries, built enums): about a tenth of the CPU from ``exec`` to the agent's
first DNS query, paid by every pod for nothing. In the CLI's own process only (never the Python
API's, whose caller may want TLS), just before its event loop starts:

- asyncio is imported seeing no ``ssl``, as it was written to run without one (its own TLS
  streams then raise "stdlib ssl module not available"; the agent opens none);
- ``ssl`` is then a module that loads the real one at the first look-up of any name in it, so
  anything that does use it later gets the real module, only later. anyio imports
  ``SSLContext`` from it for annotations only; that one name is a placeholder class.

Nothing changes if asyncio or ssl is already imported (the tests, which run the CLI in-process).
"""

from __future__ import annotations

import importlib
import sys
import types

__all__ = ["defer"]


class _Deferred(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        # The import system's own questions (``from ssl import X`` asks for __path__) are
        # answered from the module itself, without loading OpenSSL.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_load(self), name)


def _load(stub: _Deferred) -> types.ModuleType:
    if sys.modules.get("ssl") is stub:
        del sys.modules["ssl"]
    real = importlib.import_module("ssl")
    sys.modules["ssl"] = real
    vars(stub).update(vars(real))  # who holds the stub finds every name directly from now on
    return real


class _SSLContextPlaceholder:
    """What ``from ssl import SSLContext`` gets while OpenSSL is not loaded (anyio.streams.tls
    names it in annotations); ``ssl.SSLContext`` itself is the real class."""


def defer() -> None:
    """Before the CLI's event loop starts: asyncio without ``ssl``, ``ssl`` loaded when used."""
    if "ssl" in sys.modules or "asyncio" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # asyncio's `import ssl` fails
    try:
        import asyncio  # noqa: F401  # anyio.run imports it next anyway
    finally:
        stub = _Deferred("ssl", "ssl, loaded at its first use (agent.commands.lazyssl)")
        stub.SSLContext = _SSLContextPlaceholder  # type: ignore[attr-defined]
        sys.modules["ssl"] = stub
