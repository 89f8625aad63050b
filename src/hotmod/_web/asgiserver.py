"""ASGI apps on uvicorn, run programmatically on an inherited listening socket.

``uvicorn.Server.serve(sockets=[...])`` accepts on a socket it did not bind
(as under gunicorn). What hotmod adds is the moment the worker is *ready*
(lifespan started, accepting) and a graceful stop for restarts: uvicorn's own
shutdown (stop accepting, ``Connection: close`` on requests in flight, idle
connections closed, ``timeout_graceful_shutdown``) after a short grace
period in which connections accepted just before the stop get their request
read, so that uvicorn answers them instead of closing them unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Callable
from typing import Any, Final

import uvicorn

# Connections accepted just before the stop: time for their request to arrive.
_ACCEPT_GRACE_S: Final = 0.2


class _Server(uvicorn.Server):
    on_ready: Callable[[], None] = staticmethod(lambda: None)
    startup_failed = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:  # uvicorn exits when the app's lifespan startup fails
            self.startup_failed = True
            self.should_exit = True
            return
        if self.started:
            self.on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first; uvicorn's shutdown does the rest
        if self.server_state.connections:
            await asyncio.sleep(_ACCEPT_GRACE_S)
        await super().shutdown(sockets=sockets)


class UvicornServer:
    """Serve ``app`` on the listening socket ``fd`` (inherited) until :meth:`stop`."""

    name = "uvicorn"

    def __init__(
        self, app: Any, fd: int, *, uds: str | None, host: str, port: int,
        drain_timeout: float, log_level: str,
    ) -> None:
        self._sock = socket.socket(fileno=fd)
        config = uvicorn.Config(
            app, interface="asgi3", lifespan="auto", log_level=log_level,
            timeout_graceful_shutdown=max(1, math.ceil(drain_timeout)), host=host, port=port,
            uds=uds,
        )
        self._server = _Server(config)
        self.startup_failed = False

    def serve(self, on_ready: Callable[[], None]) -> None:
        """Accept until :meth:`stop`; return once drained."""
        self._server.on_ready = on_ready
        self._server.run(sockets=[self._sock])
        self.startup_failed = self._server.startup_failed
        if self.startup_failed:
            self._sock.detach()  # never listened on: the descriptor goes back to the worker

    def stop(self) -> None:
        """Stop accepting (from any thread); :meth:`serve` drains and returns."""
        self._server.should_exit = True


def quiet_lifecycle() -> None:
    """uvicorn's 'Started server process' lines once per worker are noise under restarts."""
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
