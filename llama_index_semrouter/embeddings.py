"""Embeddings both ways: semrouter encoders as LlamaIndex ``BaseEmbedding`` and back."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import PrivateAttr

from semrouter import ConfigurationError, Encoder

__all__ = ["LlamaIndexEncoder", "SemRouterEmbedding", "as_encoder"]


class SemRouterEmbedding(BaseEmbedding):
    """A semrouter encoder as a LlamaIndex embedding model (sync and truly async).

    With no encoder it serves :class:`semrouter.LocalEncoder`, the offline MiniLM model, so an
    index, a selector and a router can share one model with no API key and no network.

    Args:
        encoder: the semrouter encoder to expose (default: a new ``LocalEncoder``).
        **kwargs: ``BaseEmbedding`` fields such as ``embed_batch_size`` or ``callback_manager``.

    Example:
        >>> from semrouter import FakeEncoder
        >>> embed_model = SemRouterEmbedding(FakeEncoder(dimension=8))
        >>> len(embed_model.get_query_embedding("hello"))
        8
    """

    _encoder: Encoder = PrivateAttr()

    def __init__(self, encoder: Encoder | None = None, **kwargs: Any) -> None:
        if encoder is None:
            from semrouter.encoders import LocalEncoder

            from ._utils import default_encoder  # not at the top: _utils imports this module

            # LlamaIndex rebuilds components from to_dict()/pickle with their fields only: the
            # encoder is not serialised, so a named other model must not become MiniLM silently
            # (checked before any model is loaded).
            named = kwargs.get("model_name")
            if named is not None and named != LocalEncoder.default_model_id:
                raise ConfigurationError(
                    f"this SemRouterEmbedding wrapped {named!r}, which is not serialised: "
                    "pass encoder= to rebuild it"
                )
            encoder = default_encoder()
        if not isinstance(encoder, Encoder):
            raise ConfigurationError("encoder must be a semrouter.Encoder")
        kwargs.setdefault("model_name", encoder.model_id)
        super().__init__(**kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "SemRouterEmbedding"

    def __getstate__(self) -> dict[str, Any]:
        # BaseComponent quietly drops private attributes it cannot pickle, which would bring
        # this embedding back without its encoder: keep it, so pickling works or fails loudly.
        state = super().__getstate__()
        state["__pydantic_private__"] = {
            **(state.get("__pydantic_private__") or {}),
            "_encoder": self._encoder,
        }
        return state

    @property
    def encoder(self) -> Encoder:
        """The wrapped semrouter encoder."""
        return self._encoder

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        return self._encoder.dimension

    def _get_query_embedding(self, query: str) -> Embedding:
        return _rows(self._encoder.encode([query]))[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return _rows(await self._encoder.aencode([query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return _rows(self._encoder.encode([text]))[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return _rows(await self._encoder.aencode([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return _rows(self._encoder.encode(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return _rows(await self._encoder.aencode(texts))


class LlamaIndexEncoder(Encoder):
    """Any LlamaIndex ``BaseEmbedding`` as a semrouter encoder (sync and truly async).

    Utterances and queries are both embedded as *texts* (``get_text_embedding_batch``): a route
    compares a query with example queries, so both sides are the same kind of text.

    Args:
        embed_model: the LlamaIndex embedding model.
        dimension: the vector length; read from the model's ``embed_dim`` or ``dimensions``
            field when omitted (never probed with an embedding call).
        model_id: the name stored in the collection fingerprint (default:
            ``"llama-index/<class name>/<model_name>"``).
        default_threshold: the router's threshold when neither route nor router sets one.

    Example:
        >>> from llama_index.core.embeddings import MockEmbedding
        >>> encoder = LlamaIndexEncoder(MockEmbedding(embed_dim=4))
        >>> encoder.encode(["hello"]).shape
        (1, 4)
    """

    def __init__(
        self,
        embed_model: BaseEmbedding,
        *,
        dimension: int | None = None,
        model_id: str | None = None,
        default_threshold: float | None = None,
    ) -> None:
        if not isinstance(embed_model, BaseEmbedding):
            raise ConfigurationError("embed_model must be a llama_index BaseEmbedding")
        width = dimension if dimension is not None else _declared_dimension(embed_model)
        if width is None:
            raise ConfigurationError(
                f"cannot tell the dimension of {embed_model.class_name()}; pass dimension="
            )
        if width < 1:
            raise ConfigurationError("dimension must be at least 1")
        self.embed_model = embed_model
        self.dimension = int(width)
        self.model_id = (
            model_id or f"llama-index/{embed_model.class_name()}/{embed_model.model_name}"
        )
        if default_threshold is not None:
            self.default_threshold = default_threshold

    def encode_batch(self, texts: list[str]) -> npt.ArrayLike:
        return np.asarray(self.embed_model.get_text_embedding_batch(texts), dtype=np.float32)

    async def aencode_batch(self, texts: list[str]) -> npt.ArrayLike:
        vectors = await self.embed_model.aget_text_embedding_batch(texts)
        return np.asarray(vectors, dtype=np.float32)


def as_encoder(model: Encoder | BaseEmbedding) -> Encoder:
    """A semrouter encoder for ``model``; a :class:`SemRouterEmbedding` gives back its own."""
    if isinstance(model, Encoder):
        return model
    if isinstance(model, SemRouterEmbedding):
        return model.encoder
    if isinstance(model, BaseEmbedding):
        return LlamaIndexEncoder(model)
    raise ConfigurationError(
        f"encoder must be a semrouter.Encoder or a llama_index BaseEmbedding, "
        f"got {type(model).__name__}"
    )


def _declared_dimension(model: BaseEmbedding) -> int | None:
    if isinstance(model, SemRouterEmbedding):
        return model.dimension
    for field in ("embed_dim", "dimensions", "dimension", "embed_dimension"):
        value = getattr(model, field, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _rows(vectors: npt.NDArray[np.float32]) -> list[Embedding]:
    return cast("list[Embedding]", vectors.astype(np.float64).tolist())
