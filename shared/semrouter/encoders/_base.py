"""The encoder protocol: one abstract method, batching and normalisation built on top."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._exceptions import EncoderError

__all__ = ["Encoder", "Vectors"]

Vectors = npt.NDArray[np.float32]


class Encoder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    A subclass sets ``model_id`` and ``dimension`` and implements :meth:`_encode_batch`; it may
    override :meth:`_aencode_batch` with a truly asynchronous call (the default runs the sync
    one in a worker thread, so the event loop is never blocked).

    The :attr:`fingerprint` is stored in every Qdrant collection the encoder fills: a router
    refuses to reuse a collection whose vectors came from another model or dimension.

    Example:
        >>> from semrouter.encoders import FakeEncoder
        >>> FakeEncoder(dimension=8).encode(["hello"]).shape
        (1, 8)
    """

    #: Stable model name; part of the fingerprint.
    model_id: str
    #: Length of the vectors.
    dimension: int
    #: The router's default score threshold when neither the route nor the router sets one.
    default_threshold: float = 0.5
    #: How many texts one call to :meth:`_encode_batch` receives at most.
    batch_size: int = 64
    #: The ``type`` key written to config files; ``None`` for encoders that cannot be rebuilt
    #: from a config file (the caller passes them again when loading).
    config_type: ClassVar[str | None] = None

    @property
    def fingerprint(self) -> str:
        """Model id, dimension and normalisation, as stored with a collection."""
        return f"{self.model_id}|dim={self.dimension}|l2"

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> npt.ArrayLike:
        """Embed at most :attr:`batch_size` texts; rows need not be normalised."""

    async def _aencode_batch(self, texts: list[str]) -> npt.ArrayLike:
        return await asyncio.to_thread(self._encode_batch, texts)

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in batches; returns an L2-normalised ``(n, dimension)`` float32 array."""
        items = _as_list(texts)
        parts = [
            self._finish(self._encode_batch(batch), len(batch))
            for batch in _batches(items, self.batch_size)
        ]
        return self._join(parts)

    async def aencode(self, texts: Sequence[str]) -> Vectors:
        """Asynchronous :meth:`encode`."""
        items = _as_list(texts)
        parts = [
            self._finish(await self._aencode_batch(batch), len(batch))
            for batch in _batches(items, self.batch_size)
        ]
        return self._join(parts)

    def to_config(self) -> dict[str, Any]:
        """A spec that :func:`semrouter.encoders.encoder_from_config` rebuilds; never secrets."""
        return {"type": self.config_type, "model_id": self.model_id, "dimension": self.dimension}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dimension={self.dimension})"

    def _finish(self, raw: npt.ArrayLike, expected_rows: int) -> Vectors:
        try:
            array = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EncoderError(f"{self!r} returned something that is not a matrix") from exc
        if array.ndim != 2 or array.shape != (expected_rows, self.dimension):
            raise EncoderError(
                f"{self!r} returned shape {array.shape}, "
                f"expected ({expected_rows}, {self.dimension})"
            )
        if not np.all(np.isfinite(array)):
            raise EncoderError(f"{self!r} returned non-finite values")
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        norms[norms == 0.0] = 1.0
        return np.ascontiguousarray(array / norms, dtype=np.float32)

    def _join(self, parts: list[Vectors]) -> Vectors:
        if not parts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _as_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of strings, not one string")
    items = list(texts)
    for text in items:
        if not isinstance(text, str):
            raise TypeError(f"encode() takes strings, got {type(text).__name__}")
    return items


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
