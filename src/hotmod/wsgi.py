"""WSGI: the gate as middleware (G4).

``GateMiddleware(app)`` takes the gate's read side for each request, so a
commit waits for requests in flight and holds new ones for the swap: every
request runs entirely on one version. For servers that embed a
:class:`~hotmod.Reloader` themselves; ``hotmod serve`` installs it for you.

The read side is held while the app is called *and* while the body is
iterated (generated bodies run code too), until the server closes the
body; a body that is a list runs no code as it is sent and is let go at once.
A request that asks for an event stream (``Accept: text/event-stream``, as
EventSource and SSE clients send) is never waited for by a commit: a stream
that never ends would otherwise hold every commit for the whole drain
timeout. Its handler and each event it sends come from whichever version is
live at that moment.

Per request, the middleware stores one entry in the gate and deletes it; it
calls into the gate only while a commit holds it.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from ._gate import Gate, app_reader, default_gate, register_holder

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
        self._gate = gate if gate is not None else default_gate()
        self._current: Callable[[], WSGIApplication] = app_reader(app, app_getter)
        # The gate's fast path runs inline (see ``Gate``): its entries, bound once.
        self._inside = self._gate._inside if self._gate.lock_free else None
        self._new_key = self._gate.new_key

    @property
    def gate(self) -> Gate:
        return self._gate

    @property
    def app(self) -> WSGIApplication:
        return self._current()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        gate, inside = self._gate, self._inside
        if inside is not None:  # the gate's fast path, inline
            key = self._new_key()
            inside[key] = environ
            if gate._closed:
                key = gate.wait(key, environ, sys._getframe(1))
        else:
            key = gate.enter(environ, sys._getframe(1))
        try:
            body = self._current()(environ, start_response)
        except BaseException:
            gate.exit(key)
            raise
        if body.__class__ is list:  # a list runs no code as it is sent: let go now
            if inside is not None:
                del inside[key]
                if gate._closed:
                    gate.wake()
            else:
                gate.exit(key)
            return body
        held = _HeldBody(body)  # attributes set here: no ``__init__`` call per request
        held._body, held._gate, held._key = body, gate, key
        return held


register_holder(GateMiddleware.__call__.__code__)


class _HeldBody(itertools.chain):  # type: ignore[type-arg]
    """The response body; gives the read side back once, when the server closes it.

    A chain of the one body: the server iterates it in C, with no call into
    Python per request or per chunk; the middleware sets the attributes.
    """

    __slots__ = ("_body", "_gate", "_key")
    _body: Iterable[bytes]
    _gate: Gate | None
    _key: int

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self.__del__()

    def __del__(self) -> None:
        # Also when dropped without being closed (a test client's response, say): it must
        # not hold every later commit for its drain timeout. Once only.
        gate = self._gate
        if gate is not None:
            self._gate = None
            gate.exit(self._key)

    def __enter__(self) -> _HeldBody:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
