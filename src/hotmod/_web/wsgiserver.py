"""WSGI apps on Werkzeug's threaded server, serving an inherited listening socket.

Werkzeug's server is what ``flask run`` uses: it ships with Flask, takes an
inherited socket (``fd=``), runs a thread per connection and writes the access
log Flask users know. ``waitress`` or ``cheroot`` would add a dependency.

What hotmod adds is a graceful stop for restarts: :meth:`WerkzeugServer.stop`
stops accepting (the listening socket stays open in the supervisor and the
new worker, so connections queue there, never refused), answers requests in
flight with ``Connection: close``, closes idle keep-alive connections, and
waits for the connections it accepted to finish, at most ``drain_timeout``
seconds. Connections are counted from ``accept``, not from the request: one
accepted an instant before the stop is still answered.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class _Connections:
    """Connections accepted and not closed yet; which of them wait for a next request."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.open = 0
        self.idle: set[socket.socket] = set()  # keep-alive, waiting for the next request
        self.draining = False

    def opened(self) -> None:
        with self._cond:
            self.open += 1

    def closed(self) -> None:
        with self._cond:
            self.open -= 1
            self._cond.notify_all()

    def waiting(self, conn: socket.socket) -> bool:
        """``conn`` waits for another request; False: draining, close it instead."""
        with self._cond:
            if self.draining:
                return False
            self.idle.add(conn)
            return True

    def busy(self, conn: Any) -> None:
        with self._cond:
            self.idle.discard(conn)

    def stop_keeping_alive(self) -> None:
        """From now on every response closes its connection."""
        with self._cond:
            self.draining = True

    def drain(self, timeout: float) -> int:
        """Close idle connections, wait for the others; how many are left at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self.draining = True
            for conn in self.idle:
                # Its handler is blocked reading the next request line: EOF ends it.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RD)
            self.idle.clear()
            while self.open > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.open


class _Handler(WSGIRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._served = False

    def handle_one_request(self) -> None:
        if self._served and not self.server.connections.waiting(self.connection):
            self.close_connection = True
            return
        self._served = True
        super().handle_one_request()


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


class _Tracked:
    """WSGI wrapper: marks the connection busy; ``Connection: close`` once draining."""

    def __init__(self, app: WSGIApplication, connections: _Connections) -> None:
        self.app = app
        self.connections = connections

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.connections.busy(environ.get("werkzeug.socket"))

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            if self.connections.draining and not any(
                k.lower() == "connection" for k, _ in headers
            ):
                headers = [*headers, ("Connection", "close")]
            return start_response(status, headers, *exc)

        return self.app(environ, start)


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
        self._server = _Server(
            address, port, _Tracked(app, self.connections), handler=_Handler, fd=fd
        )
        self._server.connections = self.connections
        # make_server(fd=...) duplicated the descriptor: keep one copy, so that
        # stopping really lets go of the socket in this process.
        import os

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
            self.connections.stop_keeping_alive()
            threading.Thread(target=self._server.shutdown, daemon=True).start()
