"""Share one embedding model between LangChain and semrouter, in both directions."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
from langchain_core.embeddings import Embeddings

from semrouter import ConfigurationError, Encoder

from ._branching import default_encoder

__all__ = ["LangChainEncoder", "SemRouterEmbeddings"]


class LangChainEncoder(Encoder):
    """Any LangChain ``Embeddings`` as a semrouter encoder, sync and async.

    Texts go through ``embed_documents`` / ``aembed_documents`` (queries too: a route match
    compares a query with utterances, so both sides are embedded alike). The dimension is
    given or read from the embeddings' declared size (``size``, ``dimensions``, ``embed_dim``...,
    or the wrapped encoder of a :class:`SemRouterEmbeddings`), never probed with a (possibly
    paid) call; the router checks it on the first batch.

    Args:
        embeddings: the LangChain embeddings.
        dimension: the length of its vectors (default: the declared one).
        model_id: the name fingerprinted in the Qdrant collection; default: the embeddings'
            ``model`` or ``model_name`` attribute, else its class name.
        default_threshold: the router's default score threshold with this model.
        batch_size: texts per call to the embeddings.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> encoder = LangChainEncoder(DeterministicFakeEmbedding(size=16))
        >>> encoder.encode(["hello"]).shape
        (1, 16)
    """

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        dimension: int | None = None,
        model_id: str | None = None,
        default_threshold: float | None = None,
        batch_size: int = 64,
    ) -> None:
        if not isinstance(embeddings, Embeddings):
            raise ConfigurationError("embeddings must be a langchain_core Embeddings")
        width = dimension if dimension is not None else _declared_dimension(embeddings)
        if width is None:
            raise ConfigurationError(
                f"cannot tell the vector length of {type(embeddings).__name__}; pass dimension="
            )
        if isinstance(width, bool) or not isinstance(width, int) or width < 1 or batch_size < 1:
            raise ConfigurationError("dimension and batch_size must be at least 1")
        self.embeddings = embeddings
        self.dimension = width
        self.model_id = model_id or _model_name(embeddings)
        self.batch_size = batch_size
        if default_threshold is not None:
            self.default_threshold = default_threshold

    @classmethod
    def from_embeddings(cls, embeddings: Embeddings, **kwargs: Any) -> Encoder:
        """The best encoder for ``embeddings``: the wrapped encoder of a
        :class:`SemRouterEmbeddings` (no round trip through lists), else a new wrapper."""
        if isinstance(embeddings, SemRouterEmbeddings) and not kwargs:
            return embeddings.encoder
        return cls(embeddings, **kwargs)

    def encode_batch(self, texts: list[str]) -> npt.ArrayLike:
        return self.embeddings.embed_documents(texts)

    async def aencode_batch(self, texts: list[str]) -> npt.ArrayLike:
        return await self.embeddings.aembed_documents(texts)


class SemRouterEmbeddings(Embeddings):
    """A semrouter encoder as LangChain ``Embeddings``: one model for routing and retrieval.

    Args:
        encoder: the encoder; default: the process-wide :meth:`~semrouter.LocalEncoder.shared`
            (offline MiniLM).

    Example:
        >>> from semrouter import FakeEncoder
        >>> embeddings = SemRouterEmbeddings(FakeEncoder(dimension=8))
        >>> len(embeddings.embed_query("hello"))
        8
    """

    def __init__(self, encoder: Encoder | None = None) -> None:
        if encoder is None:
            encoder = default_encoder()
        if not isinstance(encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter Encoder")
        self.encoder = encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (L2-normalised)."""
        return _rows(self.encoder.encode(texts))

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (L2-normalised)."""
        return _rows(self.encoder.encode([text]))[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Asynchronous :meth:`embed_documents`, on the encoder's async path."""
        return _rows(await self.encoder.aencode(texts))

    async def aembed_query(self, text: str) -> list[float]:
        """Asynchronous :meth:`embed_query`."""
        return _rows(await self.encoder.aencode([text]))[0]

    def __repr__(self) -> str:
        return f"SemRouterEmbeddings({self.encoder!r})"


def _rows(vectors: Any) -> list[list[float]]:
    rows: list[list[float]] = vectors.tolist()
    return rows


def _declared_dimension(embeddings: Embeddings) -> int | None:
    if isinstance(embeddings, SemRouterEmbeddings):
        return embeddings.encoder.dimension
    for attribute in ("size", "dimensions", "dimension", "embed_dim", "embedding_dim"):
        value = getattr(embeddings, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _model_name(embeddings: Embeddings) -> str:
    for attribute in ("model", "model_name", "model_id"):
        value = getattr(embeddings, attribute, None)
        if isinstance(value, str) and value:
            return f"langchain:{type(embeddings).__name__}:{value}"
    size = getattr(embeddings, "size", None)
    suffix = f":size={size}" if isinstance(size, int) else ""
    return f"langchain:{type(embeddings).__name__}{suffix}"
