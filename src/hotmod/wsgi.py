"""WSGI: the gate as middleware (G4).

``GateMiddleware(app)`` takes the gate's read side for each request, so a
commit waits for requests in flight and holds new ones for the swap: every
request runs entirely on one version. For servers that embed a
:class:`~hotmod.Reloader` themselves; ``hotmod serve`` installs it for you.

The read side is held while the app is called *and* while the body is
iterated (generated bodies run code too), until the server closes the
body; a body that is a list runs no code as it is sent and is let go at once.
An event stream (``Content-Type: text/event-stream``) is released once
the app has returned: a stream that never ends would otherwise hold every
commit for the whole drain timeout. Each event it sends afterwards comes from
whichever version is live then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._gate import Gate, _depth, app_reader, default_gate

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["GateMiddleware"]

_get_depth, _set_depth, _reset_depth = _depth.get, _depth.set, _depth.reset


class GateMiddleware:
    """Wrap a WSGI app so each request sees one version of the code.

    ``app`` is the WSGI callable, or a zero-argument callable returning the
    current one (``app_getter=True``), read per request so an app swapped at
    commit serves the next request.
    """

    def __init__(
        self, app: WSGIApplication | Callable[[], WSGIApplication], *,
        gate: Gate | None = None, app_getter: bool = False,
    ) -> None:
        self._gate = gate if gate is not None else default_gate()
        self._current: Callable[[], WSGIApplication] = app_reader(app, app_getter)
        # Bound once: every request uses them.
        self._enter = self._gate.enter
        self._exit = self._gate.exit

    @property
    def gate(self) -> Gate:
        return self._gate

    @property
    def app(self) -> WSGIApplication:
        return self._current()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        self._enter()
        streaming = False

        # A closure, not an object per request: fewer calls on every request's path.
        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            nonlocal streaming
            for key, value in headers:
                if len(key) == 12 and key.lower() == "content-type":
                    streaming = value.startswith("text/event-stream")
            return start_response(status, headers, *exc)

        token = _set_depth(_get_depth() + 1)  # reentrancy: see ``_gate``
        try:
            body = self._current()(environ, start)
        except BaseException:
            self._exit()
            raise
        finally:
            _reset_depth(token)
        if streaming or body.__class__ is list:
            # An event stream is let go now; so is a list, which runs no code as it is sent.
            self._exit()
            return body
        return _HeldBody(body, self._exit)


class _HeldBody:
    """The response body; gives the read side back once, when the server closes it."""

    __slots__ = ("_body", "_exit")

    def __init__(self, body: Iterable[bytes], exit: Callable[[], None]) -> None:
        self._body = body
        self._exit: Callable[[], None] | None = exit

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            exit = self._exit
            if exit is not None:
                self._exit = None
                exit()

    def __del__(self) -> None:  # a server that never closes the body must not wedge commits
        exit = self._exit
        if exit is not None:
            self._exit = None
            exit()

    def __enter__(self) -> _HeldBody:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
