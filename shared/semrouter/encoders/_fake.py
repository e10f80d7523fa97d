"""A deterministic encoder for tests: hashed bag of words, and a counter of encoded texts."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError
from ._base import Encoder

__all__ = ["FakeEncoder"]

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEncoder(Encoder):
    """Embeds each word to a fixed pseudo-random vector and sums them.

    Texts that share words get similar vectors, so routing behaves sensibly in tests, and
    :attr:`encoded_texts` counts every text ever encoded, so tests can assert that nothing was
    re-encoded (its query cache is off unless :attr:`cache_size` is set).

    Example:
        >>> enc = FakeEncoder(dimension=16)
        >>> _ = enc.encode(["book a flight", "cancel my flight"])
        >>> enc.encoded_texts
        2
    """

    config_type: ClassVar[str | None] = "fake"
    default_threshold = 0.3
    # It counts what it encodes for tests: no query cache unless a test sets cache_size.
    default_cache_size: ClassVar[int] = 0

    def __init__(self, dimension: int = 64, *, model_id: str = "fake-bow") -> None:
        if dimension < 2:
            raise ConfigurationError("dimension must be at least 2")
        self.dimension = dimension
        self.model_id = model_id
        self.encoded_texts = 0
        self.calls = 0
        self._lock = threading.Lock()

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            self.encoded_texts += len(texts)
            self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower()) or [text]
            for word in words:
                out[row] += self._word_vector(word)
        return out

    def _word_vector(self, word: str) -> npt.NDArray[np.float32]:
        seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)

    def reset_counts(self) -> None:
        """Set :attr:`encoded_texts` and :attr:`calls` back to zero."""
        with self._lock:
            self.encoded_texts = 0
            self.calls = 0

    def to_config(self) -> dict[str, Any]:
        return {"type": "fake", "model_id": self.model_id, "dimension": self.dimension}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]  # a lock cannot be pickled; the copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
