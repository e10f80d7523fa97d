"""Map another library's encoder name to a semrouter encoder spec, and say what carries over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EncoderMapping", "map_encoder"]

_MINILM = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}
_E5_SMALL = {"intfloat/multilingual-e5-small", "multilingual-e5-small"}
_LOCAL_KINDS = {
    "huggingface",
    "hf",
    "local",
    "fastembed",
    "sentence-transformers",
    "sentence_transformers",
}
# Model names the source libraries fill in when a file leaves the name out.
_DEFAULT_NAMES = {"hf": "sentence-transformers/all-mpnet-base-v2"}


@dataclass(frozen=True)
class EncoderMapping:
    """The semrouter encoder for a source encoder, and whether its scores mean the same."""

    spec: dict[str, Any] | None
    source: str
    #: Same model (so similarities, thresholds and stored vectors carry over).
    same_model: bool
    note: str


def map_encoder(kind: str | None, name: str | None, *, local_fallback: bool) -> EncoderMapping:
    """Find the semrouter encoder for ``kind``/``name`` as another library wrote them."""
    kind_l = (kind or "").strip().lower()
    name = name or _DEFAULT_NAMES.get(kind_l)
    name_l = (name or "").strip().lower()
    source = f"{kind or '?'}:{name or '?'}"
    if kind_l == "openai" and name_l.startswith("text-embedding"):
        return EncoderMapping(
            {"type": "openai", "model": name},
            source,
            True,
            f"encoder {source} -> OpenAIEncoder(model={name!r}); the API key comes from "
            "OPENAI_API_KEY or api_key= when loading",
        )
    if name_l in _MINILM and (kind_l in _LOCAL_KINDS or not kind_l):
        return EncoderMapping(
            {"type": "local"},
            source,
            True,
            f"encoder {source} -> LocalEncoder (the same model, as int8 ONNX: thresholds kept; "
            "the quantised model's similarities differ slightly)",
        )
    if name_l in _E5_SMALL:
        return EncoderMapping(
            {"type": "multilingual"},
            source,
            False,
            f"encoder {source} -> MultilingualEncoder (the same model, but semrouter adds the "
            "e5 'query: ' prefix the source may not have: thresholds not carried over)",
        )
    if local_fallback:
        return EncoderMapping(
            {"type": "local"},
            source,
            False,
            f"encoder {source} has no semrouter counterpart: using the local default "
            "(LocalEncoder) as asked; thresholds from the source were measured with another "
            "model and are not carried over",
        )
    return EncoderMapping(
        None,
        source,
        False,
        f"encoder {source} has no semrouter counterpart (semrouter has LocalEncoder, "
        "MultilingualEncoder and OpenAIEncoder): import with local_fallback=True (CLI: --local) "
        "to use the local default, or wrap your model as a semrouter Encoder and pass encoder= "
        "when loading",
    )
