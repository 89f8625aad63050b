"""WSGI apps on Werkzeug's threaded server, serving an inherited listening socket.

Werkzeug's server is what ``flask run`` uses: it ships with Flask, takes an
inherited socket (``fd=``), runs a thread per connection and writes the access
log Flask users know. ``waitress`` or ``cheroot`` would add a dependency.

What hotmod adds is a graceful stop for restarts: :meth:`WerkzeugServer.stop`
stops accepting (the listening socket stays open in the supervisor and the
new worker, so connections queue there, never refused) and waits for the
connections it accepted to finish, at most ``drain_timeout`` seconds.
Connections are counted from ``accept``, not from the request: one accepted
an instant before the stop is still answered. (Werkzeug closes every
connection after its response, so there are no idle keep-alive connections
to wait for.)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _Connections:
    """How many accepted connections are not closed yet."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.open = 0

    def opened(self) -> None:
        with self._cond:
            self.open += 1

    def closed(self) -> None:
        with self._cond:
            self.open -= 1
            self._cond.notify_all()

    def drain(self, timeout: float) -> int:
        """Wait for them to close; how many are left at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.open > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.open


class _Server(ThreadedWSGIServer):
    """Werkzeug's threaded server, counting connections from ``accept`` to close."""

    connections: _Connections

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.opened()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.closed()
            raise

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.connections.closed()


class WerkzeugServer:
    """Serve ``app`` on the listening socket ``fd`` (inherited) until :meth:`stop`."""

    name = "Werkzeug"
    startup_failed = False  # WSGI has no start-up of its own

    def __init__(
        self, app: WSGIApplication, fd: int, *, uds: str | None, host: str, port: int,
        drain_timeout: float,
    ) -> None:
        self.drain_timeout = drain_timeout
        self.connections = _Connections()
        address = f"unix://{uds}" if uds is not None else host
        self._server = _Server(address, port, app, fd=fd)
        self._server.connections = self.connections
        # Werkzeug duplicated the descriptor: keep one copy, so that stopping
        # really lets go of the socket in this process.
        os.close(fd)
        # Shared with the other workers: whoever loses the race for a connection
        # must get EAGAIN from accept, not block in it.
        self._server.socket.setblocking(False)
        self._stopping = threading.Event()
        self.left = 0  # connections still open when the drain timed out

    def serve(self, on_ready: Callable[[], None]) -> None:
        """Accept until :meth:`stop`; return once drained."""
        on_ready()
        if not self._stopping.is_set():
            self._server.serve_forever(poll_interval=0.1)
        self.left = self.connections.drain(self.drain_timeout)

    def stop(self) -> None:
        """Stop accepting (from any thread); :meth:`serve` drains and returns."""
        if not self._stopping.is_set():
            self._stopping.set()
            threading.Thread(target=self._server.shutdown, daemon=True).start()
