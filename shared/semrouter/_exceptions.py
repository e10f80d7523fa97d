"""semrouter's exceptions: one tree, rooted at :class:`SemRouterError`.

    SemRouterError
    ├── ConfigurationError        (ValueError)   bad routes, arguments or config files
    ├── InvalidQueryError         (ValueError)   an empty or blank query
    ├── QueryTypeError            (TypeError)    a query that is not a str
    ├── RouteNotFoundError        (KeyError)     remove/update/get of an unknown route
    ├── NoRouteMatchedError       (LookupError)  a caller demanded a match and got none
    ├── MissingDependencyError    (ImportError)  an optional extra is not installed
    ├── EncoderError              (RuntimeError) the encoder failed (model load, API error)
    ├── IndexMismatchError        (ValueError)   a collection made by another encoder/schema
    └── BackendUnavailableError   (ConnectionError) the Qdrant server cannot be reached

"No route matched" is a normal result (``RouteMatch.name is None``), not an exception;
:class:`NoRouteMatchedError` is raised only where a caller has no fallback (a branch runnable
with no default, a selector with no fallback choice).

Third-party errors are translated in :func:`backend_errors` and re-raised ``from`` the original.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "EncoderError",
    "IndexMismatchError",
    "InvalidQueryError",
    "MissingDependencyError",
    "NoRouteMatchedError",
    "QueryTypeError",
    "RouteNotFoundError",
    "SemRouterError",
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
    """Translate connection failures of the Qdrant client into :class:`BackendUnavailableError`.

    Args:
        target: what was being reached (a URL or a path), named in the message.
    """
    try:
        yield
    except SemRouterError:
        raise
    except Exception as exc:
        if _is_connection_failure(exc):
            raise BackendUnavailableError(
                f"Qdrant at {target} is unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        raise


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
