"""Vectors of tool texts, encoded once per process and shared by every tool index.

The key is the encoder's :attr:`~semrouter.Encoder.fingerprint` and the text itself, so two
selectors over the same tools, or two adapters in one process, encode each distinct text once.
The cache is the seam for a store of record across processes: :meth:`EncodeCache.put` takes
vectors computed elsewhere (a Qdrant collection, another worker).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .._exceptions import ConfigurationError
from ..encoders import Encoder, Vectors

__all__ = ["EncodeCache"]


class EncodeCache:
    """A bounded, thread-safe map ``(encoder fingerprint, text) -> vector``.

    Args:
        max_texts: the most vectors kept (least recently used go first; 100,000 vectors of
            384 floats take 150 MB). An index keeps its own tools' vectors, so an evicted
            text costs an encoding only when a tool that uses it is indexed again.

    Example:
        >>> from semrouter import FakeEncoder
        >>> cache, encoder = EncodeCache(), FakeEncoder(dimension=8)
        >>> _ = cache.encode(encoder, ["a tool", "another tool", "a tool"])
        >>> _ = cache.encode(encoder, ["a tool"])
        >>> encoder.encoded_texts  # each distinct text once
        2
    """

    _shared: EncodeCache | None = None
    _shared_lock = threading.Lock()

    def __init__(self, max_texts: int = 100_000) -> None:
        if max_texts < 1:
            raise ConfigurationError("max_texts must be at least 1")
        self.max_texts = max_texts
        self._vectors: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> EncodeCache:
        """The process-wide cache every tool index uses unless given another."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __len__(self) -> int:
        return len(self._vectors)

    def missing(self, encoder: Encoder, texts: Sequence[str]) -> list[str]:
        """The distinct ``texts`` that have no vector yet, in first-seen order."""
        key = encoder.fingerprint
        with self._lock:
            return [t for t in dict.fromkeys(texts) if (key, t) not in self._vectors]

    def put(self, encoder: Encoder, texts: Sequence[str], vectors: Vectors) -> None:
        """Keep ``vectors`` (rows of ``encoder.encode(texts)``, computed anywhere)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(texts), encoder.dimension):
            raise ConfigurationError(
                f"got {matrix.shape} vectors for {len(texts)} texts of dimension "
                f"{encoder.dimension}"
            )
        key = encoder.fingerprint
        with self._lock:
            for text, row in zip(texts, matrix):
                self._vectors[(key, text)] = row
                self._vectors.move_to_end((key, text))
            while len(self._vectors) > self.max_texts:
                self._vectors.popitem(last=False)

    def get(self, encoder: Encoder, texts: Sequence[str]) -> Vectors:
        """The vectors of ``texts`` (all must be cached), one row each."""
        key = encoder.fingerprint
        with self._lock:
            rows = [self._vectors[(key, t)] for t in texts]
            for text in dict.fromkeys(texts):
                self._vectors.move_to_end((key, text))
        if not rows:
            return np.zeros((0, encoder.dimension), dtype=np.float32)
        return np.stack(rows)

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> Vectors:
        """``encoder.encode(texts)``, encoding only the distinct texts not cached yet."""
        todo = self.missing(encoder, texts)
        if todo:
            self.put(encoder, todo, encoder.encode(todo))
        return self._rows(encoder, texts)

    async def aencode(self, encoder: Encoder, texts: Sequence[str]) -> Vectors:
        """Asynchronous :meth:`encode` (the encoder's async path)."""
        todo = self.missing(encoder, texts)
        if todo:
            self.put(encoder, todo, await encoder.aencode(todo))
        return self._rows(encoder, texts)

    def clear(self) -> None:
        """Forget every vector."""
        with self._lock:
            self._vectors.clear()

    def _rows(self, encoder: Encoder, texts: Sequence[str]) -> Vectors:
        try:
            return self.get(encoder, texts)
        except KeyError:  # evicted before it was read (more texts than the cache holds)
            return encoder.encode(list(texts))
