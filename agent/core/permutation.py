"""A keyed pseudo-random permutation of ``[0, n)``, computed one element at a time.

Every pod of a Job must draw the same "random" order of the Job's indices (the chords of
``agent.core.graph``) without talking, and without a table of ``n`` entries (a pod of a
100,000-pod Job asks for a few dozen elements, not the whole order). A Feistel network is a
bijection of ``b``-bit words whatever its round function, and so is its inverse; cycle-walking
(apply it again while the result is ``>= n``) turns the bijection of ``[0, 2**b)`` into one of
``[0, n)``. The network is unbalanced as FF1's (NIST SP 800-38G) is: halves of ``b // 2`` and
``b - b // 2`` bits, alternating, so ``2**b < 2 n`` and a walk takes under two steps on average
(a balanced network over the next even number of bits would need up to four).

The key is derived with BLAKE2b from the caller's key (the Job's uid); the rounds themselves mix
with the SplitMix64 finaliser, a bijective 64-bit mixer, because a BLAKE2b call per round costs
twice as much in CPython and nothing here is secret: the order has to look random to the
network's failures, not to an adversary (the uid is a label any pod can read).

Pure: no I/O; ``hashlib`` only (imported when a permutation is made, not at start).
"""

from __future__ import annotations

__all__ = ["KeyedPermutation"]

#: Luby-Rackoff: four rounds of a pseudo-random function make a pseudo-random permutation (an
#: even number, so each half ends as wide as it began)
ROUNDS = 4
_WORD = (1 << 64) - 1
# SplitMix64's finaliser, inlined in both directions below (a call per round is a fifth of the
# cost): z ^= z >> 30; z *= _M1; z ^= z >> 27; z *= _M2; z ^= z >> 31, all mod 2**64. Every
# input bit moves about half the output bits, and it is a bijection of 64-bit words.
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_PERSON = b"peer-agent/perm"  # BLAKE2b's personalisation: these keys are for nothing else


def _round_keys(key: bytes, stream: int) -> tuple[int, ...]:
    import hashlib  # OpenSSL's hashes load with it (~1.5 ms): only a sparse graph needs them

    digest = hashlib.blake2b(
        stream.to_bytes(8, "big") + key, digest_size=8 * ROUNDS, person=_PERSON
    ).digest()
    return tuple(int.from_bytes(digest[8 * r : 8 * r + 8], "big") for r in range(ROUNDS))


class KeyedPermutation:
    """A bijection of ``[0, n)`` drawn by ``(key, stream)``: ``forward`` and ``inverse`` in O(1)
    expected time and memory, whatever ``n``. ``stream`` draws independent permutations from
    one key (one per random ring of the graph)."""

    __slots__ = ("_low_bits", "_rounds", "n")

    def __init__(self, n: int, key: bytes, stream: int = 0) -> None:
        if n < 1:
            raise ValueError(f"a permutation of [0, {n}) has nothing to permute")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        self._low_bits = bits - bits // 2
        keys = _round_keys(key, stream)
        # round r rewrites the half that then has ``bits // 2`` bits (r even) or the other
        # half (r odd), so widths alternate as in FF1; each round is (key, mask of its width)
        widths = (bits // 2, self._low_bits)
        self._rounds = tuple((k, (1 << widths[r & 1]) - 1) for r, k in enumerate(keys))

    def forward(self, x: int) -> int:
        """The element at position ``x`` (cycle-walking: ends, since ``x < n`` is on the
        cycle of the word permutation that contains it)."""
        self._check(x)
        y = self._encrypt(x)
        while y >= self.n:
            y = self._encrypt(y)
        return y

    def inverse(self, y: int) -> int:
        """The position of element ``y``: ``forward(inverse(y)) == y``."""
        self._check(y)
        x = self._decrypt(y)
        while x >= self.n:
            x = self._decrypt(x)
        return x

    def _check(self, x: int) -> None:
        if not 0 <= x < self.n:
            raise ValueError(f"{x} is outside [0, {self.n})")

    def _encrypt(self, x: int) -> int:
        # (a, b) = (high, low) bits; a round sets (a, b) = (b, a XOR F(b XOR key) & mask)
        a, b = x >> self._low_bits, x & ((1 << self._low_bits) - 1)
        for k, mask in self._rounds:
            z = b ^ k
            z = (z ^ (z >> 30)) * _M1 & _WORD
            z = (z ^ (z >> 27)) * _M2 & _WORD
            a, b = b, a ^ ((z ^ (z >> 31)) & mask)
        return (a << self._low_bits) | b

    def _decrypt(self, y: int) -> int:
        a, b = y >> self._low_bits, y & ((1 << self._low_bits) - 1)
        for k, mask in reversed(self._rounds):  # each round undone: (a, b) = (b XOR F(a), a)
            z = a ^ k
            z = (z ^ (z >> 30)) * _M1 & _WORD
            z = (z ^ (z >> 27)) * _M2 & _WORD
            a, b = b ^ ((z ^ (z >> 31)) & mask), a
        return (a << self._low_bits) | b
