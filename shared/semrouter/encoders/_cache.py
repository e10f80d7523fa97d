"""The query-vector cache: an exact repeated request skips the model.

Keys are ``(encoder fingerprint, text)``; values are read-only float32 rows. Every
:class:`~semrouter.encoders.Encoder` owns one (see :attr:`Encoder.cache_size`), so each router
and adapter built on an encoder benefits without knowing of it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError

__all__ = ["CacheInfo", "QueryCache", "check_cache_size"]

Row = npt.NDArray[np.float32]
#: The largest cache a caller may ask for (about 1.5 GB of 384-d rows).
MAX_CACHE_SIZE = 1_000_000


class CacheInfo(NamedTuple):
    """What :meth:`Encoder.cache_info` reports, as :func:`functools.lru_cache` does."""

    hits: int
    misses: int
    size: int
    max_size: int


def check_cache_size(value: object) -> int:
    """``value`` as a cache size, or a :class:`ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CACHE_SIZE:
        raise ConfigurationError(f"cache_size must be a whole number from 0 to {MAX_CACHE_SIZE}")
    return value


class QueryCache:
    """A bounded, thread-safe LRU map ``(fingerprint, text) -> row``.

    Rows go in as copies and are kept read-only, so no caller can change what another one
    gets. Pickling and ``copy.deepcopy`` give an empty cache of the same size.
    """

    def __init__(self, max_size: int) -> None:
        self._max_size = check_cache_size(max_size)
        self._rows: OrderedDict[tuple[str, str], Row] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def __reduce__(self) -> tuple[type[QueryCache], tuple[int]]:
        return (QueryCache, (self._max_size,))

    @property
    def max_size(self) -> int:
        return self._max_size

    def get_many(self, key: str, texts: list[str]) -> list[Row | None]:
        """The cached row of each text (``None`` where there is none); hits become recent."""
        rows = self._rows
        with self._lock:
            found = [rows.get((key, text)) for text in texts]
            hits = 0
            for text, row in zip(texts, found):
                if row is not None:
                    rows.move_to_end((key, text))
                    hits += 1
            self._hits += hits
            self._misses += len(texts) - hits
        return found

    def put_many(self, key: str, texts: list[str], matrix: npt.NDArray[np.float32]) -> None:
        """Keep row ``i`` of ``matrix`` as the vector of ``texts[i]``; the oldest go first."""
        if self._max_size == 0:
            return
        kept = np.array(matrix[-self._max_size :], dtype=np.float32, copy=True)
        kept.flags.writeable = False
        start = len(texts) - len(kept)
        with self._lock:
            for text, row in zip(texts[start:], kept):
                self._rows[(key, text)] = row
                self._rows.move_to_end((key, text))
            while len(self._rows) > self._max_size:
                self._rows.popitem(last=False)

    def resize(self, max_size: int) -> None:
        """Keep at most ``max_size`` rows from now on (the least recent go first)."""
        check_cache_size(max_size)
        with self._lock:
            self._max_size = max_size
            while len(self._rows) > max_size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        """Forget every row and reset the counts."""
        with self._lock:
            self._rows.clear()
            self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._rows), self._max_size)
