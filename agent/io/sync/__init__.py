"""The second driver: the same pure core's effects performed on one ``selectors`` loop.

No asyncio and no anyio (whose imports and event loop are most of a short-lived pod's CPU): a
few coroutines of its own (``loop``), run by a loop whose select timeout is the core's next
wake-up. It serves ``wait`` and ``run``'s start barrier with the ``tcp`` probe; everything
else keeps the anyio driver (``agent.io.runner``); ``agent.commands.drivers`` picks. The
protocol's decisions (handshakes, DNS answers) are the very code the anyio driver runs.
"""
