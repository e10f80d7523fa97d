"""semrouter's exceptions: one tree, rooted at :class:`SemRouterError`.

    SemRouterError
    ├── ConfigurationError        (ValueError)   bad routes, arguments or config files
    │   └── RouteSetMismatchError                declared routes differ from the stored set
    ├── InvalidQueryError         (ValueError)   an empty or blank query
    ├── QueryTypeError            (TypeError)    a query that is not a str
    ├── RouteNotFoundError        (KeyError)     remove/update/get of an unknown route
    ├── RouteSetNotFoundError     (LookupError)  open() of a place that holds no route set
    ├── RouteSetConflictError     (RuntimeError) another writer changed the route set first
    ├── GateRefusedError          (RuntimeError) fit(gate=...) routes a gold set worse
    ├── NoRouteMatchedError       (LookupError)  a caller demanded a match and got none
    ├── MissingDependencyError    (ImportError)  an optional extra is not installed
    ├── EncoderError              (RuntimeError) the encoder failed (model load, API error)
    ├── IndexMismatchError        (ValueError)   a collection made by another encoder/schema
    ├── BackendUnavailableError   (ConnectionError) the Qdrant server cannot be reached
    ├── BackendError              (RuntimeError) the Qdrant server answered with an error
    │                                            status or with something that is not Qdrant's
    ├── RouterLockedError         (RuntimeError) an embedded folder is held by another writer
    ├── ReadOnlyRouterError       (PermissionError) a write through a reader / read-only folder
    ├── StoreDamagedError         (RuntimeError) files of an embedded folder are damaged
    ├── StorageFullError          (OSError)      too little free disk space to open or write
    └── RouterClosedError         (RuntimeError) the router was closed

"No route matched" is a normal result (``RouteMatch.name is None``), not an exception;
:class:`NoRouteMatchedError` is raised only where a caller has no fallback (a branch runnable
with no default, a selector with no fallback choice).

Third-party errors are translated in :func:`backend_errors` and re-raised ``from`` the original,
with every secret semrouter was given (:func:`register_secret`) scrubbed from both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._gate import GateReport

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "EncoderError",
    "GateRefusedError",
    "IndexMismatchError",
    "InvalidQueryError",
    "MissingDependencyError",
    "NoRouteMatchedError",
    "QueryTypeError",
    "ReadOnlyRouterError",
    "RouteNotFoundError",
    "RouteSetConflictError",
    "RouteSetMismatchError",
    "RouteSetNotFoundError",
    "RouterClosedError",
    "RouterLockedError",
    "SemRouterError",
    "StorageFullError",
    "StoreDamagedError",
]


class SemRouterError(Exception):
    """Root of every error semrouter raises on purpose."""


class ConfigurationError(SemRouterError, ValueError):
    """Routes, arguments or a config file are invalid."""


class InvalidQueryError(SemRouterError, ValueError):
    """A query that cannot be routed, such as an empty or whitespace-only string."""


class QueryTypeError(SemRouterError, TypeError):
    """A query that is not a ``str``."""


class RouteNotFoundError(SemRouterError, KeyError):
    """A route name that the router does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class RouteSetNotFoundError(SemRouterError, LookupError):
    """:meth:`SemanticRouter.open` found no route set where it was pointed (a missing folder
    or collection, another tenant's collection, a writer that never published); the message
    names the place. Creating a route set is the constructor's job."""


class RouteSetConflictError(SemRouterError, RuntimeError):
    """Another writer changed the stored route set while a change meant for the version it
    started from was written (``set_routes``, ``sync="replace"``/``"check"``); nothing of the
    change was kept. Read the new route set and apply it again."""


class GateRefusedError(SemRouterError, RuntimeError):
    """``fit(..., gate=(texts, labels))``: the fitted router routes the gold texts significantly
    worse than the one in service, so nothing was stored. ``report`` (a
    :class:`~semrouter.GateReport`) says what got worse."""

    def __init__(self, message: str, report: GateReport) -> None:
        super().__init__(message)
        self.report = report


class NoRouteMatchedError(SemRouterError, LookupError):
    """No route passed its threshold and the caller configured no fallback."""


class MissingDependencyError(SemRouterError, ImportError):
    """An optional extra is needed; the message names the ``pip install`` command."""


class EncoderError(SemRouterError, RuntimeError):
    """The encoder could not load or could not embed the texts."""


class IndexMismatchError(SemRouterError, ValueError):
    """The Qdrant collection was made by another encoder, dimension or schema version."""


class BackendUnavailableError(SemRouterError, ConnectionError):
    """The Qdrant server could not be reached within the timeout."""


class RouterLockedError(SemRouterError, RuntimeError):
    """An embedded folder is held by another writer (process or router); the message names the
    folder and, when known, the holder's pid. Open it with ``mode="read"`` to follow it."""


class ReadOnlyRouterError(SemRouterError, PermissionError):
    """A write through a read-only router (a reader of an embedded folder) or to a folder the
    file system will not let us write."""


class StoreDamagedError(SemRouterError, RuntimeError):
    """Files of an embedded folder are damaged; the message names the folder and the remedy
    (``rebuild=True`` for a folder semrouter made)."""


class StorageFullError(SemRouterError, OSError):
    """Too little free disk space to open or write an embedded folder safely; nothing was
    written. The message names the folder and the space needed."""


