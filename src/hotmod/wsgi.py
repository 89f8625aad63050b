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

from ._gate import Gate, default_gate

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
        self._app = app
        self._getter = app_getter

    @property
    def app(self) -> WSGIApplication:
        if self._getter:
            return self._app()  # type: ignore[call-arg,return-value]
        return self._app  # type: ignore[return-value]

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        gate = self.gate
        gate.enter()
        streaming = False

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            nonlocal streaming
            streaming = any(
                k.lower() == "content-type" and v.startswith("text/event-stream")
                for k, v in headers
            )
            return start_response(status, headers, *exc)

        try:
            with gate.inside():
                body = self.app(environ, start)
        except BaseException:
            gate.exit()
            raise
        if streaming:
            gate.exit()
            return body
        return _HeldBody(body, gate)


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
