"""The encoder protocol: one abstract method, batching and normalisation built on top."""

from __future__ import annotations

import asyncio
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._exceptions import EncoderError, QueryTypeError

__all__ = ["Encoder", "Vectors"]

Vectors = npt.NDArray[np.float32]


class Encoder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    A subclass sets ``model_id`` and ``dimension`` and implements :meth:`encode_batch` (the
    extension point); it may override :meth:`aencode_batch` with a truly asynchronous call (the
    default runs the sync one in a worker thread, so the event loop is never blocked). Subclasses
    written for 0.1 that implement ``_encode_batch`` / ``_aencode_batch`` still work, with a
    ``DeprecationWarning``.

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
    #: Set it for your model (its similarities' scale is its own); an encoder that does not
    #: gets a threshold learnt from the route set's utterances (see :attr:`threshold_declared`)
    #: and this 0.5 only where nothing was learnt.
    default_threshold: float = 0.5
    #: How many texts one call to :meth:`_encode_batch` receives at most.
    batch_size: int = 64
    #: The ``type`` key written to config files; ``None`` for encoders that cannot be rebuilt
    #: from a config file (the caller passes them again when loading).
    config_type: ClassVar[str | None] = None

    @property
    def threshold_declared(self) -> bool:
        """Whether this encoder states its own ``default_threshold`` (its class or the
        instance sets one); otherwise the base class's 0.5 is a guess about an unknown
        similarity scale, and the router prefers the threshold it learns from the utterances."""
        if "default_threshold" in getattr(self, "__dict__", {}):
            return True
        return any("default_threshold" in vars(k) for k in type(self).__mro__ if k is not Encoder)

    @property
    def fingerprint(self) -> str:
        """Model id, dimension and normalisation, as stored with a collection."""
        return f"{self.model_id}|dim={self.dimension}|l2"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # 0.1 named the extension point _encode_batch / _aencode_batch. Keep both spellings
        # pointing at the same body in every class, so old subclasses (and their super() calls)
        # keep working; only the old spelling warns.
        super().__init_subclass__(**kwargs)
        for old, new in (("_encode_batch", "encode_batch"), ("_aencode_batch", "aencode_batch")):
            if old in cls.__dict__ and new not in cls.__dict__:
                warnings.warn(
                    f"{cls.__name__}.{old} is deprecated: implement {new} instead",
                    DeprecationWarning,
                    stacklevel=2,
                )
                setattr(cls, new, cls.__dict__[old])
            elif new in cls.__dict__ and old not in cls.__dict__:
                setattr(cls, old, cls.__dict__[new])

    @abstractmethod
    def encode_batch(self, texts: list[str]) -> npt.ArrayLike:
        """Embed at most :attr:`batch_size` texts; rows need not be normalised.

        The one method a custom encoder implements (batching, validation and normalisation are
        done around it by :meth:`encode`).
        """

    async def aencode_batch(self, texts: list[str]) -> npt.ArrayLike:
        """Asynchronous :meth:`encode_batch`; by default the sync one in a worker thread."""
        return await asyncio.to_thread(self.encode_batch, texts)

    _aencode_batch = aencode_batch  # the 0.1 spelling, for subclasses that call super()

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in batches; returns an L2-normalised ``(n, dimension)`` float32 array."""
        items = _as_list(texts)
        parts = [
            self._finish(self.encode_batch(batch), len(batch))
            for batch in _batches(items, self.batch_size)
        ]
        return self._join(parts)

    async def aencode(self, texts: Sequence[str]) -> Vectors:
        """Asynchronous :meth:`encode`."""
        items = _as_list(texts)
        parts = [
            self._finish(await self.aencode_batch(batch), len(batch))
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
        raise QueryTypeError("encode() takes a sequence of strings, not one string")
    try:
        items = list(texts)
    except TypeError:
        raise QueryTypeError(
            f"encode() takes a sequence of strings, got {type(texts).__name__}"
        ) from None
    for text in items:
        if not isinstance(text, str):
            raise QueryTypeError(f"encode() takes strings, got {type(text).__name__}")
    return items


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
