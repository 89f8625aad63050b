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

from ._gate import Gate, _depth, app_reader, default_gate

__all__ = ["GateMiddleware"]

_get_depth, _set_depth, _reset_depth = _depth.get, _depth.set, _depth.reset

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
        # Bound once: every request uses them.
        self._try_enter = self._gate.try_enter
        self._exit = self._gate.exit

    @property
    def gate(self) -> Gate:
        return self._gate

    @property
    def app(self) -> ASGIApp:
        return self._current()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            # A slot whose adapter runs lifespans for every app it serves takes them.
            host = getattr(self._app, "lifespan", None) if self._getter else None
            if kind == "lifespan" and host is not None:
                await host(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if not self._try_enter():
            await self._gate.enter_async()
        exit = self._exit
        held = True

        # Closures, not an object per request: fewer calls on every request's path.
        def gated_send(message: Message) -> Awaitable[None]:
            # A plain function handing back the server's awaitable: no coroutine of
            # its own per message (this runs twice for every response).
            nonlocal held
            if held:
                sent = message["type"]
                if (sent == "http.response.start" and _is_stream(message)) or (
                    sent == "websocket.accept" or sent == "websocket.close"
                ):
                    held = False  # no await in between: one step for the event loop
                    exit()
            return send(message)

        token = _set_depth(_get_depth() + 1)  # reentrancy: see ``_gate``
        try:
            await self._current()(scope, receive, gated_send)
        finally:
            _reset_depth(token)
            if held:
                held = False
                exit()


def _is_stream(message: Message) -> bool:
    for key, value in message.get("headers", ()):
        # Servers and frameworks send lower-case names; the length test skips the rest cheaply.
        if len(key) == 12 and key.lower() == b"content-type":
            return bytes(value[:17]).lower() == b"text/event-stream"
    return False
