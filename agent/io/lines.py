"""Reading a byte stream a line (or an exact count of bytes) at a time, with what was read past
it kept for the next read: what anyio's ``BufferedByteReceiveStream`` does for the agent, whose
module (a dataclass, and ``typing_extensions``) cost every start 3 million instructions."""

from __future__ import annotations

import anyio
import anyio.abc

__all__ = ["LineReader"]


class LineReader:
    __slots__ = ("_buffer", "_stream")

    def __init__(self, stream: anyio.abc.ByteReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    @property
    def buffer(self) -> bytes:
        """What was read past the last line or count returned."""
        return bytes(self._buffer)

    async def receive_until(self, delimiter: bytes, max_bytes: int) -> bytes:
        """The bytes before the next ``delimiter`` (which is consumed too). DelimiterNotFound
        once ``max_bytes`` are buffered without it; IncompleteRead if the stream ends first."""
        offset = 0
        while (found := self._buffer.find(delimiter, offset)) < 0:
            if len(self._buffer) >= max_bytes:
                raise anyio.DelimiterNotFound(max_bytes)
            offset = max(len(self._buffer) - len(delimiter) + 1, 0)  # not scanned twice
            self._buffer += await self._more()
        line = bytes(self._buffer[:found])
        del self._buffer[: found + len(delimiter)]
        return line

    async def receive_exactly(self, nbytes: int) -> bytes:
        """The next ``nbytes`` bytes; IncompleteRead if the stream ends first."""
        while len(self._buffer) < nbytes:
            self._buffer += await self._more()
        data = bytes(self._buffer[:nbytes])
        del self._buffer[:nbytes]
        return data

    async def _more(self) -> bytes:
        try:
            return await self._stream.receive()
        except anyio.EndOfStream:
            raise anyio.IncompleteRead from None
