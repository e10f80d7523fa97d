"""An OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1, for tests of the real SDK.

Embeddings are deterministic (seeded from a sha256 of model and text), every request is
recorded, and failures can be queued: ``server.fail(500, times=2)`` answers the next two
requests with HTTP 500 (with ``Retry-After-Ms: 1`` so the SDK's retries take no time).

    with OpenAIServer(api_key="sk-test") as server:
        client = openai.OpenAI(api_key="sk-test", base_url=server.url)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TEST_API_KEY", "OpenAIServer", "RecordedRequest", "embedding_for"]

#: The bearer token the ``openai_server`` fixture's server accepts.
TEST_API_KEY = "sk-test-fixture"

_ERROR_TYPES = {
    401: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


def embedding_for(text: str, dimension: int, model: str = "") -> npt.NDArray[np.float32]:
    """The (unnormalised) vector the server returns for ``text``."""
    digest = hashlib.sha256(f"{model}\x00{text}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return rng.standard_normal(dimension).astype(np.float32)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None
    body: dict[str, Any]

    @property
    def inputs(self) -> list[str]:
        value = self.body.get("input")
        return [value] if isinstance(value, str) else list(value or [])

    @property
    def dimensions(self) -> int | None:
        value = self.body.get("dimensions")
        return value if isinstance(value, int) else None

    @property
    def model(self) -> str | None:
        value = self.body.get("model")
        return value if isinstance(value, str) else None


@dataclass
class _Failure:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class OpenAIServer:
    """A threaded HTTP server speaking the embeddings part of the OpenAI API.

    Args:
        dimension: vector length when a request sends no ``dimensions``.
        api_key: when set, other bearer tokens get HTTP 401.
        echo_key_in_errors: put the rejected key, in full, into the 401 message (a careless
            server), to check that clients do not repeat it.
        delay: seconds to sleep before answering (for timeout tests).
        drip: send the answer's body one byte every ``drip`` seconds (a server that never
            trips a per-read timeout; for whole-request deadline tests).
        shuffle: return ``data`` in reverse order, as the API is allowed to.
        floats_only: ignore ``encoding_format=base64`` and send float lists, as some
            compatible servers do.
        edit_response: a function that may change each successful response body (to drop rows,
            corrupt vectors...) before it is sent.
    """

    def __init__(
        self,
        *,
        dimension: int = 32,
        api_key: str | None = None,
        echo_key_in_errors: bool = False,
        delay: float = 0.0,
        drip: float = 0.0,
        shuffle: bool = True,
        floats_only: bool = False,
        edit_response: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.dimension = dimension
        self.api_key = api_key
        self.echo_key_in_errors = echo_key_in_errors
        self.delay = delay
        self.drip = drip
        self.shuffle = shuffle
        self.floats_only = floats_only
        self.edit_response = edit_response
        self.requests: list[RecordedRequest] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        self._stopping.clear()
        handler = _handler_for(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # so that stop() returns at once
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends a drip in progress
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give the SDK (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        message: str | None = None,
        retry_after_ms: int | None = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` instead of embeddings."""
        headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
        with self._lock:
            for _ in range(times):
                self._failures.append(
                    _Failure(status, message or f"simulated HTTP {status}", headers)
                )

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/embeddings")]

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.popleft() if self._failures else None
        if self.delay:
            time.sleep(self.delay)
        if failure is not None:
            return failure.status, failure.headers, _error_body(failure.status, failure.message)
        if not request.path.rstrip("/").endswith("/embeddings"):
            return 404, {}, _error_body(404, f"no route {request.path}")
        if self.api_key is not None and request.authorization != f"Bearer {self.api_key}":
            token = (request.authorization or "").removeprefix("Bearer ")
            shown = token if self.echo_key_in_errors else f"{token[:3]}***{token[-4:]}"
            return 401, {}, _error_body(401, f"Incorrect API key provided: {shown}.")
        body = self._embeddings(request)
        return 200, {}, body if self.edit_response is None else self.edit_response(body)

    def _embeddings(self, request: RecordedRequest) -> dict[str, Any]:
        model = request.model or ""
        width = request.dimensions or self.dimension
        as_base64 = request.body.get("encoding_format") == "base64" and not self.floats_only
        data: list[dict[str, Any]] = []
        for index, text in enumerate(request.inputs):
            vector = embedding_for(text, width, model)
            encoded: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if as_base64
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        if self.shuffle:
            data.reverse()
        tokens = sum(len(text.split()) for text in request.inputs)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(400, {}, _error_body(400, "body is not JSON"))
                return
            request = RecordedRequest(
                method="POST",
                path=self.path,
                authorization=self.headers.get("Authorization"),
                body=body if isinstance(body, dict) else {},
            )
            self._send(*server._answer(request))

        def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
            blob = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            # The client may have given up already (a timeout test).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if not server.drip:
                    self.wfile.write(blob)
                    return
                for index in range(len(blob)):
                    if server._stopping.wait(server.drip):
                        return
                    self.wfile.write(blob[index : index + 1])
                    self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler
