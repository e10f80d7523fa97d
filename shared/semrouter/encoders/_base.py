"""The encoder protocol: one abstract method, batching and normalisation built on top."""

from __future__ import annotations

import asyncio
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .._exceptions import EncoderError, QueryTypeError
from ._cache import CacheInfo, QueryCache, check_cache_size
from ._coalesce import Coalescer, check_coalesce_ms, copy_rows

__all__ = ["CacheInfo", "Encoder", "Vectors"]

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

    Serving options, for every encoder (and so every router and adapter using it):
    :attr:`cache_size` (an exact repeated request skips the model; 0 turns it off) and
    :attr:`coalesce_ms` (requests that arrive together from many threads or tasks are encoded
    as one batch; ``None``, the default, turns it off).

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
    #: The languages the model reads (ISO 639-1 codes), or ``None``: many, or not declared.
    #: When set, a request that abstains and seems written in another language gets
    #: ``reason="unsupported_language"`` (``semrouter._language``: a cheap guess, no model).
    languages: frozenset[str] | None = None
    #: How many texts one call to :meth:`_encode_batch` receives at most.
    batch_size: int = 64
    #: The ``type`` key written to config files; ``None`` for encoders that cannot be rebuilt
    #: from a config file (the caller passes them again when loading).
    config_type: ClassVar[str | None] = None
    #: Query vectors kept by default (LRU, per encoder); 0: no cache. See :attr:`cache_size`.
    default_cache_size: ClassVar[int] = 1024

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
        """Embed ``texts`` in batches; returns an L2-normalised ``(n, dimension)`` float32 array.

        Texts found in the query cache are not encoded again; with :attr:`coalesce_ms` set, a
        small call waits for (at most) one shared batch with other callers' texts.
        """
        items = _as_list(texts)
        cache = self._serving_cache()
        found = cache.get_many(self.fingerprint, items) if cache is not None and items else None
        todo = _missing(items, found)
        if not todo:
            return _assemble(items, found, todo, None, self.dimension)
        coalescer = self._coalescer(len(todo))
        fresh = coalescer.submit(todo).result() if coalescer else self._encode_now(todo)
        return self._keep(cache, items, found, todo, fresh)

    async def aencode(self, texts: Sequence[str]) -> Vectors:
        """Asynchronous :meth:`encode` (the event loop is never blocked on the model)."""
        items = _as_list(texts)
        cache = self._serving_cache()
        found = cache.get_many(self.fingerprint, items) if cache is not None and items else None
        todo = _missing(items, found)
        if not todo:
            return _assemble(items, found, todo, None, self.dimension)
        coalescer = self._coalescer(len(todo))
        if coalescer is not None:
            fresh = await asyncio.wrap_future(coalescer.submit(todo))
        else:
            fresh = self._join(
                [
                    self._finish(await self.aencode_batch(batch), len(batch))
                    for batch in _batches(todo, self.batch_size)
                ]
            )
        return self._keep(cache, items, found, todo, fresh)

    # -- serving options -----------------------------------------------------------------------
    @property
    def cache_size(self) -> int:
        """How many query vectors this encoder keeps (least recently used go first); 0: none.

        A text is looked up with the encoder's :attr:`fingerprint`, so an exact repeated
        request ("hi", "thanks", the same FAQ) skips the model. Calls of up to
        :attr:`batch_size` texts (requests) are kept; bigger ones (a route set's utterances)
        are looked up but not kept, so they do not push the requests out. Default:
        :attr:`default_cache_size`. Setting it resizes the cache; 0 turns it off.
        """
        cache = self.__dict__.get("_query_cache")
        if isinstance(cache, QueryCache):
            return cache.max_size
        size = self.__dict__.get("_cache_size", type(self).default_cache_size)
        return int(size)

    @cache_size.setter
    def cache_size(self, value: int) -> None:
        size = check_cache_size(value)
        with _serving_lock:
            cache = self.__dict__.get("_query_cache")
            if isinstance(cache, QueryCache):
                cache.resize(size)
            self.__dict__["_cache_size"] = size

    def cache_info(self) -> CacheInfo:
        """Hits, misses, current and maximum size of the query cache."""
        cache = self.__dict__.get("_query_cache")
        if isinstance(cache, QueryCache):
            return cache.info()
        return CacheInfo(0, 0, 0, self.cache_size)

    def cache_clear(self) -> None:
        """Forget every cached query vector (and the hit counts)."""
        cache = self.__dict__.get("_query_cache")
        if isinstance(cache, QueryCache):
            cache.clear()

    @property
    def coalesce_ms(self) -> float | None:
        """Coalescing of concurrent requests: ``None`` (the default) is off; a number turns it
        on and bounds, in milliseconds, how long a request waits for others to share its batch.

        A request that finds the encoder idle is encoded at once (a lone caller does not wait);
        while batches are running, requests queue and the next batch starts when
        :attr:`batch_size` texts are queued or ``coalesce_ms`` after the first. Only calls of
        fewer than :attr:`batch_size` texts are coalesced. A router whose encoder coalesces
        also searches those callers' queries as one batch (one matrix product, or one Qdrant
        batch query); each call is still scored, logged and traced on its own.
        """
        return self.__dict__.get("_coalesce_ms")

    @coalesce_ms.setter
    def coalesce_ms(self, value: float | None) -> None:
        wait = check_coalesce_ms(value)
        with _serving_lock:
            self.__dict__["_coalesce_ms"] = wait
            coalescer = self.__dict__.get("_coalescer_obj")
            if wait is None:
                self.__dict__.pop("_coalescer_obj", None)
            elif isinstance(coalescer, Coalescer):
                coalescer.wait_s = wait / 1000.0

    def _serving_cache(self) -> QueryCache | None:
        cache = self.__dict__.get("_query_cache")
        if isinstance(cache, QueryCache):
            return cache if cache.max_size else None
        if not self.cache_size:
            return None
        with _serving_lock:
            cache = self.__dict__.get("_query_cache")
            if not isinstance(cache, QueryCache):
                cache = self.__dict__["_query_cache"] = QueryCache(self.cache_size)
        return cache

    def _coalescer(self, count: int) -> Coalescer[str, Vectors] | None:
        wait = self.__dict__.get("_coalesce_ms")
        if wait is None or count >= self.batch_size:
            return None
        coalescer = self.__dict__.get("_coalescer_obj")
        if isinstance(coalescer, Coalescer):
            return coalescer
        with _serving_lock:
            coalescer = self.__dict__.get("_coalescer_obj")
            if not isinstance(coalescer, Coalescer):
                coalescer = Coalescer(
                    self._encode_now,
                    wait_s=wait / 1000.0,
                    max_texts=self.batch_size,
                    take=copy_rows,
                )
                self.__dict__["_coalescer_obj"] = coalescer
        return coalescer

    def _encode_now(self, texts: list[str]) -> Vectors:
        """The model itself: :meth:`encode_batch` by :attr:`batch_size`, checked, normalised."""
        return self._join(
            [
                self._finish(self.encode_batch(batch), len(batch))
                for batch in _batches(texts, self.batch_size)
            ]
        )

    def _keep(
        self,
        cache: QueryCache | None,
        items: list[str],
        found: list[Vectors | None] | None,
        todo: list[str],
        fresh: Vectors,
    ) -> Vectors:
        if cache is not None and len(items) <= self.batch_size:
            cache.put_many(self.fingerprint, todo, fresh)
        return _assemble(items, found, todo, fresh, self.dimension)

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


_serving_lock = threading.Lock()  # creates an encoder's cache or coalescer once


def _missing(items: list[str], found: list[Vectors | None] | None) -> list[str]:
    """The distinct texts to encode, in first-seen order (all of them without a cache)."""
    if found is None:
        return items
    return list(dict.fromkeys(t for t, row in zip(items, found) if row is None))


def _assemble(
    items: list[str],
    found: list[Vectors | None] | None,
    todo: list[str],
    fresh: Vectors | None,
    dimension: int,
) -> Vectors:
    """One new row per item: cached rows copied in, the others from ``fresh``."""
    if found is None or (fresh is not None and len(todo) == len(items)):
        return fresh if fresh is not None else np.zeros((0, dimension), dtype=np.float32)
    out = np.empty((len(items), dimension), dtype=np.float32)
    position = {text: i for i, text in enumerate(todo)}
    for i, (text, row) in enumerate(zip(items, found)):
        out[i] = row if row is not None else fresh[position[text]]  # type: ignore[index]
    return out


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
