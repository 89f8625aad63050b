"""ASGI: the gate as middleware (G4).

``GateMiddleware(app)`` takes the gate's read side for each HTTP request, so
a commit waits for requests in flight and holds new ones for the swap (the
wait is awaited: the event loop keeps running). For servers that embed a
:class:`~hotmod.Reloader` themselves; ``hotmod serve`` installs it for you.

Long-lived connections never hold a commit: an event stream
(``Content-Type: text/event-stream``) is released once its response has
started, a WebSocket once it is accepted (or closed). What they send
afterwards comes from whichever version is live then. Lifespan events pass
straight through, except to a served app's slot whose adapter runs the
lifespan of every app it serves (``slot.lifespan``: Starlette and FastAPI).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._gate import Gate, app_reader, default_gate, mark_inside, mark_outside

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
        self.gate = gate if gate is not None else default_gate()
        self._app = app
        self._getter = app_getter
        self._current: Callable[[], ASGIApp] = app_reader(app, app_getter)

    @property
    def app(self) -> ASGIApp:
        return self._current()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            # A slot whose adapter runs lifespans for every app it serves takes them.
            host = getattr(self._app, "lifespan", None) if self._getter else None
            if kind == "lifespan" and host is not None:
                await host(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        gate = self.gate
        if not gate.try_enter():
            await gate.enter_async()
        request = _Request(gate, send)
        token = mark_inside()
        try:
            await self._current()(scope, receive, request.send)
        finally:
            mark_outside(token)
            request.release()


class _Request:
    """One request's ``send``: gives the read side back once, early for long-lived ones."""

    __slots__ = ("_gate", "_held", "_send")

    def __init__(self, gate: Gate, send: Send) -> None:
        self._gate = gate
        self._send = send
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate.exit()

    def send(self, message: Message) -> Awaitable[None]:
        # A plain function handing back the server's awaitable: no coroutine of
        # its own per message (this runs twice for every response).
        sent = message["type"]
        if sent == "http.response.start":
            if _is_stream(message):
                self.release()
        elif sent in ("websocket.accept", "websocket.close"):
            self.release()
        return self._send(message)


def _is_stream(message: Message) -> bool:
    for key, value in message.get("headers", ()):
        # Servers and frameworks send lower-case names; the length test skips the rest cheaply.
        if len(key) == 12 and key.lower() == b"content-type":
            return bytes(value[:17]).lower() == b"text/event-stream"
    return False
