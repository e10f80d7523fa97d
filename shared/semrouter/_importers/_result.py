"""What an import produces: routes, an encoder spec, options and every note on what changed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import ValidationError

from .._exceptions import ConfigurationError
from .._routes import Route
from .._safe_files import write_atomic
from ..encoders import Encoder

if TYPE_CHECKING:
    from .._router import SemanticRouter

__all__ = ["ImportResult", "SourceFormat"]

SourceFormat = Literal[
    "semantic-router-0", "semantic-router-1", "redisvl", "semantic-router-qdrant"
]


@dataclass(frozen=True)
class ImportResult:
    """A router read from another library's file or collection, ready to save or build.

    Attributes:
        source_format: which format was read.
        routes: the routes, with descriptions, metadata and the thresholds that carried over.
        encoder: the semrouter encoder spec (as in a config file's ``encoder:``), or ``None``
            when the source's encoder has no semrouter counterpart and no fallback was asked for.
        source_encoder: the source's encoder as ``"type:name"``.
        threshold: router-wide threshold (cosine similarity), where one carried over.
        aggregation: ``"max"`` where a threshold carried over (every source compares a route's
            best single hit with its threshold); ``None`` leaves semrouter's default.
        collection: a collection name taken from the source, if it had one.
        notes: every conversion made and every part not imported, in words.
        vectors: for a Qdrant import whose vectors were checked to come from the target
            encoder, ``(route, utterance) -> vector``; see :meth:`seeded_encoder`.

    Example:
        >>> from semrouter import import_router  # doctest: +SKIP
        >>> result = import_router("router.json")  # doctest: +SKIP
        >>> result.save("router.yaml")  # doctest: +SKIP
    """

    source_format: SourceFormat
    routes: tuple[Route, ...]
    encoder: dict[str, Any] | None
    source_encoder: str | None = None
    threshold: float | None = None
    aggregation: Literal["mean", "max"] | None = None
    collection: str | None = None
    notes: tuple[str, ...] = ()
    vectors: Mapping[tuple[str, str], npt.NDArray[np.float32]] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        """The semrouter config file content, as a plain mapping."""
        if self.encoder is None:
            raise ConfigurationError(
                f"no semrouter encoder for {self.source_encoder!r}: import again with "
                "local_fallback=True (CLI: --local) to use the local default, thresholds dropped"
            )
        config: dict[str, Any] = {
            "version": 1,
            "routes": [r.model_dump(mode="json", exclude_defaults=True) for r in self.routes],
            "encoder": dict(self.encoder),
        }
        if self.collection:
            config["index"] = {"collection": self.collection}
        if self.threshold is not None:
            config["threshold"] = self.threshold
        if self.aggregation is not None:
            config["aggregation"] = self.aggregation
        _validate(config)
        return config

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML or JSON (from the suffix) for ``SemanticRouter.load``."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".yaml", ".yml", ".json"):
            raise ConfigurationError(f"{target}: use a .yaml, .yml or .json file")
        data = self.to_config()
        text = (
            # Escaped, every string round-trips exactly (as semrouter's own writer does).
            yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
            if suffix != ".json"
            else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, text.encode("utf-8"), durable=False)
        except OSError as exc:
            raise ConfigurationError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target

    def to_router(self, *, encoder: Encoder | None = None, **kwargs: Any) -> SemanticRouter:
        """Build the router: the imported routes and options, reused vectors not re-encoded.

        Args:
            encoder: default: the encoder of :attr:`encoder` (the spec); for a Qdrant import,
                pass the encoder the vectors were checked against.
            kwargs: any other :class:`~semrouter.SemanticRouter` argument (``path=``, ``url=``,
                ``collection=``...); they win over the imported options.
        """
        from .._router import SemanticRouter
        from ..encoders import encoder_from_config

        if encoder is None:
            encoder = encoder_from_config(self.to_config()["encoder"])
        if self.threshold is not None:
            kwargs.setdefault("threshold", self.threshold)
        if self.aggregation is not None:
            kwargs.setdefault("aggregation", self.aggregation)
        if self.collection:
            kwargs.setdefault("collection", self.collection)
        return SemanticRouter(self.routes, encoder=self.seeded_encoder(encoder), **kwargs)

    def seeded_encoder(self, encoder: Encoder) -> Encoder:
        """``encoder``, answering the imported utterances from the reused vectors.

        Pass it to :class:`~semrouter.SemanticRouter` with :attr:`routes`: the index is filled
        without re-encoding them; any other text goes to ``encoder``. The fingerprint is
        ``encoder``'s, so the collection stays usable with ``encoder`` alone afterwards.
        """
        if not self.vectors:
            return encoder
        return _SeededEncoder(encoder, {u: v for (_, u), v in self.vectors.items()})


class _SeededEncoder(Encoder):
    def __init__(self, inner: Encoder, known: dict[str, npt.NDArray[np.float32]]) -> None:
        self._inner = inner
        self._known = known
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.default_threshold = inner.default_threshold
        self.batch_size = inner.batch_size
        self.config_type = inner.config_type  # type: ignore[misc]

    @property
    def fingerprint(self) -> str:
        return self._inner.fingerprint

    def encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._known]
        fresh = dict(zip(missing, self._inner.encode(missing))) if missing else {}
        rows = [self._known[t] if t in self._known else fresh[t] for t in texts]
        return np.stack(rows).astype(np.float32, copy=False)

    def to_config(self) -> dict[str, Any]:
        return self._inner.to_config()

    def __repr__(self) -> str:
        return f"{self._inner!r} (with {len(self._known)} imported vectors)"


def _validate(config: dict[str, Any]) -> None:
    from .._config import RouterConfig

    try:
        RouterConfig.model_validate(config)
    except ValidationError as exc:  # pragma: no cover - we build the mapping ourselves
        raise ConfigurationError(f"the imported config is not valid: {exc}") from exc
