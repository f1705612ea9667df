"""A threaded HTTP server on 127.0.0.1 that can go away and come back on its port."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading
from typing import Any, ClassVar


class LoopbackServer:
    """Base of the fakes: start, stop (connections refused), start again."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        """Not listening yet."""
        # Set while stopping, so handlers that hold a request on purpose let go.
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self) -> None:
        """Listen on 127.0.0.1 (the same port again after a stop)."""
        owner = self

        class Handler(self.handler):  # type: ignore[name-defined,misc]
            pass

        Handler.owner = owner
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        # Request threads are joined on close, so no test leaves one behind.
        server.daemon_threads = False
        self.port = server.server_address[1]
        self._server = server
        self.release.clear()
        # A short poll interval lets stop() return at once instead of after 0.5 s.
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Stop listening: connections are refused, as when the internet is down."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log every request."""

    owner: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""
