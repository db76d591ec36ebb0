"""``agent.io.lines.LineReader``: lines and counts read off a stream however its bytes arrive
(the agent's messages, and TCP DNS answers), as anyio's buffered stream reads them."""

from __future__ import annotations

import itertools

import anyio
import anyio.abc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.io.lines import LineReader

pytestmark = pytest.mark.timeout(30)


class _Chunks(anyio.abc.ByteReceiveStream):
    """A stream that yields the given chunks, then ends."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)
        self.reads = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.reads += 1
        if not self._chunks:
            raise anyio.EndOfStream
        return self._chunks.pop(0)

    async def aclose(self) -> None:
        self._chunks = []


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@given(
    st.lists(st.binary(max_size=20).filter(lambda b: b"\n" not in b), min_size=1, max_size=5),
    st.lists(st.integers(0, 200), max_size=8),
)
def test_lines_come_out_whole_however_the_bytes_were_cut(
    lines: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(line + b"\n" for line in lines) + b"tail"

    async def read() -> tuple[list[bytes], bytes]:
        reader = LineReader(_Chunks(_cut(data, cuts)))
        got = [await reader.receive_until(b"\n", 64) for _ in lines]
        return got, await _rest(reader)

    got, rest = anyio.run(read)
    assert got == lines
    assert rest == b"tail"


async def _rest(reader: LineReader) -> bytes:
    out = b""
    while True:
        try:
            out += await reader.receive_exactly(1)
        except anyio.IncompleteRead:
            return out


@pytest.mark.asyncio
async def test_a_line_longer_than_the_bound_is_refused_after_reading_no_further() -> None:
    stream = _Chunks([b"x" * 10, b"x" * 10, b"\n"])
    with pytest.raises(anyio.DelimiterNotFound):
        await LineReader(stream).receive_until(b"\n", 15)
    assert stream.reads == 2


@pytest.mark.asyncio
async def test_a_stream_that_ends_mid_line_or_mid_count_is_an_incomplete_read() -> None:
    with pytest.raises(anyio.IncompleteRead):
        await LineReader(_Chunks([b"half a li"])).receive_until(b"\n", 100)
    with pytest.raises(anyio.IncompleteRead):
        await LineReader(_Chunks([b"\x00"])).receive_exactly(2)


@pytest.mark.asyncio
async def test_a_count_then_a_message_as_dns_over_tcp_sends_them() -> None:
    reader = LineReader(_Chunks([b"\x00", b"\x05hel", b"lo!"]))
    assert await reader.receive_exactly(2) == b"\x00\x05"
    assert await reader.receive_exactly(5) == b"hello"
    assert reader.buffer == b"!"
