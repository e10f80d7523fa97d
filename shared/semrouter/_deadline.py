"""HTTP transports that hold each request to one budget, from connecting to the last byte.

httpx's timeouts bound each socket operation, not a request: a server that drips one byte every
half second never trips a one-second read timeout, and qdrant-client rounds its timeout up to
whole seconds. These transports (handed to qdrant-client's REST clients) give every request one
deadline in fractional seconds:

- sync: a network backend whose every connect, read and write waits at most what is left of
  the request's deadline (the deadline travels in a context variable set per request);
- async: the request and its body read inside ``asyncio.timeout`` (``asyncio.wait_for`` before
  Python 3.11).

The body is read inside the transport so that the deadline covers it.

The transports speak to clients of httpx or of an API-compatible fork (``httpx2``, which the
OpenAI SDK uses from version 3): ``flavour=`` names the module whose responses, errors and async
pools they hand back; the sync transport does its own I/O through ``httpcore`` either way.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import httpcore
import httpx

__all__ = ["deadline_transports"]

_TIMEOUT: Any = getattr(asyncio, "timeout", None)
_DEADLINE: ContextVar[float | None] = ContextVar("semrouter_http_deadline", default=None)

# httpcore's errors as httpx's (qdrant-client expects httpx's, as from httpx's own transport).
_ERRORS: list[tuple[type[Exception], type[httpx.TransportError]]] = [
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
]


def deadline_transports(
    seconds: float, *, keepalive: bool = True, flavour: ModuleType = httpx
) -> tuple[httpx.BaseTransport, httpx.AsyncBaseTransport]:
    """A sync and an async transport that end every request after ``seconds`` in all.

    Args:
        seconds: the budget of each request, connect to last byte.
        keepalive: reuse connections. qdrant-client turns it off for ``localhost`` and
            ``127.0.0.1`` ("in some cases, it may cause extra delays"); so does the location.
        flavour: the httpx module of the client the transports are mounted on (``httpx``, or
            an API-compatible fork such as ``httpx2``).
    """
    return (
        _DeadlineTransport(seconds, keepalive, flavour),
        _AsyncDeadlineTransport(seconds, keepalive, flavour),
    )


def _limits(keepalive: bool, flavour: ModuleType = httpx) -> httpx.Limits:
    # httpx's defaults, or qdrant-client's for local servers (no connection kept).
    if keepalive:
        limits: httpx.Limits = flavour.Limits(max_connections=100, max_keepalive_connections=20)
    else:
        limits = flavour.Limits(max_connections=None, max_keepalive_connections=0)
    return limits


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request ran out of its time budget")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wait = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, wait, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        wait = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, wait, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.BaseTransport):
    def __init__(self, seconds: float, keepalive: bool, flavour: ModuleType = httpx) -> None:
        self._seconds = seconds
        self._flavour = flavour
        self._response: type[httpx.Response] = flavour.Response
        self._stream: type[httpx.ByteStream] = flavour.ByteStream
        limits = _limits(keepalive)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_Backend(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        token = _DEADLINE.set(time.monotonic() + self._seconds)
        try:
            with _mapped(request, self._flavour):
                core = httpcore.Request(
                    method=request.method,
                    url=httpcore.URL(
                        scheme=request.url.raw_scheme,
                        host=request.url.raw_host,
                        port=request.url.port,
                        target=request.url.raw_path,
                    ),
                    headers=request.headers.raw,
                    content=request.stream,
                    extensions=request.extensions,
                )
                response = self._pool.handle_request(core)
                try:
                    body = b"".join(response.iter_stream())
                finally:
                    response.close()
        finally:
            _DEADLINE.reset(token)
        return self._response(
            status_code=response.status,
            headers=response.headers,
            stream=self._stream(body),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _AsyncDeadlineTransport(httpx.AsyncBaseTransport):
    """Connections belong to the event loop that opened them: each loop gets its own pool, so a
    router used from one ``asyncio.run`` after another never touches a closed loop's sockets."""

    def __init__(self, seconds: float, keepalive: bool, flavour: ModuleType = httpx) -> None:
        self._seconds = seconds
        self._flavour = flavour
        self._limits = _limits(keepalive, flavour)
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport]
        self._pools = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _pool(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.get(loop)
            if pool is None:
                pool = self._pools[loop] = self._flavour.AsyncHTTPTransport(limits=self._limits)
            return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pool()

        async def whole() -> httpx.Response:
            response = await pool.handle_async_request(request)
            try:
                body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            finally:
                await response.aclose()
            whole_response: httpx.Response = self._flavour.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=self._flavour.ByteStream(body),
                extensions=response.extensions,
            )
            return whole_response

        try:
            if _TIMEOUT is not None:  # Python 3.11+: no extra task per request
                async with _TIMEOUT(self._seconds):
                    return await whole()
            return await asyncio.wait_for(whole(), self._seconds)
        except asyncio.TimeoutError:
            raise self._flavour.ReadTimeout(
                f"no complete answer within {self._seconds:g} s", request=request
            ) from None

    async def aclose(self) -> None:
        # Only this loop's pool can be closed here; the others' loops are gone or elsewhere.
        with self._lock:
            pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()


@contextmanager
def _mapped(request: httpx.Request, flavour: ModuleType = httpx) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_error, http_error in _ERRORS:
            if isinstance(exc, core_error):
                mapped = getattr(flavour, http_error.__name__)
                raise mapped(str(exc) or type(exc).__name__, request=request) from exc
        raise
