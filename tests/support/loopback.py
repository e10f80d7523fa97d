"""Raw TCP servers on 127.0.0.1 that misbehave on purpose.

with tcp_server(lambda conn: conn.close()) as port:
    ...  # every connection to 127.0.0.1:port is accepted, then closed
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

__all__ = ["tcp_server"]


@contextlib.contextmanager
def tcp_server(on_connect: Callable[[socket.socket], None], *, backlog: int = 16) -> Iterator[int]:
    """Accept connections on a free loopback port, handing each to ``on_connect``.

    ``on_connect`` runs on the accepting thread (start a thread there for slow work). Yields
    the port; on exit the server stops accepting and its socket is closed (the connections
    handed out are the caller's to close).
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    server.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            on_connect(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
