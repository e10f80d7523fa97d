"""Where a router's Qdrant collection lives: one validated, frozen value.

A :class:`QdrantLocation` is one of

- nothing given: a temporary embedded collection (Qdrant Edge in a temporary folder);
- ``path``: a persistent embedded collection in that folder;
- ``url`` (with ``api_key``, ``prefer_grpc``, ``grpc_port``, ``timeout``): a Qdrant server;
- ``client`` (with an optional ``aclient``): ready qdrant-client clients.

:meth:`QdrantLocation.open_store` opens the collection; the store it returns owns (and closes)
the clients the location made. :meth:`QdrantLocation.to_config` writes the location without
secrets; :meth:`QdrantLocation.from_config` reads it back, resolving paths relative to the
config file and refusing paths outside its folder unless the caller opts in.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from .._deadline import deadline_transports
from .._exceptions import (
    ConfigurationError,
    ReadOnlyRouterError,
    SemRouterError,
    backend_errors,
    redact_url,
    register_secret,
)
from ._base import Store
from ._client import ClientStore
from ._edge import EdgeStore

__all__ = ["QdrantLocation", "resolve_config_path"]

#: Qdrant's default ports: a URL naming the REST one is dialled on the gRPC one with
#: ``prefer_grpc=True`` (as qdrant-client does); any other port in the URL is dialled as given.
REST_PORT = 6333
GRPC_PORT = 6334
#: Longest timeout accepted (seconds): anything longer is a mistake, not a deadline.
MAX_TIMEOUT = 24 * 3600.0
_CONFIG_KEYS = frozenset({"path", "url", "prefer_grpc", "grpc_port", "timeout"})


class QdrantLocation(BaseModel):
    """Where the route collection lives, validated once and never changed.

    Args:
        path: a folder for a persistent embedded collection (Qdrant Edge).
        url: a Qdrant server, ``http://`` or ``https://``.
        api_key: the server's API key (kept as a ``SecretStr``: never shown or saved).
        prefer_grpc: talk gRPC to the server.
        grpc_port: the gRPC port; by default the URL's port, or 6334 when the URL names none
            or names 6333 (Qdrant's REST port).
        timeout: seconds each request to the server may take in all (connecting, sending
            and reading the whole answer), fractions allowed.
        client: a ready ``QdrantClient`` (closed by its owner, not by semrouter).
        aclient: a ready ``AsyncQdrantClient`` on the same storage, beside ``client``.

    Example:
        >>> QdrantLocation(url="http://localhost:6333", api_key="s3cret", timeout=2)
        QdrantLocation(url='http://localhost:6333', timeout=2.0)
        >>> QdrantLocation(url="http://localhost:6333", prefer_grpc=True).endpoint
        'http://localhost:6334 (gRPC)'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    path: Path | None = None
    url: str | None = None
    api_key: SecretStr | None = None
    prefer_grpc: bool = False
    grpc_port: int | None = None
    timeout: float = 5.0
    client: Any = None
    aclient: Any = None

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | SecretStr | None = None,
        prefer_grpc: bool = False,
        grpc_port: int | None = None,
        timeout: float = 5.0,
        client: Any = None,
        aclient: Any = None,
    ) -> None:
        data = {
            "path": path,
            "url": url,
            "api_key": api_key,
            "prefer_grpc": prefer_grpc,
            "grpc_port": grpc_port,
            "timeout": timeout,
            "client": client,
            "aclient": aclient,
        }
        try:
            super().__init__(**data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(f"invalid Qdrant location: {_problems(exc)}") from None

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> QdrantLocation:
        # A deep copy would copy the live clients; an immutable value can share them.
        return self.__copy__()

    # -- validation ---------------------------------------------------------------------------
    @field_validator("path", mode="before")
    @classmethod
    def _check_path(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"path must be a str or a path, got {type(value).__name__}")
        text = os.fspath(value)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("path must not be empty")
        if text == ":memory:":
            raise ValueError("leave path unset for a temporary in-memory collection")
        if "\x00" in text:
            raise ValueError("path must not contain NUL characters")
        return Path(text)

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"url must be a str, got {type(value).__name__}")
        _parse_url(value)
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _check_key(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"api_key must be a str, got {type(value).__name__}")
        return SecretStr(value) if value else None

    @field_validator("prefer_grpc", mode="before")
    @classmethod
    def _check_flag(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"prefer_grpc must be true or false, got {value!r}")
        return value

    @field_validator("grpc_port", mode="before")
    @classmethod
    def _check_port(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ValueError(f"grpc_port must be a whole number from 1 to 65535, got {value!r}")
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"timeout must be a number of seconds, got {value!r}")
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if not 0 < seconds <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
        return seconds

    @model_validator(mode="after")
    def _check_combination(self) -> QdrantLocation:
        given = [n for n in ("path", "url", "client") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of path, url and client (got {', '.join(given)})")
        if self.url is None:
            extra = [
                name
                for name, value in (
                    ("api_key", self.api_key),
                    ("grpc_port", self.grpc_port),
                    ("prefer_grpc", self.prefer_grpc or None),
                )
                if value is not None
            ]
            if extra:
                raise ValueError(
                    f"{', '.join(extra)} {'goes' if len(extra) == 1 else 'go'} with url; "
                    "an injected client carries its own settings"
                )
        if self.aclient is not None and self.client is None:
            raise ValueError("aclient goes beside client (give both)")
        return self

    # -- what it says -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"memory"``, ``"path"``, ``"url"`` or ``"client"``."""
        if self.path is not None:
            return "path"
        if self.url is not None:
            return "url"
        return "client" if self.client is not None else "memory"

    @property
    def port(self) -> int | None:
        """The port dialled: the gRPC port with ``prefer_grpc``, else the URL's REST port."""
        if self.url is None:
            return None
        parts = _parse_url(self.url)
        if self.prefer_grpc:
            if self.grpc_port is not None:
                return self.grpc_port
            return GRPC_PORT if parts.port in (None, REST_PORT) else parts.port
        return parts.port or REST_PORT  # qdrant-client's default for both schemes

    @property
    def endpoint(self) -> str | None:
        """The server as errors name it: no credentials, the port actually dialled, and
        ``(gRPC)`` when gRPC is used."""
        if self.url is None:
            return None
        parts = _parse_url(self.url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        where = f"{parts.scheme}://{host}:{self.port}{parts.path.rstrip('/')}"
        return where + (" (gRPC)" if self.prefer_grpc else "")

    @property
    def target(self) -> str:
        """What a user would recognise in an error: the folder, the server or ``:memory:``."""
        if self.path is not None:
            return str(self.path)
        if self.url is not None:
            return str(self.endpoint)
        return "an injected client" if self.client is not None else ":memory:"

    def __repr_args__(self) -> Any:
        # Only what was set; never the key (SecretStr hides it anyway) or client internals.
        for name in ("path", "url", "prefer_grpc", "grpc_port", "timeout", "client", "aclient"):
            value = getattr(self, name)
            if name == "url" and value is not None:
                value = redact_url(value)
            if value is not None and value is not False:
                yield name, value

    # -- opening ------------------------------------------------------------------------------
    def open_store(self, collection: str, **edge_options: Any) -> Store:
        """Open ``collection`` here; closing the store closes the clients this call made.

        Args:
            collection: the collection name.
            edge_options: keyword arguments for an embedded store (``EdgeStore``'s ``mode=``,
                ``rebuild=`` ...); a server or client location refuses them.
        """
        if edge_options and self.kind in ("url", "client"):
            raise ConfigurationError(
                f"{', '.join(sorted(edge_options))} apply to embedded folders, not to {self.target}"
            )
        if self.client is not None:
            return ClientStore(self.client, collection, aclient=self.aclient, timeout=self.timeout)
        if self.url is not None:
            return self._open_server(collection)
        if self.path is not None:
            check_folder(self.path)
        try:
            return EdgeStore.shared(self.path, collection, **edge_options)
        except SemRouterError:
            raise
        except PermissionError as exc:  # e.g. root on a read-only or special file system
            raise ReadOnlyRouterError(
                f"cannot write in {self.target}: {exc.strerror or exc}"
            ) from exc
        except OSError as exc:
            raise ConfigurationError(f"path {self.target} is not usable: {exc}") from exc

    def _open_server(self, collection: str) -> Store:
        from qdrant_client import AsyncQdrantClient, QdrantClient

        key = self.api_key.get_secret_value() if self.api_key is not None else None
        if key:
            register_secret(key)
        options: dict[str, Any] = {
            "url": self.url,
            "api_key": key,
            "prefer_grpc": self.prefer_grpc,
            "grpc_port": self.port if self.prefer_grpc else GRPC_PORT,
            # qdrant-client rounds timeouts up to whole seconds; the transports below hold
            # every REST call to the exact budget, connect to last byte.
            "timeout": max(1, math.ceil(self.timeout)),
            "check_compatibility": False,  # no version probe: it would call the server
        }
        # Mounted for every URL rather than passed as transport=, so that proxies from the
        # environment (HTTPS_PROXY...) still apply: httpx prefers their more specific mounts.
        # Proxied requests then keep httpx's per-operation timeouts only.
        host = _parse_url(str(self.url)).hostname
        sync_transport, async_transport = deadline_transports(
            self.timeout, keepalive=host not in ("localhost", "127.0.0.1")
        )
        target = self.target
        with backend_errors(target):
            sync_client = QdrantClient(**options, mounts={"all://": sync_transport})
            try:
                with warnings.catch_warnings():  # the sync client just said the same
                    warnings.simplefilter("ignore", UserWarning)
                    async_client = AsyncQdrantClient(**options, mounts={"all://": async_transport})
            except BaseException:
                sync_client.close()
                raise
        return _OwningClientStore(
            sync_client,
            collection,
            aclient=async_client,
            target=target,
            timeout=self.timeout,
        )

    # -- config files -------------------------------------------------------------------------
    def to_config(self, base_dir: str | Path | None = None) -> dict[str, Any]:
        """The location as a config mapping, without secrets.

        A path inside ``base_dir`` (the config file's folder) is written relative to it. An
        injected client cannot be written: its location is left out (pass ``client=`` again
        when loading).
        """
        config: dict[str, Any] = {}
        if self.path is not None:
            config["path"] = _stored_path(self.path, base_dir)
        if self.url is not None:
            config["url"] = redact_url(self.url, mark=False)
            if self.prefer_grpc:
                config["prefer_grpc"] = True
            if self.grpc_port is not None:
                config["grpc_port"] = self.grpc_port
        if self.kind != "client":
            config["timeout"] = self.timeout
        return config

    @classmethod
    def from_config(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: str | Path | None = None,
        api_key: str | SecretStr | None = None,
        allow_outside: bool = False,
    ) -> QdrantLocation:
        """Read a location written by :meth:`to_config`.

        Args:
            data: the mapping (``path``, ``url``, ``prefer_grpc``, ``grpc_port``, ``timeout``).
            base_dir: the config file's folder: a relative ``path`` is resolved against it.
            api_key: the server's key (never in a file).
            allow_outside: accept a ``path`` that is absolute or leads out of ``base_dir``.
                A file from elsewhere must not choose where folders are created.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"index must be a mapping, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in _CONFIG_KEYS)
        if unknown:
            raise ConfigurationError(f"unknown index keys: {', '.join(unknown)}")
        values = dict(data)
        stored = values.get("path")
        if stored is not None:
            if not isinstance(stored, str):
                raise ConfigurationError(f"index path must be a string, got {stored!r}")
            values["path"] = resolve_config_path(stored, base_dir, allow_outside=allow_outside)
        if api_key is not None:
            values["api_key"] = api_key
        return cls(**values)


class _OwningClientStore(ClientStore):
    """A server store that closes the clients its location made for it."""

    def __init__(self, client: Any, collection: str, **kwargs: Any) -> None:
        super().__init__(client, collection, **kwargs)
        self._owned: list[Any] = [client, kwargs.get("aclient")]

    def close(self) -> None:
        super().close()
        owned, self._owned = self._owned, []
        for client in owned:
            close = getattr(client, "close", None)
            if close is None:
                continue
            result = close()
            if hasattr(result, "close"):  # AsyncQdrantClient.close() is a coroutine
                result.close()  # not awaited: there is no loop here; the sockets go with it


def resolve_config_path(
    stored: str, base_dir: str | Path | None, *, allow_outside: bool = False
) -> Path:
    """A folder named in a config file, resolved relative to the file's folder.

    Raises:
        ConfigurationError: when the path is absolute or leads out of ``base_dir`` (through
            ``..`` or a symbolic link) and ``allow_outside`` is false.
    """
    if not stored.strip() or "\x00" in stored:
        raise ConfigurationError(f"index path {stored!r} is not a usable folder name")
    candidate = Path(stored).expanduser() if allow_outside else Path(stored)
    base = Path.cwd() if base_dir is None else Path(base_dir)
    full = candidate if candidate.is_absolute() else base / candidate
    if allow_outside:
        return full
    root = base.resolve()
    try:
        inside = full.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if candidate.is_absolute() or not inside:
        raise ConfigurationError(
            f"index path {stored!r} in the config file leads outside the file's folder "
            f"({root}); pass path= yourself, or load with trusted=True (semrouter --trusted) "
            "if you trust the file"
        )
    return full


def check_folder(path: Path) -> None:
    """Refuse a folder that an embedded collection could not live in, before touching it."""
    try:
        if path.exists():
            if not path.is_dir():
                raise ConfigurationError(f"path {path} exists and is not a folder")
            if not os.access(path, os.W_OK | os.X_OK):
                raise ConfigurationError(f"path {path} is not a writable folder")
            return
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK)):
            raise ConfigurationError(f"path {path} cannot be created: {parent} is not writable")
    except OSError as exc:
        raise ConfigurationError(f"path {path} is not usable: {exc}") from exc


def _parse_url(url: str) -> Any:
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as exc:
        raise ConfigurationError(f"url {shown!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"url {shown!r} must start with http:// or https:// (a Qdrant server); "
            "use path= for a folder"
        )
    if not parts.hostname:
        raise ConfigurationError(f"url {shown!r} names no host")
    if port == 0:
        raise ConfigurationError(f"url {shown!r}: port 0 cannot be dialled")
    return parts


def _stored_path(path: Path, base_dir: str | Path | None) -> str:
    target = path.resolve()
    if base_dir is not None:
        try:
            return str(target.relative_to(Path(base_dir).resolve()))
        except ValueError:
            pass
    return str(target)


def _problems(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    found = []
    for err in errors():
        message = str(err.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        where = ".".join(str(p) for p in err.get("loc", ()))
        found.append(f"{where}: {message}" if where else message)
    return "; ".join(found)
