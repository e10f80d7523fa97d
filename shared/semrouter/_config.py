"""Save and load routers as YAML or JSON: routes, encoder spec, Qdrant location; never secrets.

Files are parsed with ``yaml.safe_load`` / ``json.loads`` only (no object construction), size-
capped, and validated by pydantic before anything is built. Only regular files are read (a FIFO
would block forever).

A router file may come from someone else, so what it can reach is limited unless the caller
passes ``trusted=True`` to ``SemanticRouter.load``:

- ``index.path`` resolves relative to the file and must stay inside the file's folder (no
  absolute paths, no ``..`` or symbolic links out of it), and a collection folder shipped
  beside the file may hold only folders and regular files (no symbolic link, FIFO or device);
- an encoder ``base_url`` that the user did not choose (anything but OpenAI's API or
  ``$OPENAI_BASE_URL``) never receives ``$OPENAI_API_KEY``: pass ``encoder=`` or trust the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._aggregation import Aggregation
from ._exceptions import ConfigurationError
from ._options import RouterOptions
from ._routes import Route, validate_routes
from ._routeset import Calibration
from ._safe_files import MAX_FILE_BYTES, read_text_file, refuse_links, write_atomic
from ._stores._location import QdrantLocation, check_folder
from .encoders import encoder_from_config

__all__ = [
    "RouterConfig",
    "RouterSpec",
    "dump_config",
    "load_router_kwargs",
    "read_config",
    "save_router",
]

CONFIG_VERSION = 1
MAX_CONFIG_BYTES = MAX_FILE_BYTES


class IndexConfig(BaseModel):
    """Where the Qdrant collection lives (no API key: pass ``api_key=`` when loading)."""

    model_config = ConfigDict(extra="forbid")

    collection: str = "semrouter"
    path: str | None = None
    url: str | None = None
    prefer_grpc: bool = False
    grpc_port: int | None = None
    timeout: float = 5.0


class RouterConfig(BaseModel):
    """The content of a router file."""

    model_config = ConfigDict(extra="forbid")

    version: int = CONFIG_VERSION
    routes: list[dict[str, Any]]
    encoder: dict[str, Any] = Field(default_factory=lambda: {"type": "local"})
    index: IndexConfig = Field(default_factory=IndexConfig)
    options: dict[str, Any] = Field(default_factory=dict)
    # Before options were saved whole, three of them were top-level keys: still read.
    threshold: float | None = None
    aggregation: Aggregation | None = None
    top_k: int | None = None
    calibration: dict[str, Any] | None = None


@dataclass(frozen=True)
class RouterSpec:
    """Everything a router file holds, as typed values (what ``SemanticRouter.save`` writes)."""

    routes: Sequence[Route]
    encoder: dict[str, Any]
    location: QdrantLocation
    collection: str
    options: RouterOptions
    calibration: Calibration | None


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases: a router file never needs them, and nested
    aliases ("billion laughs") expand a few hundred bytes into gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.YAMLError(
                f"aliases are not allowed in router files (line {event.start_mark.line + 1})"
            )
        return super().compose_node(parent, index)


def _format(path: Path) -> Literal["yaml", "json"]:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    raise ConfigurationError(f"{path}: use a .yaml, .yml or .json file")


def read_config(path: Path) -> RouterConfig:
    """Parse and validate a router file."""
    fmt = _format(path)
    text = read_text_file(path, limit=MAX_CONFIG_BYTES)
    try:
        data = yaml.load(text, Loader=_NoAliasLoader) if fmt == "yaml" else json.loads(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError also covers integers of more than 4,300 digits (Python's str->int cap).
        raise ConfigurationError(f"{path} is not valid {fmt.upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a mapping at the top level")
    try:
        config = RouterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    if config.version != CONFIG_VERSION:
        raise ConfigurationError(f"{path}: config version {config.version} is not supported")
    return config


def load_router_kwargs(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``SemanticRouter`` from a file, with ``overrides`` on top.

    ``overrides`` may hold ``trusted=True``: the file may then name any folder and send
    ``$OPENAI_API_KEY`` to any ``base_url`` (see the module docstring).
    """
    overrides = dict(overrides)
    trusted = overrides.pop("trusted", False)
    if not isinstance(trusted, bool):
        raise ConfigurationError("trusted must be True or False")
    config = read_config(path)
    routes = validate_routes([Route.from_dict(r) for r in config.routes])
    kwargs: dict[str, Any] = {
        "routes": routes,
        "collection": config.index.collection,
        "options": _options(config),
        "calibration": config.calibration,
    }
    if not any(key in overrides for key in ("path", "url", "client", "location")):
        # the file's location, whole (gRPC port included); paths resolve beside the file
        kwargs["location"] = QdrantLocation.from_config(
            config.index.model_dump(exclude={"collection"}, exclude_none=True),
            base_dir=path.absolute().parent,
            api_key=overrides.pop("api_key", None),
            allow_outside=trusted,
        )
        folder = kwargs["location"].path
        if folder is not None:
            check_folder(folder)
            if not trusted:
                _check_shipped_folder(folder / config.index.collection, path)
    else:
        kwargs.update(timeout=config.index.timeout, prefer_grpc=config.index.prefer_grpc)
    if "encoder" not in overrides:
        if not trusted:
            _check_key_destination(config.encoder, path)
        kwargs["encoder"] = encoder_from_config(config.encoder)
    kwargs.update(overrides)
    return kwargs


