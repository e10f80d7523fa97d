"""QdrantLocation: one validated, frozen value for where the collection lives (issue 9, item 4)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from semrouter import ConfigurationError, FakeEncoder, Route, SemanticRouter, SemRouterError
from semrouter._stores import ClientStore, EdgeStore
from semrouter._stores._location import QdrantLocation

KEY = "location-secret-0123456789"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path": "a", "url": "http://h:6333"}, "at most one"),
        ({"url": "http://h:6333", "client": object()}, "at most one"),
        ({"api_key": KEY}, "with url"),
        ({"prefer_grpc": True}, "with url"),
        ({"grpc_port": 6334}, "with url"),
        ({"client": None, "aclient": object()}, "beside client"),
        ({"path": ":memory:"}, "leave path unset"),
        ({"path": ""}, "empty"),
        ({"path": 3}, "path must be"),
        ({"url": "localhost"}, "http"),
        ({"url": "http://h:0"}, "port 0"),
        ({"url": "http://h:70000"}, "not a valid URL"),
        ({"url": "http://h", "grpc_port": 0, "prefer_grpc": True}, "grpc_port"),
        ({"url": "http://h", "grpc_port": True}, "grpc_port"),
        ({"url": "http://h", "prefer_grpc": "yes"}, "prefer_grpc"),
        ({"timeout": "0.5"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": 10**400}, "timeout"),
    ],
)
def test_invalid_locations_are_configuration_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        QdrantLocation(**kwargs)
    assert "Value error" not in str(caught.value)
    assert KEY not in str(caught.value)


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        QdrantLocation(colour="red")  # type: ignore[call-arg]


def test_copies_share_the_value_and_its_clients() -> None:
    client = QdrantClient(":memory:")
    location = QdrantLocation(client=client)
    for copied in (copy.deepcopy(location), copy.copy(location)):
        assert copied == location and copied.client is client
    changed = location.model_copy(update={"timeout": 1.0}, deep=True)
    assert changed.timeout == 1.0 and location.timeout == 5.0  # the original is untouched


def test_location_is_frozen_and_hides_the_key() -> None:
    location = QdrantLocation(url="http://user:pw@h:6333/?k=1", api_key=KEY, timeout=0.25)
    with pytest.raises(ValueError):
        location.timeout = 3  # type: ignore[misc]
    shown = repr(location) + str(location) + json.dumps(location.to_config())
    assert KEY not in shown and "pw" not in shown
    assert location.api_key is not None and location.api_key.get_secret_value() == KEY
    assert location.timeout == 0.25  # fractions kept, not rounded to whole seconds


@pytest.mark.parametrize(
    ("url", "grpc_port", "dialled"),
    [
        ("http://h", None, 6334),
        ("http://h:6333", None, 6334),  # Qdrant's REST port: its gRPC port is 6334
        ("http://h:7000", None, 7000),  # any other port in the URL is dialled as given
        ("http://h:6333", 9000, 9000),
        ("https://h:443", None, 443),
    ],
)
def test_grpc_port_rule(url: str, grpc_port: int | None, dialled: int) -> None:
    location = QdrantLocation(url=url, prefer_grpc=True, grpc_port=grpc_port)
    assert location.port == dialled
    assert location.target.endswith(f":{dialled} (gRPC)")
    assert QdrantLocation(url=url).port == (6333 if url == "http://h" else int(url.split(":")[-1]))


def test_kinds() -> None:
    assert QdrantLocation().kind == "memory"
    assert QdrantLocation(path="x").kind == "path"
    assert QdrantLocation(url="http://h").kind == "url"
    assert QdrantLocation(client=object()).kind == "client"


def test_config_round_trip_without_secrets(tmp_path: Path) -> None:
    base = tmp_path / "cfg"
    server = QdrantLocation(
        url="https://me:pw@q.example:6333", api_key=KEY, prefer_grpc=True, grpc_port=7443
    )
    config = server.to_config(base)
    assert config == {
        "url": "https://q.example:6333",
        "prefer_grpc": True,
        "grpc_port": 7443,
        "timeout": 5.0,
    }
    back = QdrantLocation.from_config(config, base_dir=base, api_key=KEY)
    assert back.port == 7443 and back.api_key is not None
    folder = QdrantLocation(path=base / "index", timeout=2.5)
    assert folder.to_config(base) == {"path": "index", "timeout": 2.5}
    assert QdrantLocation.from_config(folder.to_config(base), base_dir=base) == folder
    assert QdrantLocation(client=object()).to_config(base) == {}


def test_from_config_resolves_paths_beside_the_file(tmp_path: Path) -> None:
    location = QdrantLocation.from_config({"path": "sub/index"}, base_dir=tmp_path)
    assert location.path == tmp_path / "sub" / "index"
    for escape in ("../x", "/tmp/x", "sub/../../x"):
        with pytest.raises(ConfigurationError, match="outside the file's folder"):
            QdrantLocation.from_config({"path": escape}, base_dir=tmp_path)
    outside = QdrantLocation.from_config({"path": "../x"}, base_dir=tmp_path, allow_outside=True)
    assert outside.path == tmp_path / ".." / "x"
    with pytest.raises(ConfigurationError, match="unknown index keys: api_key"):
        QdrantLocation.from_config({"api_key": KEY}, base_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="mapping"):
        QdrantLocation.from_config(["path"], base_dir=tmp_path)  # type: ignore[arg-type]


def test_open_store_returns_the_store_kinds(tmp_path: Path) -> None:
    memory = QdrantLocation().open_store("c")
    try:
        assert isinstance(memory, EdgeStore) and memory.target == ":memory:"
    finally:
        memory.close()
    folder = QdrantLocation(path=tmp_path).open_store("c")
    try:
        assert isinstance(folder, EdgeStore) and folder.target == str(tmp_path / "c")
    finally:
        folder.close()
    client = QdrantClient(":memory:")
    injected = QdrantLocation(client=client).open_store("c")
    injected.close()
    assert isinstance(injected, ClientStore)
    assert client.get_collections().collections == []  # an injected client stays open


def test_open_store_refuses_a_file_as_folder(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ConfigurationError, match="not a folder"):
        QdrantLocation(path=file).open_store("c")


def _loopback_server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on 127.0.0.2: a loopback address that is not "localhost" or "127.0.0.1", for
    which connections are kept alive (qdrant-client's rule, followed by the location)."""
    try:
        return ThreadingHTTPServer(("127.0.0.2", 0), handler)
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.2:{server.server_address[1]}"


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open until the client closes them

    def do_GET(self) -> None:
        body = b'{"result": {"exists": false}, "status": "ok", "time": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def finish(self) -> None:
        super().finish()
        self.server.closed.set()  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def keepalive_url() -> Iterator[tuple[str, threading.Event]]:
    server = _loopback_server(_KeepAlive)
    server.closed = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _url(server), server.closed  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_store_closes_the_clients_the_location_made(
    keepalive_url: tuple[str, threading.Event],
) -> None:
    url, closed = keepalive_url
    store = QdrantLocation(url=url, timeout=2).open_store("c")
    assert store.read_meta() is None  # the collection does not exist
    assert not closed.wait(0.3)  # the connection is kept alive ...
    store.close()
    assert closed.wait(5)  # ... until the store closes the client it was given
    store.close()  # idempotent


