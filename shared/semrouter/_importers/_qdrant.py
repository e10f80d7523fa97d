"""Import a semantic-router Qdrant collection: routes read, vectors reused when the model matches.

semantic-router's ``QdrantIndex`` stores one point per utterance with the payload
``{sr_route, sr_utterance, metadata: {..., sr_description, sr_confidence_threshold}, namespace?}``
and no record of the encoder. Whether the stored vectors came from the target encoder is checked,
not assumed: a sample of utterances is re-encoded and compared with the stored vectors.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError, backend_errors
from .._routes import Route, validate_routes
from ..encoders import Encoder
from ._result import ImportResult

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

__all__ = ["import_qdrant_collection"]

#: Stored and re-encoded vectors of one model agree to about 0.99 across quantisations.
SAME_MODEL_COSINE = 0.98
_PAGE = 256


def import_qdrant_collection(
    client: QdrantClient,
    collection: str,
    *,
    encoder: Encoder | None = None,
    namespace: str | None = None,
    sample: int = 8,
) -> ImportResult:
    """Read the routes of a semantic-router collection and check its vectors against ``encoder``.

    Args:
        client: a ready ``QdrantClient`` (server or local); nothing is written through it.
        collection: the semantic-router collection (its ``index_name``).
        encoder: the encoder the new router will use (default: :class:`LocalEncoder`). When a
            sample of re-encoded utterances matches the stored vectors, the vectors are returned
            in :attr:`ImportResult.vectors` and thresholds carry over; otherwise the router
            re-encodes the utterances and thresholds are dropped.
        namespace: read only points of this namespace (required when there are several).
        sample: how many utterances to re-encode for the check.

    Example:
        >>> result = import_qdrant_collection(client, "sr-index", encoder=enc)  # doctest: +SKIP
        >>> seeded = result.seeded_encoder(enc)  # doctest: +SKIP
        >>> router = SemanticRouter(result.routes, encoder=seeded)  # doctest: +SKIP
    """
    if encoder is None:
        from ..encoders import LocalEncoder

        encoder = LocalEncoder()
    points = _read(client, collection)
    notes: list[str] = []
    namespaces = sorted({str(p[0].get("namespace")) for p in points if p[0].get("namespace")})
    if namespace is not None:
        points = [p for p in points if p[0].get("namespace") == namespace]
    elif len(namespaces) > 1:
        raise ConfigurationError(
            f"collection {collection!r} holds namespaces {namespaces}: pass namespace="
        )
    if not points:
        raise ConfigurationError(f"collection {collection!r} has no semantic-router points")

    by_route: dict[str, list[tuple[str, npt.NDArray[np.float32] | None]]] = defaultdict(list)
    meta: dict[str, dict[str, Any]] = {}
    skipped = 0
    for payload, vector in points:
        name, text = payload.get("sr_route"), payload.get("sr_utterance")
        if not isinstance(name, str) or not isinstance(text, str):
            skipped += 1
            continue
        by_route[name].append((text, vector))
        # semantic-router writes a route's metadata on each of its points: merge them.
        info = payload.get("metadata")
        merged = meta.setdefault(name, {})
        for key, value in info.items() if isinstance(info, dict) else ():
            if value is not None:
                merged.setdefault(str(key), value)
    if skipped:
        notes.append(f"{skipped} points without sr_route/sr_utterance were not imported")

    same, check_note = _same_model(by_route, encoder, sample)
    notes.append(check_note)
    routes: list[Route] = []
    vectors: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
    carried = 0
    for name, rows in by_route.items():
        info = meta[name]
        threshold = info.get("sr_confidence_threshold")
        if threshold is not None and not same:
            notes.append(
                f"route {name!r}: sr_confidence_threshold={threshold!r} dropped "
                "(measured with another model)"
            )
            threshold = None
        elif isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
            carried += 1
            notes.append(
                f"route {name!r}: sr_confidence_threshold={threshold} kept as a "
                "similarity (if the source router used a calibrator, drop it)"
            )
        else:
            threshold = None
        extra = {k: v for k, v in info.items() if not str(k).startswith("sr_")}
        texts = list(dict.fromkeys(text for text, _ in rows))
        routes.append(
            Route(
                name=name,
                utterances=texts,
                description=info.get("sr_description"),
                threshold=threshold,
                metadata=extra,
            )
        )
        if same:
            for text, vector in rows:
                if vector is not None:
                    vectors[(name, text)] = vector
    if carried:
        notes.append(
            "aggregation 'max': semantic-router tests a route's best hit against its threshold"
        )
    spec = encoder.to_config() if encoder.config_type is not None else None
    return ImportResult(
        source_format="semantic-router-qdrant",
        routes=tuple(validate_routes(routes)),
        encoder=spec,
        source_encoder=f"qdrant:{collection}",
        aggregation="max" if carried else None,
        notes=tuple(notes),
        vectors=vectors,
    )


def _read(client: Any, collection: str) -> list[tuple[dict[str, Any], Any]]:
    out: list[tuple[dict[str, Any], Any]] = []
    with backend_errors(collection):
        if not client.collection_exists(collection):
            raise ConfigurationError(f"Qdrant collection {collection!r} does not exist")
        offset = None
        while True:
            records, offset = client.scroll(
                collection, limit=_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            for record in records:
                out.append((dict(record.payload or {}), _vector(record.vector)))
            if offset is None:
                return out


def _vector(raw: Any) -> npt.NDArray[np.float32] | None:
    if isinstance(raw, dict):  # named vectors: semantic-router writes one unnamed vector
        dense = [v for v in raw.values() if isinstance(v, list)]
        raw = dense[0] if len(dense) == 1 else None
    if not isinstance(raw, list) or not raw:
        return None
    array = np.asarray(raw, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else None


def _same_model(
    by_route: dict[str, list[tuple[str, npt.NDArray[np.float32] | None]]],
    encoder: Encoder,
    sample: int,
) -> tuple[bool, str]:
    rows = [(t, v) for items in by_route.values() for t, v in items if v is not None]
    if not rows:
        return False, "the collection stores no vectors: every utterance will be encoded"
    step = max(1, len(rows) // max(1, sample))
    picked = rows[::step][:sample]
    width = {len(v) for _, v in picked}
    if width != {encoder.dimension}:
        return False, (
            f"stored vectors have {sorted(width)} dimensions, {encoder!r} makes "
            f"{encoder.dimension}: another model, every utterance will be re-encoded"
        )
    fresh = encoder.encode([t for t, _ in picked])
    stored = np.stack([v for _, v in picked])
    cosine = float(np.min(np.sum(fresh * stored, axis=1)))
    if cosine >= SAME_MODEL_COSINE:
        return True, (
            f"stored vectors match {encoder!r} (lowest cosine {cosine:.3f} on "
            f"{len(picked)} re-encoded utterances): reused, nothing re-encoded"
        )
    return False, (
        f"stored vectors do not match {encoder!r} (lowest cosine {cosine:.3f} on "
        f"{len(picked)} utterances): another model, every utterance will be re-encoded"
    )