def _check_shipped_folder(folder: Path, path: Path) -> None:
    """Refuse a collection folder that came with an untrusted file and holds a symbolic link
    (semrouter or Qdrant Edge would write wherever it points) or a FIFO or device (a read would
    block), or that a collection name such as ``..`` puts outside the file's folder."""
    root = path.absolute().parent.resolve()
    try:
        inside = folder.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    trust = "load with trusted=True (semrouter --trusted) if you trust the file"
    if not inside:
        raise ConfigurationError(
            f"the collection folder {folder} named by {path} leads outside the file's folder "
            f"({root}); pass path= yourself, or {trust}"
        )
    refuse_links(
        folder,
        f"the collection folder of a router file from elsewhere may hold only folders and "
        f"regular files (semrouter never writes through a link): remove it, or {trust}",
    )


def _check_key_destination(spec: dict[str, Any], path: Path) -> None:
    """Refuse a file that would send the environment's API key to a host the file chose."""
    if spec.get("type") != "openai" or spec.get("api_key") is not None:
        return
    from .encoders._openai import untrusted_key_destination

    host = untrusted_key_destination(spec.get("base_url"))
    if host is not None:
        raise ConfigurationError(
            f"{path} names the encoder server {host}, which would receive $OPENAI_API_KEY; "
            "pass encoder= yourself, set OPENAI_BASE_URL to it, or load with trusted=True "
            "(semrouter --trusted) if you trust the file"
        )


def _options(config: RouterConfig) -> RouterOptions:
    legacy = {
        key: value
        for key, value in (
            ("threshold", config.threshold),
            ("aggregation", config.aggregation),
            ("top_k", config.top_k),
        )
        if value is not None
    }
    return RouterOptions.build(**{**legacy, **config.options})


def save_router(spec: RouterSpec, path: Path) -> None:
    """Write ``spec`` to ``path`` (format from the suffix), atomically."""
    _format(path)
    index = IndexConfig(
        collection=spec.collection, **spec.location.to_config(path.absolute().parent)
    )
    config = RouterConfig(
        routes=[route.model_dump(mode="json", exclude_defaults=True) for route in spec.routes],
        encoder=spec.encoder,
        index=index,
        options=spec.options.model_dump(mode="json"),
        calibration=spec.calibration.model_dump(mode="json") if spec.calibration else None,
    )
    text = dump_config(config, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), durable=False)


def dump_config(config: RouterConfig, path: Path) -> str:
    """The text of a router file as :func:`save_router` writes it (format from the suffix)."""
    fmt = _format(path)
    data = config.model_dump(mode="json", exclude_none=True)
    return (
        # allow_unicode=False: PyYAML writes some code points (U+0085) raw and reads them back
        # as line breaks; escaped, every string round-trips exactly.
        yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
        if fmt == "yaml"
        else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    )
