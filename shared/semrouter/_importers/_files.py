"""Read semantic-router 0.x JSON/YAML, semantic-router 1.x YAML and RedisVL router YAML files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .._exceptions import ConfigurationError
from .._routes import MAX_METADATA_CHARS, Route, validate_routes
from .._safe_files import read_text_file
from ._encoders import EncoderMapping, map_encoder
from ._result import ImportResult, SourceFormat

__all__ = ["detect_format", "import_file", "read_mapping"]

_COLLECTION = re.compile(r"[^A-Za-z0-9_.-]+")
_SR0_KEYS = {"encoder_type", "encoder_name", "routes"}
_SR0_ROUTE_KEYS = {
    "name",
    "utterances",
    "description",
    "function_schemas",
    "llm",
    "score_threshold",
    "metadata",
}
_SR1_KEYS = {
    "router_type",
    "encoder",
    "routes",
    "confidence_threshold",
    "calibrator",
    "sparse_encoder",
    "alpha",
    "top_k",
    "aggregation",
    "index",
    "refresh_interval",
}
_SR1_ROUTE_KEYS = {
    "name",
    "utterances",
    "description",
    "confidence_threshold",
    "score_threshold",
    "metadata",
    "function_schemas",
    "llm",
}
_RVL_KEYS = {"name", "routes", "vectorizer", "routing_config"}
_RVL_ROUTE_KEYS = {"name", "references", "metadata", "distance_threshold"}


def read_mapping(path: Path) -> dict[str, Any]:
    """Parse a JSON or YAML file (safe loader, no aliases, size-capped) into a mapping."""
    from .._config import MAX_CONFIG_BYTES, _NoAliasLoader

    text = read_text_file(path, limit=MAX_CONFIG_BYTES)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_NoAliasLoader)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError also covers integers of more than 4,300 digits (Python's str->int cap).
        raise ConfigurationError(f"{path} is not valid JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a mapping at the top level")
    return data


def detect_format(data: dict[str, Any]) -> SourceFormat:
    """Which library wrote ``data``."""
    if "router_type" in data or isinstance(data.get("encoder"), dict):
        return "semantic-router-1"
    if "encoder_type" in data or "encoder_name" in data:
        return "semantic-router-0"
    routes = data.get("routes")
    if (
        "vectorizer" in data
        or "routing_config" in data
        or (
            isinstance(routes, list)
            and any(isinstance(r, dict) and "references" in r for r in routes)
        )
    ):
        return "redisvl"
    if isinstance(routes, list):
        return "semantic-router-0"
    raise ConfigurationError(
        "not a semantic-router (0.x or 1.x) or RedisVL router file: no 'routes' list"
    )


def import_file(data: dict[str, Any], fmt: SourceFormat, *, local_fallback: bool) -> ImportResult:
    """Convert a parsed file of format ``fmt``."""
    if fmt == "semantic-router-0":
        return _Converter(fmt, local_fallback).semantic_router_0(data)
    if fmt == "semantic-router-1":
        return _Converter(fmt, local_fallback).semantic_router_1(data)
    if fmt == "redisvl":
        return _Converter(fmt, local_fallback).redisvl(data)
    raise ConfigurationError(f"a file cannot be in format {fmt!r}")


class _Converter:
    def __init__(self, fmt: SourceFormat, local_fallback: bool) -> None:
        self.fmt = fmt
        self.local_fallback = local_fallback
        self.notes: list[str] = []
        self.carried = 0

    # -- the three formats ---------------------------------------------------------------------
    def semantic_router_0(self, data: dict[str, Any]) -> ImportResult:
        enc = self._encoder(data.get("encoder_type"), data.get("encoder_name"))
        self._unknown(data, _SR0_KEYS, "")
        routes = []
        for raw in self._route_list(data):
            self._unknown(raw, _SR0_ROUTE_KEYS, f"route {raw.get('name')!r}: ")
            threshold = self._similarity(raw, "score_threshold", enc, calibrated=False)
            routes.append(self._route(raw, raw.get("utterances"), threshold))
        if any(raw.get("score_threshold") is None for raw in data["routes"]):
            self.notes.append(
                "routes without score_threshold used the source encoder's default threshold "
                "(not stored in the file); semrouter uses its encoder's default"
            )
        return self._result(routes, enc, None)

    def semantic_router_1(self, data: dict[str, Any]) -> ImportResult:
        kind = data.get("router_type", "indexed")
        if kind != "indexed":
            self.notes.append(
                f"router_type {kind!r}: semrouter has no {kind} routers; its routes are "
                "imported as one flat router and the combination logic is not"
            )
        encoder = data.get("encoder") or {}
        if not isinstance(encoder, dict):
            raise ConfigurationError("'encoder' must be a mapping with type and name")
        # Some 1.x writers keep 0.x's top-level encoder_type / encoder_name.
        enc = self._encoder(
            encoder.get("type", data.get("encoder_type")),
            encoder.get("name", data.get("encoder_name")),
        )
        self._unknown(data, _SR1_KEYS | {"encoder_type", "encoder_name"}, "")
        calibrator = data.get("calibrator")
        calibrated = bool(calibrator)
        if calibrated:
            method = calibrator.get("method") if isinstance(calibrator, dict) else calibrator
            self.notes.append(
                f"calibrator {method!r}: its confidence thresholds are calibrated "
                "probabilities, not similarities: not carried over; run router.fit() on "
                "labelled queries to learn semrouter's thresholds"
            )
        for key, what in (
            (
                "sparse_encoder",
                "its sparse model (semrouter's own hybrid routing is an option: "
                "hybrid='dbsf', BM25 with no model; see the README)",
            ),
            ("alpha", "its utterance-level weighting (semrouter fuses per route: hybrid_weight)"),
            ("refresh_interval", "periodic refresh (semrouter syncs the index on every start)"),
        ):
            if data.get(key) is not None:
                self.notes.append(f"{key}={data[key]!r}: {what} not imported")
        if data.get("top_k") is not None or data.get("aggregation") is not None:
            self.notes.append(
                f"top_k={data.get('top_k')!r}, aggregation={data.get('aggregation')!r}: "
                "semrouter scores a route by its best hit where thresholds were carried over "
                "(as the source's threshold test does), by the mean of its 2 best otherwise"
            )
        index = data.get("index")
        if isinstance(index, dict):
            shown = {k: v for k, v in index.items() if k in ("type", "index_name", "namespace")}
            self.notes.append(
                f"index {shown}: not reused as semrouter's store (its schema differs); "
                "semrouter builds its own collection, or import the Qdrant collection itself"
            )
        top = self._similarity(data, "confidence_threshold", enc, calibrated=calibrated)
        routes = []
        for raw in self._route_list(data):
            label = f"route {raw.get('name')!r}: "
            self._unknown(raw, _SR1_ROUTE_KEYS, label)
            key = "score_threshold" if "score_threshold" in raw else "confidence_threshold"
            threshold = self._similarity(raw, key, enc, calibrated=calibrated)
            routes.append(self._route(raw, raw.get("utterances"), threshold))
        return self._result(routes, enc, top)

    def redisvl(self, data: dict[str, Any]) -> ImportResult:
        vectorizer = data.get("vectorizer") or {}
        if not isinstance(vectorizer, dict):
            raise ConfigurationError("'vectorizer' must be a mapping with type and model")
        enc = self._encoder(vectorizer.get("type"), vectorizer.get("model"))
        self._unknown(data, _RVL_KEYS, "")
        routing = data.get("routing_config") or {}
        top: float | None = None
        if isinstance(routing, dict):
            if routing.get("distance_threshold") is not None:
                top = self._distance(routing["distance_threshold"], "routing_config", enc)
            extra = {k: v for k, v in routing.items() if k != "distance_threshold"}
            if extra:
                self.notes.append(
                    f"routing_config {extra}: semrouter returns the best route (top_routes(limit=) "
                    "for more) and scores a route by its best hit where thresholds carried over"
                )
        routes = []
        for raw in self._route_list(data):
            label = f"route {raw.get('name')!r}: "
            self._unknown(raw, _RVL_ROUTE_KEYS, label)
            threshold = None
            if raw.get("distance_threshold") is not None:
                threshold = self._distance(raw["distance_threshold"], label.rstrip(": "), enc)
            routes.append(self._route(raw, raw.get("references"), threshold))
        name = data.get("name")
        collection = _collection_name(name) if isinstance(name, str) else None
        return self._result(routes, enc, top, collection)

    # -- helpers ---------------------------------------------------------------------------------
    def _encoder(self, kind: Any, name: Any) -> EncoderMapping:
        enc = map_encoder(
            kind if isinstance(kind, str) else None,
            name if isinstance(name, str) else None,
            local_fallback=self.local_fallback,
        )
        self.notes.append(enc.note)
        return enc

    def _route_list(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        routes = data.get("routes")
        if not isinstance(routes, list):
            raise ConfigurationError("the file has no 'routes' list")
        for raw in routes:
            if not isinstance(raw, dict):
                raise ConfigurationError(f"a route must be a mapping, got {type(raw).__name__}")
        return routes

    def _unknown(self, data: dict[str, Any], known: set[str], label: str) -> None:
        for key in data:
            if key not in known:
                self.notes.append(f"{label}key {key!r} is not used by semrouter: not imported")

    def _similarity(
        self, data: dict[str, Any], key: str, enc: EncoderMapping, *, calibrated: bool
    ) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        label = f"route {data['name']!r}" if "name" in data and "routes" not in data else "router"
        if calibrated:
            self.notes.append(f"{label}: {key}={value!r} is a calibrated confidence: dropped")
            return None
        if not enc.same_model:
            self.notes.append(
                f"{label}: {key}={value!r} was measured with {enc.source}, not the target "
                "encoder: dropped (the encoder's default applies; router.fit() learns new ones)"
            )
            return None
        number = _number(value, f"{label} {key}")
        self.carried += 1
        return number

    def _distance(self, value: Any, label: str, enc: EncoderMapping) -> float | None:
        distance = _number(value, f"{label} distance_threshold")
        if not enc.same_model:
            self.notes.append(
                f"{label}: distance_threshold={distance!r} was measured with {enc.source}: "
                "dropped (the encoder's default applies)"
            )
            return None
        similarity = round(1.0 - distance, 6)
        if not -1.0 <= similarity <= 1.0:
            raise ConfigurationError(f"{label}: distance_threshold {distance} is not in [0, 2]")
        self.notes.append(
            f"{label}: cosine distance_threshold {distance} -> similarity threshold {similarity}"
        )
        self.carried += 1
        return similarity

    def _route(self, raw: dict[str, Any], utterances: Any, threshold: float | None) -> Route | None:
        name = raw.get("name")
        if not utterances:
            self.notes.append(f"route {name!r} has no utterances: not imported")
            return None
        given = raw.get("metadata")
        if given is not None and not isinstance(given, dict):
            raise ConfigurationError(
                f"route {name!r}: metadata must be a mapping, got {type(given).__name__}"
            )
        metadata = dict(given or {})
        schemas = raw.get("function_schemas")
        if schemas:
            size = len(json.dumps(schemas, ensure_ascii=False, default=str))
            if size + len(json.dumps(metadata, default=str)) < MAX_METADATA_CHARS:
                metadata["function_schemas"] = schemas
                kept = "kept in the route's metadata['function_schemas']"
            else:
                kept = "too large for route metadata: dropped"
            self.notes.append(
                f"route {name!r}: function_schemas (a dynamic route) is not run by semrouter, "
                f"which only chooses the route; {kept}"
            )
        if raw.get("llm"):
            self.notes.append(f"route {name!r}: its 'llm' setting is not imported")
        return Route(
            name=name,
            utterances=utterances,
            description=raw.get("description"),
            threshold=threshold,
            metadata=metadata,
        )

    def _result(
        self,
        routes: list[Route | None],
        enc: EncoderMapping,
        threshold: float | None,
        collection: str | None = None,
    ) -> ImportResult:
        kept = validate_routes([r for r in routes if r is not None])
        if not kept:
            raise ConfigurationError("the file has no route with utterances")
        if self.carried:
            self.notes.append(
                "aggregation 'max': the source tested a route's best hit against its threshold; "
                "semrouter's default (mean of the 2 best) scores lower, so the imported "
                "thresholds would reject more"
            )
        return ImportResult(
            source_format=self.fmt,
            routes=tuple(kept),
            encoder=enc.spec,
            source_encoder=enc.source,
            threshold=threshold,
            aggregation="max" if self.carried else None,
            collection=collection,
            notes=tuple(self.notes),
        )


def _number(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{label} must be a number, got {value!r}")
    return float(value)


def _collection_name(name: str) -> str | None:
    clean = _COLLECTION.sub("-", name).strip("-._")[:128]
    return clean or None
