"""Servers that answer badly (issue 12, points 5, 8, 9 and 10).

Loopback servers stand in for a Qdrant server or an OpenAI-compatible one that echoes secrets,
answers HTML, drips its answer byte by byte, or listens on an unexpected port. Every failure
must be a semrouter error, on time, with no secret anywhere in the traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from semrouter import (
    BackendUnavailableError,
    EncoderError,
    FakeEncoder,
    Route,
    SemanticRouter,
    SemRouterError,
)
from semrouter._exceptions import BackendError
from semrouter._stores._location import QdrantLocation
from tests.support.loopback import tcp_server

KEY = "qdrant-secret-key-0123456789abcdef"
ROUTES = [Route("greet", ["hello there"]), Route("bye", ["goodbye now"])]

Answer = Callable[[BaseHTTPRequestHandler], tuple[int, str, bytes]]


def _handler(answer: Answer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, kind, body = answer(self)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _reply

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _serve(answer: Answer) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def echoing_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server that puts the ``api-key`` header it received into its error answer."""
    status = getattr(request, "param", 403)

    def answer(handler: BaseHTTPRequestHandler) -> tuple[int, str, bytes]:
        key = handler.headers.get("api-key", "")
        body = f'{{"status": {{"error": "key {key} is not allowed here"}}, "time": 0.0}}'
        return status, "application/json", body.encode()

    yield from _serve(answer)


@pytest.fixture
def html_url() -> Iterator[str]:
    """A server that answers every request 200 with an HTML page (a proxy's login page)."""
    page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
    yield from _serve(lambda handler: (200, "text/html", page))


def _full_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# -- point 5: secrets echoed by the server --------------------------------------------------


@pytest.mark.parametrize("echoing_url", [401, 403, 500], indirect=True)
def test_server_echoing_the_api_key_does_not_leak_it(echoing_url: str) -> None:
    with pytest.raises(SemRouterError) as caught:
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8), url=echoing_url, api_key=KEY)
    assert isinstance(caught.value, BackendError)
    text = _full_traceback(caught.value)
    assert KEY not in text
    assert "***" in str(caught.value)  # the echo is there, scrubbed
    cause = caught.value.__cause__
    assert cause is not None and KEY not in str(cause) and KEY not in repr(cause.args)


def test_echoed_key_is_scrubbed_from_async_errors_too(echoing_url: str) -> None:
    store = QdrantLocation(url=echoing_url, api_key=KEY, timeout=2).open_store("c")
    try:
        with pytest.raises(BackendError) as caught:
            asyncio.run(store.asearch(np.ones((1, 8), dtype=np.float32), 3))
        assert KEY not in _full_traceback(caught.value)
    finally:
        store.close()


@pytest.mark.parametrize("body", [b"<html>not qdrant</html>", b"{", b""])
def test_non_json_200_answer_is_a_backend_error(body: bytes) -> None:
    for url in _serve(lambda handler: (200, "text/html", body)):
        with pytest.raises(BackendError, match="not a Qdrant response"):
            SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8), url=url)


# -- point 8: the timeout bounds the whole call ---------------------------------------------


@pytest.fixture
def dripping_url() -> Iterator[str]:
    """A server that answers one byte every 0.2 s (for at most 12 s)."""
    stop = threading.Event()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
    answer += b" " * 300

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.1)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            deadline = time.monotonic() + 12
            for byte in answer:
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.2)

    def start_drip(conn: socket.socket) -> None:
        threading.Thread(target=drip, args=(conn,), daemon=True).start()

    try:
        with tcp_server(start_drip) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()


@pytest.mark.parametrize(
    ("server", "timeout", "within"),
    [
        ("dripping_url", 1.0, 3.0),  # old code: until the server gave up (12 s)
        # old code: rounded up to whole seconds (1 s per request, 2 s in all)
        ("hanging_url", 0.3, 0.9),
    ],
)
def test_a_slow_server_is_cut_off_at_the_timeout(
    request: pytest.FixtureRequest, server: str, timeout: float, within: float
) -> None:
    url = request.getfixturevalue(server)
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        SemanticRouter(ROUTES, encoder=FakeEncoder(dimension=8), url=url, timeout=timeout)
    assert time.monotonic() - start < within


def test_dripping_server_is_cut_off_in_async_calls(dripping_url: str) -> None:
    store = QdrantLocation(url=dripping_url, timeout=0.5).open_store("c")
    try:
        start = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            asyncio.run(store.asearch(np.ones((1, 8), dtype=np.float32), 3))
        assert time.monotonic() - start < 2.0
    finally:
        store.close()


def test_requests_after_a_timeout_still_work() -> None:
    calls: list[int] = []

    def answer(handler: BaseHTTPRequestHandler) -> tuple[int, str, bytes]:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.0)
        return 200, "application/json", b'{"result": {"exists": false}, "status": "ok", "time": 0}'

    for url in _serve(answer):
        store = QdrantLocation(url=url, timeout=0.4).open_store("c")
        try:
            with pytest.raises(BackendUnavailableError):
                store.read_meta()
            assert store.read_meta() is None  # the pool recovered: the next call is answered
        finally:
            store.close()


# -- point 9: gRPC dials the port the user named --------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP port that accepts (and counts) connections, then closes them."""
    seen: list[int] = []

    def count(conn: socket.socket) -> None:
        seen.append(1)
        conn.close()

    with tcp_server(count) as port:
        yield port, seen


def test_prefer_grpc_dials_the_urls_port_and_names_it(listener: tuple[int, list[int]]) -> None:
    port, seen = listener
    with pytest.raises(BackendUnavailableError) as caught:
        SemanticRouter(
            ROUTES,
            encoder=FakeEncoder(dimension=8),
            url=f"http://127.0.0.1:{port}",
            prefer_grpc=True,
            timeout=1,
        )
    assert seen, "the URL's port was never dialled"
    assert f":{port}" in str(caught.value) and "gRPC" in str(caught.value)


def test_grpc_port_is_dialled_and_named(listener: tuple[int, list[int]]) -> None:
    port, seen = listener
    location = QdrantLocation(
        url="http://127.0.0.1:6333", prefer_grpc=True, grpc_port=port, timeout=1
    )
    assert location.port == port
    store = location.open_store("c")
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            store.read_meta()
    finally:
        store.close()
    assert seen
    assert f"127.0.0.1:{port} (gRPC)" in str(caught.value)
    assert ":6333" not in str(caught.value)


# -- point 10: an OpenAI-compatible server answering HTML -----------------------------------


def test_openai_compatible_server_answering_html_is_an_encoder_error(html_url: str) -> None:
    from semrouter.encoders import OpenAIEncoder

    encoder = OpenAIEncoder(
        model="local", base_url=html_url + "/v1", api_key=KEY, dimension=8, max_retries=0
    )
    with pytest.raises(EncoderError, match="not an embeddings response") as caught:
        encoder.encode(["hello"])
    assert KEY not in _full_traceback(caught.value)
    with pytest.raises(EncoderError, match="not an embeddings response"):
        asyncio.run(encoder.aencode(["hello"]))
