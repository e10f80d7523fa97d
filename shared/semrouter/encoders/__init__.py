"""Encoders: the extension point that turns texts into vectors.

``LocalEncoder`` (the default, offline ONNX MiniLM), ``OpenAIEncoder`` (any OpenAI-compatible
``/v1/embeddings`` server), ``FakeEncoder`` (deterministic, for tests), and the :class:`Encoder`
base class to wrap anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from ._base import CacheInfo, Encoder, Vectors
from ._fake import FakeEncoder

if TYPE_CHECKING:
    from ._local import LocalEncoder
    from ._multilingual import MultilingualEncoder
    from ._openai import OpenAIEncoder

__all__ = [
    "CacheInfo",
    "Encoder",
    "FakeEncoder",
    "LocalEncoder",
    "MultilingualEncoder",
    "OpenAIEncoder",
    "Vectors",
    "encoder_from_config",
]


def __getattr__(name: str) -> Any:
    # The local and OpenAI encoders import their extras lazily, on first use of the name.
    if name == "LocalEncoder":
        from ._local import LocalEncoder

        return LocalEncoder
    if name == "MultilingualEncoder":
        from ._multilingual import MultilingualEncoder

        return MultilingualEncoder
    if name == "OpenAIEncoder":
        from ._openai import OpenAIEncoder

        return OpenAIEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def encoder_from_config(spec: dict[str, Any]) -> Encoder:
    """Rebuild an encoder from the spec that :meth:`Encoder.to_config` wrote."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigurationError("an encoder spec must be a mapping with a 'type' key")
    options = {key: value for key, value in spec.items() if key != "type"}
    kind = spec["type"]
    for key in ("dimension", "dimensions", "max_tokens", "batch_size"):
        value = options.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 65_536
        ):
            raise ConfigurationError(f"encoder {key} must be a whole number from 2 to 65536")
    try:
        if kind == "local":
            from ._local import LocalEncoder

            if "model_path" not in options:
                options.pop("model_id", None)
            return LocalEncoder(**options)
        if kind == "multilingual":
            from ._multilingual import MultilingualEncoder

            return MultilingualEncoder(**options)
        if kind == "openai":
            from ._openai import OpenAIEncoder

            return OpenAIEncoder(**options)
        if kind == "fake":
            return FakeEncoder(**options)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"invalid {kind!r} encoder spec: {exc}") from exc
    raise ConfigurationError(
        f"encoder type {kind!r} cannot be rebuilt from a config file; pass encoder= when loading"
    )
