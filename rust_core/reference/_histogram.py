"""Reference log-bucketed histogram (same buckets and bytes as the Rust one)."""

from __future__ import annotations

import math
import struct
from typing import Any

from rust_core.reference._common import (
    _floats,
)

# ---------------------------------------------------------------- histogram

_MAGIC = b"CDH1"


def _bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def _from_bits(b: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", b))[0])


class Histogram:
    """Reference of the log-bucketed histogram (same buckets, same bytes)."""

    def __init__(self, relative_error: float = 0.01) -> None:
        if not (1e-4 <= relative_error <= 0.5):
            raise ValueError(f"relative_error: must be in [0.0001, 0.5] (got {relative_error})")
        p = 0
        while 0.5 ** (p + 1) > relative_error and p < 52:
            p += 1
        self._rel = relative_error
        self._p = p
        self._shift = 52 - p
        self._count = 0
        self._zero = 0
        self._min = math.inf
        self._max = -math.inf
        self._sum = 0.0
        self._buckets: dict[int, int] = {}

    @staticmethod
    def _ok(v: float) -> bool:
        return 0.0 <= v < math.inf

    def record(self, value: float, count: int = 1) -> None:
        value = float(value)
        if not self._ok(value):
            raise ValueError(f"value: must be finite and >= 0 (got {value})")
        if count < 0:
            raise OverflowError("count: must be >= 0")
        if count == 0:
            return
        self._count += count
        self._sum += value * float(count)
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        if value == 0.0:
            self._zero += count
        else:
            k = _bits(value) >> self._shift
            self._buckets[k] = self._buckets.get(k, 0) + count

    def record_many(self, values: Any) -> None:
        v = _floats(values, "values")
        for i, x in enumerate(v):
            if not self._ok(x):
                raise ValueError(f"values: must be finite and >= 0 (got {x} at index {i})")
        if not v:
            return
        s = 0.0
        for x in v:
            s += x
        self._count += len(v)
        self._sum += s
        self._min = min(self._min, min(v))
        self._max = max(self._max, max(v))
        for x in v:
            if x == 0.0:
                self._zero += 1
            else:
                k = _bits(x) >> self._shift
                self._buckets[k] = self._buckets.get(k, 0) + 1

    def merge(self, other: Histogram) -> None:
        if self._rel != other._rel:
            raise ValueError(
                f"other: cannot merge histograms with different relative_error ({self._rel} != {other._rel})"
            )
        if other._count == 0:
            return
        for k, c in other._buckets.items():
            self._buckets[k] = self._buckets.get(k, 0) + c
        self._count += other._count
        self._zero += other._zero
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def _value_of(self, k: int) -> float:
        lo = _from_bits(k << self._shift)
        hi_bits = (k + 1) << self._shift
        hi = _from_bits(hi_bits) if hi_bits < (0x7FF << 52) else math.inf
        return lo + (hi - lo) * 0.5 if math.isfinite(hi) else lo

    def quantile(self, q: float) -> float:
        if not (0.0 <= q <= 1.0):
            raise ValueError(f"q: must be in [0, 1], got {q}")
        if self._count == 0:
            return math.nan
        if q == 0.0:
            return self._min
        if q == 1.0:
            return self._max
        rank = math.floor(q * float(self._count - 1))
        if rank < self._zero:
            return 0.0
        seen = self._zero
        for k in sorted(self._buckets):
            seen += self._buckets[k]
            if seen > rank:
                return min(max(self._value_of(k), self._min), self._max)
        return self._max

    def quantiles(self, qs: Any) -> list[float]:
        q = _floats(qs, "qs")
        for x in q:
            if not (0.0 <= x <= 1.0):
                raise ValueError(f"qs: must be in [0, 1], got {x}")
        return [self.quantile(x) for x in q]

    @property
    def count(self) -> int:
        return self._count

    @property
    def min(self) -> float:
        return self._min if self._count else math.nan

    @property
    def max(self) -> float:
        return self._max if self._count else math.nan

    @property
    def mean(self) -> float:
        return self._sum / self._count if self._count else math.nan

    @property
    def sum(self) -> float:
        return self._sum

    @property
    def relative_error(self) -> float:
        return self._rel

    def _nonzero(self) -> list[int]:
        return sorted(k for k, c in self._buckets.items() if c > 0)

    def to_bytes(self) -> bytes:
        keys = self._nonzero()
        first = keys[0] if keys else 0
        counts = [self._buckets.get(k, 0) for k in range(first, keys[-1] + 1)] if keys else []
        out = bytearray(_MAGIC)
        out += struct.pack("<dB", self._rel, self._p)
        out += struct.pack("<QQ", self._count, self._zero)
        out += struct.pack("<ddd", self._min, self._max, self._sum)
        out += struct.pack("<QI", first, len(counts))
        for c in counts:
            while True:
                byte = c & 0x7F
                c >>= 7
                if c == 0:
                    out.append(byte)
                    break
                out.append(byte | 0x80)
        return bytes(out)

    @staticmethod
    def from_bytes(b: bytes) -> Histogram:
        b = bytes(b)
        if len(b) < 65 or b[:4] != _MAGIC:
            raise ValueError("b: not a serialised Histogram (bad magic or version)")
        rel, p = struct.unpack_from("<dB", b, 4)
        try:
            h = Histogram(rel)
        except ValueError:
            raise ValueError("b: bad relative_error") from None
        if p != h._p:
            raise ValueError("b: precision does not match relative_error")
        count, zero = struct.unpack_from("<QQ", b, 13)
        mn, mx, sm = struct.unpack_from("<ddd", b, 29)
        first, nb = struct.unpack_from("<QI", b, 53)
        max_index = (_bits(1.7976931348623157e308) >> h._shift) + 1
        if nb > 1 << 20 or first + nb > max_index:
            raise ValueError("b: bucket range out of bounds")
        if count and not (Histogram._ok(mn) and Histogram._ok(mx) and mn <= mx):
            raise ValueError("b: min/max are not finite values with min <= max")
        pos = 65
        total = zero
        for i in range(nb):
            v, shift = 0, 0
            while True:
                if pos >= len(b):
                    raise ValueError("b: truncated bucket counts")
                byte = b[pos]
                pos += 1
                v |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if v:
                h._buckets[first + i] = v
            total += v
        if pos != len(b):
            raise ValueError("b: trailing bytes")
        if total != count:
            raise ValueError("b: bucket counts do not add up to count")
        h._count, h._zero, h._sum = count, zero, sm
        h._min, h._max = (mn, mx) if count else (math.inf, -math.inf)
        return h

    def copy(self) -> Histogram:
        return Histogram.from_bytes(self.to_bytes())

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (Histogram.from_bytes, (self.to_bytes(),))

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return False
        if (self._rel, self._count, self._zero) != (other._rel, other._count, other._zero):
            return False
        if self._count and (self._min, self._max) != (other._min, other._max):
            return False
        return {k: c for k, c in self._buckets.items() if c} == {
            k: c for k, c in other._buckets.items() if c
        }

    __hash__ = None  # type: ignore[assignment]