def test_local_servers_get_no_kept_connections() -> None:
    # As qdrant-client: a kept connection to a local server "may cause extra delays".
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.closed = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = QdrantLocation(url=f"http://127.0.0.1:{server.server_address[1]}").open_store("c")
    try:
        assert store.read_meta() is None
        assert server.closed.wait(5)  # type: ignore[attr-defined]  # closed after the answer
    finally:
        store.close()
        server.shutdown()
        server.server_close()


def test_embedded_options_are_refused_for_servers_and_clients() -> None:
    with pytest.raises(ConfigurationError, match="embedded folders"):
        QdrantLocation(url="http://127.0.0.1:9").open_store("c", mode="read")
    with pytest.raises(ConfigurationError, match="embedded folders"):
        QdrantLocation(client=QdrantClient(":memory:")).open_store("c", rebuild=True)


@pytest.mark.parametrize("folder", ["/proc/self", "/sys/kernel"])
def test_unusable_folders_are_semrouter_errors(folder: str) -> None:
    # As root, /sys/kernel passes every permission check and fails only when written.
    if not Path(folder).is_dir():
        pytest.skip(f"{folder} is not on this system")
    with pytest.raises(SemRouterError, match=folder):
        SemanticRouter([Route("a", ["x"])], encoder=FakeEncoder(dimension=8), path=folder)
    assert not Path(folder, "semrouter").exists()


class _Recorder(BaseHTTPRequestHandler):
    """Records each request and answers an empty Qdrant batch-query result (keep-alive)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(  # type: ignore[attr-defined]
            (self.command, self.path, self.headers.get("api-key"), json.loads(body))
        )
        answer = json.dumps({"result": [{"points": []}], "status": "ok", "time": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("use_async", [False, True])
def test_requests_reach_the_server_whole_through_the_deadline_transport(use_async: bool) -> None:
    import asyncio

    import numpy as np

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    store = QdrantLocation(url=url, api_key=KEY, timeout=2).open_store("routes")
    try:
        query = np.full((1, 4), 0.5, dtype=np.float32)
        hits = asyncio.run(store.asearch(query, 3)) if use_async else store.search(query, 3)
    finally:
        store.close()
        server.shutdown()
        server.server_close()
    assert hits == [[]]
    [(method, path, key, body)] = server.seen  # type: ignore[attr-defined]
    assert (method, key) == ("POST", KEY)
    assert path == "/collections/routes/points/query/batch?timeout=2"  # query string kept
    assert body["searches"][0]["query"] == {"nearest": [0.5, 0.5, 0.5, 0.5]}
    assert body["searches"][0]["limit"] == 4


def test_async_calls_from_successive_event_loops() -> None:
    # Pooled connections belong to the loop that opened them; a second asyncio.run used to
    # reuse the first loop's (closed) connection: "Event loop is closed".
    import asyncio

    import numpy as np

    server = _loopback_server(_Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    store = QdrantLocation(url=_url(server)).open_store("c")
    query = np.full((1, 4), 0.5, dtype=np.float32)
    try:
        for _ in range(3):
            assert asyncio.run(store.asearch(query, 3)) == [[]]
        assert store.search(query, 3) == [[]]
    finally:
        store.close()
        server.shutdown()
        server.server_close()
    assert len(server.seen) == 4  # type: ignore[attr-defined]
