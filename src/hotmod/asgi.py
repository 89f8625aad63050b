"""ASGI: the gate as middleware (G4).

``GateMiddleware(app)`` takes the gate's read side for each HTTP request, so
a commit waits for requests in flight and holds new ones for the swap (the
wait is awaited: the event loop keeps running). For servers that embed a
:class:`~hotmod.Reloader` themselves; ``hotmod serve`` installs it for you.

Long-lived connections never hold a commit: a request that asks for an
event stream (``Accept: text/event-stream``, as EventSource and SSE clients
send) is never waited for, and a WebSocket is released once accepted (or
closed). What they send afterwards comes from whichever version is live
then. Lifespan events pass straight through, except to a served app's slot
whose adapter runs the lifespan of every app it serves (``slot.lifespan``:
Starlette and FastAPI).

Per HTTP request, the middleware stores one entry in the gate and deletes
it; it calls into the gate only while a commit holds it, and wraps nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._gate import Gate, app_reader, default_gate, register_holder

__all__ = ["GateMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GateMiddleware:
    """Wrap an ASGI app so each request sees one version of the code.

    ``app`` is the ASGI app, or a zero-argument callable returning the
    current one (``app_getter=True``), read per request so an app swapped at
    commit serves the next request.
    """

    def __init__(
        self, app: ASGIApp | Callable[[], ASGIApp], *, gate: Gate | None = None,
        app_getter: bool = False,
    ) -> None:
        self._gate = gate if gate is not None else default_gate()
        self._app = app
        self._getter = app_getter
        self._current: Callable[[], ASGIApp] = app_reader(app, app_getter)
        # The gate's fast path runs inline (see ``Gate``): its entries, bound once.
        self._inside = self._gate._inside if self._gate.lock_free else None
        self._new_key = self._gate.new_key

    @property
    def gate(self) -> Gate:
        return self._gate

    @property
    def app(self) -> ASGIApp:
        return self._current()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        gate, inside = self._gate, self._inside
        if inside is not None:  # the gate's fast path, inline
            key = self._new_key()
            inside[key] = scope
            if gate._closed:
                key = await gate.wait_async(key, scope, sys._getframe(1))
        else:
            key = await gate.enter_async(scope, sys._getframe(1))
        try:
            await self._current()(scope, receive, send)
        finally:
            if inside is not None:
                del inside[key]
                if gate._closed:
                    gate.wake()
            else:
                gate.exit(key)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """WebSockets (held until accepted or closed) and lifespan events."""
        kind = scope["type"]
        if kind != "websocket":
            # A slot whose adapter runs lifespans for every app it serves takes them.
            host = getattr(self._app, "lifespan", None) if self._getter else None
            if kind == "lifespan" and host is not None:
                await host(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        gate = self._gate
        key = await gate.enter_async(scope, sys._getframe(2))  # the frame above ``__call__``

        def gated_send(message: Message) -> Awaitable[None]:
            if message["type"] in ("websocket.accept", "websocket.close"):
                gate.exit(key)  # no await in between: one step for the event loop
            return send(message)

        try:
            await self._current()(scope, receive, gated_send)
        finally:
            gate.exit(key)


register_holder(GateMiddleware.__call__.__code__)
register_holder(GateMiddleware._other.__code__)
