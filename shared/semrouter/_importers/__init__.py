"""Import routers from other libraries: semantic-router 0.x and 1.x files, RedisVL router files,
and semantic-router Qdrant collections.

Every conversion is written down in :attr:`ImportResult.notes`: thresholds converted where their
meaning carries over (a cosine similarity with the same model; a RedisVL cosine distance becomes
``1 - distance``), dropped where it does not (another encoder, a calibrated confidence), and the
parts semrouter has no counterpart for (dynamic routes' function schemas, decision / chain /
merge routers, hybrid settings) named, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from .._exceptions import ConfigurationError
from ._files import detect_format, import_file, read_mapping
from ._qdrant import import_qdrant_collection
from ._result import ImportResult, SourceFormat

__all__ = ["ImportResult", "SourceFormat", "import_qdrant_collection", "import_router"]


def import_router(
    path: str | Path,
    *,
    format: SourceFormat | None = None,
    local_fallback: bool = False,
) -> ImportResult:
    """Read another library's router file (JSON or YAML).

    Args:
        path: a semantic-router 0.x ``router.json`` / YAML (also what LiteLLM's auto-router
            writes), a semantic-router 1.x YAML, or a RedisVL router YAML.
        format: skip detection: ``"semantic-router-0"``, ``"semantic-router-1"`` or
            ``"redisvl"``.
        local_fallback: when the source's encoder has no semrouter counterpart, use the local
            default (:class:`LocalEncoder`) and drop the thresholds instead of leaving
            :attr:`ImportResult.encoder` empty.

    Example:
        >>> result = import_router("router.json")  # doctest: +SKIP
        >>> print("\\n".join(result.notes))  # doctest: +SKIP
        >>> result.save("router.yaml")  # then SemanticRouter.load("router.yaml")  # doctest: +SKIP
    """
    source = Path(path)
    data = read_mapping(source)
    if format is None:
        fmt = detect_format(data)
    elif format in get_args(SourceFormat) and format != "semantic-router-qdrant":
        fmt = format
    else:
        raise ConfigurationError(
            f"format must be semantic-router-0, semantic-router-1 or redisvl, not {format!r}"
        )
    try:
        return import_file(data, fmt, local_fallback=local_fallback)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source} ({fmt}): {exc}") from exc
