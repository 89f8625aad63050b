"""ASGI apps on uvicorn, run programmatically on an inherited listening socket.

``uvicorn.Server.serve(sockets=[...])`` accepts on a socket it did not bind
(as under gunicorn). What hotmod adds is the moment the worker is *ready*
(lifespan started, accepting) and a graceful stop for restarts: uvicorn's own
shutdown (stop accepting, ``Connection: close`` on requests in flight, idle
keep-alive connections closed, ``timeout_graceful_shutdown``), but only once
every connection accepted before the stop has sent its first request (for
at most a few seconds): uvicorn would close such a connection unanswered,
and the client, which just connected, would see it reset.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Callable
from typing import Any, Final

import uvicorn

# Connections accepted before the stop: how long their first request may take to arrive.
_FIRST_REQUEST_GRACE_S: Final = 2.0
_POLL_S: Final = 0.01


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
        loop = asyncio.get_running_loop()
        grace = min(_FIRST_REQUEST_GRACE_S, float(self.config.timeout_graceful_shutdown or 0))
        deadline = loop.time() + grace
        while _fresh(self.server_state.connections) and loop.time() < deadline:
            await asyncio.sleep(_POLL_S)
        await super().shutdown(sockets=sockets)


def _fresh(connections: set[Any]) -> bool:
    """Some connection was accepted and has not sent a request yet (no request cycle)."""
    return any(getattr(c, "cycle", True) is None for c in connections)


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
