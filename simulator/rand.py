"""Counter-based randomness: every draw is a pure function of (seed, key, index).

A draw never depends on how many draws came before it, so a meter's readings do
not depend on the other meters, on the run's start time or on which faults are
enabled, and the same seed always gives the same park.
"""

from __future__ import annotations

import hashlib

_MASK = (1 << 64) - 1
_TWO_64 = float(1 << 64)


def mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def key(seed: int, *parts: str | int) -> int:
    """A stream key from a seed and names (meter id, purpose); computed once, not per draw."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def unit(stream: int, index: int) -> float:
    """Uniform in [0, 1) for draw `index` of `stream`."""
    return mix(stream ^ mix(index & _MASK)) / _TWO_64


def centred(stream: int, index: int) -> float:
    """Roughly normal, mean 0, standard deviation 1 (sum of four uniforms, rescaled)."""
    base = mix(stream ^ mix(index & _MASK))
    total = 0.0
    for shift in (0, 16, 32, 48):
        total += ((base >> shift) & 0xFFFF) / 65536.0
    return (total - 2.0) * 1.7320508075688772  # var of the sum is 4/12
