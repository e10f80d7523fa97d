"""Cost of the whole-request deadline on server calls: qdrant-client's own transport vs the one
``QdrantLocation`` mounts (``_deadline.py``), one loopback server, interleaved rounds.

A loopback HTTP server answers every ``POST .../points/query/batch`` with an empty Qdrant result
in one write (TCP_NODELAY), so the time measured is the client side of one REST request (build,
send, read, parse). Each round times ``ROUND_REQUESTS`` sync requests (``store.search``) and as
many async ones (``store.asearch`` on one event loop) per client kind; rounds alternate the
kinds. Two hosts: ``127.0.0.1``, for which both clients open a connection per request
(qdrant-client's rule for local servers), and ``127.0.0.2``, for which both keep connections.

Run under the shared lock:
``flock /tmp/semrouter-bench.lock .venv/bin/python benchmarks/server_transport.py``;
output: ``benchmarks/results/server_transport.txt``.
"""

from __future__ import annotations

import asyncio
import json
import platform
import socket
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient, QdrantClient

from semrouter._stores import ClientStore, Store
from semrouter._stores._location import QdrantLocation

ROUNDS = 7
ROUND_REQUESTS = 300
ANSWER = json.dumps({"result": [{"points": []}], "status": "ok", "time": 0}).encode()


class _Qdrant(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(ANSWER)}"
        self.wfile.write(head.encode() + b"\r\n\r\n" + ANSWER)  # one write: no Nagle stall

    def log_message(self, *args: Any) -> None:
        pass


def _plain_store(url: str) -> Store:
    """What the router built before QdrantLocation: qdrant-client's default transports."""
    options: dict[str, Any] = {"url": url, "timeout": 5, "check_compatibility": False}
    return ClientStore(
        QdrantClient(**options), "c", aclient=AsyncQdrantClient(**options), timeout=5
    )


def _time_sync(store: Store, query: np.ndarray) -> float:
    start = time.perf_counter()
    for _ in range(ROUND_REQUESTS):
        store.search(query, 3)
    return (time.perf_counter() - start) / ROUND_REQUESTS


def _time_async(store: Store, query: np.ndarray, loop: asyncio.AbstractEventLoop) -> float:
    async def run() -> float:
        await store.asearch(query, 3)  # connect outside the timing
        start = time.perf_counter()
        for _ in range(ROUND_REQUESTS):
            await store.asearch(query, 3)
        return (time.perf_counter() - start) / ROUND_REQUESTS

    # One loop for every round: qdrant-client's own transport cannot reuse a kept connection
    # from a loop that has ended ("Event loop is closed"; the deadline transport can).
    return loop.run_until_complete(run())


def _scenario(host: str, query: np.ndarray) -> dict[tuple[str, str], float]:
    server = ThreadingHTTPServer((host, 0), _Qdrant)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{host}:{server.server_address[1]}"
    stores = {
        "qdrant-client transport": _plain_store(url),
        "deadline transport": QdrantLocation(url=url, timeout=5).open_store("c"),
    }
    times: dict[tuple[str, str], list[float]] = {
        (kind, mode): [] for kind in stores for mode in ("sync", "async")
    }
    loop = asyncio.new_event_loop()
    for store in stores.values():  # warm up: connections, imports
        _time_sync(store, query)
    for _ in range(ROUNDS):
        for kind, store in stores.items():
            times[kind, "sync"].append(_time_sync(store, query))
            times[kind, "async"].append(_time_async(store, query, loop))
    for store in stores.values():
        store.close()
    loop.close()
    server.shutdown()
    server.server_close()
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> None:
    query = np.full((1, 384), 0.05, dtype=np.float32)
    scenarios = {
        "127.0.0.1 (a local server: no kept connections, as qdrant-client)": "127.0.0.1",
        "127.0.0.2 (any other host: kept connections)": "127.0.0.2",
    }
    lines = [
        "Server request cost: qdrant-client's transport vs QdrantLocation's deadline transport",
        f"python {platform.python_version()}, qdrant-client {version('qdrant-client')}, "
        f"{ROUNDS} interleaved rounds x {ROUND_REQUESTS} requests, loopback server answering "
        "an empty query result, 384-d query; medians",
    ]
    for title, host in scenarios.items():
        medians = _scenario(host, query)
        lines += ["", title, f"{'mode':<6} {'transport':<26} {'per request':>12} {'ratio':>7}"]
        for mode in ("sync", "async"):
            base = medians["qdrant-client transport", mode]
            for kind in ("qdrant-client transport", "deadline transport"):
                med = medians[kind, mode]
                lines.append(f"{mode:<6} {kind:<26} {med * 1e3:>9.3f} ms {med / base:>7.2f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(__file__).parent / "results" / "server_transport.txt"
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
