"""WSGI: the gate as middleware (G4).

``GateMiddleware(app)`` takes the gate's read side for each request, so a
commit waits for requests in flight and holds new ones for the swap: every
request runs entirely on one version. For servers that embed a
:class:`~hotmod.Reloader` themselves; ``hotmod serve`` installs it for you.

The read side is held while the app is called *and* while the body is
iterated (generated bodies run code too), until the server closes the
body. An event stream (``Content-Type: text/event-stream``) is released once
the app has returned: a stream that never ends would otherwise hold every
commit for the whole drain timeout. Each event it sends afterwards comes from
whichever version is live then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._gate import Gate, app_reader, default_gate, mark_inside, mark_outside

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["GateMiddleware"]


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
        self.gate = gate if gate is not None else default_gate()
        self._current: Callable[[], WSGIApplication] = app_reader(app, app_getter)

    @property
    def app(self) -> WSGIApplication:
        return self._current()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        gate = self.gate
        gate.enter()
        request = _Request(start_response)
        token = mark_inside()
        try:
            body = self._current()(environ, request.start)
        except BaseException:
            gate.exit()
            raise
        finally:
            mark_outside(token)
        if request.streaming:
            gate.exit()
            return body
        return _HeldBody(body, gate)


class _Request:
    """One request's ``start_response``: notes whether the response is an event stream."""

    __slots__ = ("_start_response", "streaming")

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self.streaming = False

    def start(self, status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        for key, value in headers:
            if key.lower() == "content-type":
                self.streaming = value.startswith("text/event-stream")
        return self._start_response(status, headers, *exc)


class _HeldBody:
    """The response body; gives the read side back when the server closes it."""

    __slots__ = ("_body", "_gate", "_open")

    def __init__(self, body: Iterable[bytes], gate: Gate) -> None:
        self._body = body
        self._gate = gate
        self._open = True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._open:
                self._open = False
                self._gate.exit()

    def __del__(self) -> None:  # a server that never closes the body must not wedge commits
        if self._open:
            self._open = False
            self._gate.exit()

    def __enter__(self) -> _HeldBody:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