class RouteSetMismatchError(ConfigurationError):
    """``sync="check"``: the routes declared in code differ from the stored route set; the
    message names the differences."""


class RouterClosedError(SemRouterError, RuntimeError):
    """The router was closed; open a new one."""


class BackendError(SemRouterError, RuntimeError):
    """The Qdrant server answered with an error status, or with something that is not a Qdrant
    answer (an HTML page, a truncated body)."""


def redact_url(url: str, *, mark: bool = True) -> str:
    """``url`` without credentials: user info and query string are replaced by ``***``
    (or dropped, with ``mark=False``)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = ("***@" if mark else "") + netloc.rsplit("@", 1)[1]
    query = "***" if parts.query and mark else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def missing_dependency(package: str, extra: str) -> MissingDependencyError:
    """Build the error for a missing optional dependency, naming the install command."""
    return MissingDependencyError(
        f"{package} is not installed; run: pip install 'semrouter[{extra}]'"
    )


@contextmanager
def backend_errors(target: str) -> Iterator[None]:
    """Translate qdrant-client's failures into semrouter errors, secrets scrubbed.

    - connection failures and timeouts: :class:`BackendUnavailableError`;
    - an HTTP error status (``UnexpectedResponse``): :class:`BackendError` with the status and
      the start of the answer;
    - a 2xx answer that is not Qdrant's (``ResponseHandlingException`` around a parse error,
      ``JSONDecodeError``): :class:`BackendError`.

    Every registered secret (:func:`register_secret`) is removed from the new message and from
    the original exception, which stays chained as ``__cause__`` and is printed in tracebacks.

    Args:
        target: what was being reached (a URL or a path), named in the message.
    """
    try:
        yield
    except SemRouterError:
        raise
    except Exception as exc:
        mapped = _map_backend_error(exc, target)
        if mapped is None:
            raise
        scrub_exception(exc)
        raise mapped from exc


def _map_backend_error(exc: Exception, target: str) -> SemRouterError | None:
    import json

    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        status = f"{exc.status_code} {exc.reason_phrase}".strip()
        if exc.status_code in (502, 503, 504):
            return BackendUnavailableError(
                f"Qdrant at {target} is unavailable (HTTP {status}): {_excerpt(exc.content)}"
            )
        return BackendError(f"Qdrant at {target} answered HTTP {status}: {_excerpt(exc.content)}")
    # A 2xx answer that does not parse: qdrant-client wraps pydantic's error, or lets a
    # JSONDecodeError through. (A bare ValidationError is not about an answer: left alone.)
    wrapped = isinstance(exc, ResponseHandlingException)
    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, json.JSONDecodeError) or (wrapped and _is_parse_error(source)):
        return BackendError(
            f"{target} answered with something that is not a Qdrant response "
            f"({type(source).__name__}); is the URL a Qdrant server (of a version this "
            "qdrant-client reads)?"
        )
    if _is_connection_failure(exc):
        detail = scrub(f"{type(source).__name__}: {source}")
        return BackendUnavailableError(f"Qdrant at {target} is unreachable: {detail}")
    code = _grpc_code(exc)
    if code is not None:
        details = exc.details() if callable(getattr(exc, "details", None)) else ""  # type: ignore[attr-defined]
        return BackendError(f"Qdrant at {target} answered gRPC {code}: {_excerpt(details)}")
    return None


def _grpc_code(exc: BaseException) -> str | None:
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpc ships with qdrant-client
        return None
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        code = exc.code()
        return str(getattr(code, "name", code))
    return None


def _is_parse_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    return isinstance(exc, ValidationError)


def _excerpt(content: Any, limit: int = 200) -> str:
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    text = scrub(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- secrets ----------------------------------------------------------------------------------
# Secrets handed to semrouter (Qdrant API keys). A server may echo a key in an error; every
# message built from a third-party error is scrubbed of all of them. Shorter strings are not
# scrubbed: replacing them would mangle ordinary text, and they are not secrets worth the name.
_MIN_SECRET_LEN = 8
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(secret: str) -> None:
    """Scrub ``secret`` from every error :func:`backend_errors` raises from now on."""
    if isinstance(secret, str) and len(secret) >= _MIN_SECRET_LEN:
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def scrub_exception(exc: BaseException) -> None:
    """Remove registered secrets from ``exc`` and the exceptions chained to it, in place."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(scrub(a) if isinstance(a, str) else a for a in current.args)
        for name in ("content", "message", "reason_phrase"):
            value = getattr(current, name, None)
            try:
                if isinstance(value, bytes):
                    setattr(current, name, scrub(value.decode("utf-8", "replace")).encode())
                elif isinstance(value, str):
                    setattr(current, name, scrub(value))
            except AttributeError:  # a read-only property
                pass
        source = getattr(current, "source", None)
        if isinstance(source, BaseException):
            scrub_exception(source)
        current = current.__cause__ or current.__context__


def _is_connection_failure(exc: BaseException) -> bool:
    # Imported lazily: httpx/grpc come with qdrant-client but we only need them on failure.
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    if isinstance(exc, (ConnectionError, TimeoutError, httpx.TransportError)):
        return True
    if isinstance(exc, ResponseHandlingException):
        return True
    try:
        import grpc

        if isinstance(exc, grpc.RpcError):
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    except ImportError:  # pragma: no cover - grpc ships with qdrant-client
        pass
    return False
