"""Live browser reload: open pages reload themselves when a new version is live.

``hotmod serve --live-reload`` wraps the served (gated) app with
:meth:`LiveReload.wsgi` or :meth:`LiveReload.asgi`. The wrapper

* serves an event stream (Server-Sent Events) at :data:`LIVE_PATH`. It sends
  ``hello`` first (this server's instance id and version), then ``reload``
  after every committed batch, and a comment every ``keepalive`` seconds so a
  client that went away is noticed (the write fails) and its stream ends;
* adds a small script just before ``</body>`` of every complete HTML
  response (``text/html`` with a ``Content-Length``, not compressed, not HEAD),
  fixing the ``Content-Length``. The script carries the instance id and the
  version the page was served at, opens an ``EventSource`` on the stream and
  reloads the page on ``reload``, or when a ``hello`` names another instance
  or version: the server restarted (a new worker), or a batch committed while
  the page was on its way. ``EventSource`` reconnects by itself when the
  stream ends; the script reconnects too if the browser gives up.

Other responses (streams, downloads, compressed bodies) pass through
untouched. The wrapper sits *outside* the gate: its own stream never holds a
commit, and it reads the version before the app runs, so a page rendered
across a commit at worst reloads once more, never misses one.

The version is announced in :meth:`LiveReload.committed`, after the gate is
released; WSGI streams (one thread each on a threaded server) wake on a
condition, ASGI streams on an ``asyncio.Event`` set from the reloader's thread
with ``loop.call_soon_threadsafe``. :meth:`LiveReload.close` ends every stream
(a server shutting down calls it: an open stream would hold a graceful
shutdown, and browsers reconnect to whichever server answers next).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from .._engine.participants import BaseParticipant

if TYPE_CHECKING:
    import asyncio

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .._engine.batch import Batch

__all__ = ["LIVE_PATH", "LiveReload"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The event stream's path, reserved in every app served with live reload.
LIVE_PATH = "/__hotmod__/live"
#: The largest page the script is added to; larger ones pass untouched.
MAX_PAGE = 8 * 1024 * 1024
#: How long the browser waits before reconnecting a stream that ended (ms).
RETRY_MS = 300

_STREAM_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),  # a proxy in front must not buffer the stream
]
_BUSY_HEADERS = [("Retry-After", "1"), ("Content-Length", "0")]
_KEEPALIVE = b": keep-alive\n\n"

# The page's script. Everything is local to the function: no global name is
# added to the page. It gives up quietly where EventSource does not exist.
_SCRIPT = """<script>(function(){"use strict";
if(!window.EventSource)return;
var page=%(page)s,source=null,done=false;
function reload(){if(done)return;done=true;source.close();location.reload();}
function connect(){
source=new EventSource(%(url)s);
source.addEventListener("hello",function(e){var now;
try{now=JSON.parse(e.data);}catch(err){return;}
if(now.instance!==page.instance||now.version!==page.version)reload();});
source.addEventListener("reload",reload);
source.onerror=function(){
if(!done&&source.readyState===2)setTimeout(connect,1000);};}
connect();})();</script>"""


class LiveReload(BaseParticipant):
    """Reload open pages after each committed batch and after a restart.

    ``LiveReload(*, keepalive=15.0, max_streams=64)``: ``keepalive`` is the
    seconds between comments on an idle stream (how soon a client that went
    away is noticed); at most ``max_streams`` streams are open at once (more
    get 503, and their pages try again a second later). Register it with
    ``reloader.add_participant`` and serve ``lr.wsgi(app)`` or ``lr.asgi(app)``.
    """

    name = "live-reload"
    order = 900  # after the adapters: it only listens

    def __init__(self, *, keepalive: float = 15.0, max_streams: int = 64) -> None:
        self.instance = secrets.token_hex(8)  # new for every server (worker) started
        self.version = 0  # committed batches seen
        self.keepalive = keepalive
        self.max_streams = max_streams
        # Reentrant: close() may run in a signal handler that interrupted a holder.
        self._cond = threading.Condition(threading.RLock())
        self._streams = 0
        self._closed = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def streams(self) -> int:
        """Event streams open now (one per open page)."""
        return self._streams

    # -- the participant ------------------------------------------------------------------
    def committed(self, batch: Batch) -> None:
        """A new version is live: every open page reloads."""
        self._announce(bump=True)

    def close(self) -> None:
        """End every stream and refuse new ones (the server is shutting down)."""
        with self._cond:
            self._closed = True
        self._announce(bump=False)

    def _announce(self, *, bump: bool) -> None:
        with self._cond:
            if bump:
                self.version += 1
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def _reserve(self) -> bool:
        with self._cond:
            if self._closed or self._streams >= self.max_streams:
                return False
            self._streams += 1
            return True

    def _release(self) -> None:
        with self._cond:
            self._streams -= 1

    def _wait(self, seen: int) -> tuple[int, bool]:
        """(version, closed) once either changes from ``seen``/open, or after the keep-alive."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != seen or self._closed, self.keepalive)
            return self.version, self._closed

    def _hello(self) -> tuple[int, bytes]:
        version = self.version
        data = json.dumps({"instance": self.instance, "version": version})
        return version, f"retry: {RETRY_MS}\nevent: hello\ndata: {data}\n\n".encode()

    def _script(self, prefix: str) -> bytes:
        """The script for a page served now (read *before* the app renders it)."""
        page = json.dumps({"instance": self.instance, "version": self.version})
        url = json.dumps(prefix.rstrip("/") + LIVE_PATH).replace("</", "<\\/")
        return (_SCRIPT % {"page": page, "url": url}).encode()

    # -- WSGI -----------------------------------------------------------------------------
    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """``app`` with the event stream and the script added to its pages."""

        def live_reload(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == LIVE_PATH:
                return self._wsgi_events(start_response)
            if environ.get("REQUEST_METHOD") == "HEAD":
                return app(environ, start_response)
            return self._wsgi_page(app, environ, start_response)

        return live_reload

    def _wsgi_events(self, start_response: StartResponse) -> Iterable[bytes]:
        if not self._reserve():
            start_response("503 Service Unavailable", list(_BUSY_HEADERS))
            return [b""]
        start_response("200 OK", list(_STREAM_HEADERS))
        return _WsgiStream(self)

    def _wsgi_page(
        self, app: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        script = self._script(str(environ.get("SCRIPT_NAME", "")))
        held: list[Any] = []  # [status, headers, exc_info] of a page we will add to
        written: list[bytes] = []  # what the app gave write() meanwhile
        returned = False

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            held.clear()
            if not returned and status[:3].isdigit() and _injectable(int(status[:3]), headers):
                held.extend((status, headers, exc_info))
                return written.append
            return start_response(status, headers, exc_info)

        body = app(environ, start)
        returned = True
        if not held:  # not a page, or started lazily (a generator): untouched
            return body
        try:
            chunks = [*written, *body]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = held
        page = b"".join(chunks)
        if _length(headers) == len(page):
            page = _inject(page, script)
            headers = _with_length(headers, len(page))
        start_response(status, headers, exc_info)
        return [page]

    # -- ASGI -----------------------------------------------------------------------------
    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the event stream and the script added to its pages."""

        async def live_reload(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
            elif scope["path"] in (LIVE_PATH, scope.get("root_path", "") + LIVE_PATH):
                await self._asgi_events(receive, send)
            elif scope.get("method") == "HEAD":
                await app(scope, receive, send)
            else:
                await self._asgi_page(app, scope, receive, send)

        return live_reload

    async def _asgi_events(self, receive: Receive, send: Send) -> None:
        if not self._reserve():
            await send(_start(503, _BUSY_HEADERS))
            await send({"type": "http.response.body", "body": b""})
            return
        import asyncio  # here: only ASGI servers pay for importing it

        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        entry = (loop, wake)
        with self._cond:
            self._waiters.add(entry)
        gone = loop.create_task(_disconnected(receive))
        try:
            seen, hello = self._hello()
            await send(_start(200, _STREAM_HEADERS))
            await _send_body(send, hello)
            while True:
                wake.clear()  # before reading: a wake-up after the read is not lost
                with self._cond:
                    version, closed = self.version, self._closed
                if closed:
                    break
                if version != seen:
                    seen = version
                    await _send_body(send, _reload_event(version))
                    continue
                woken = loop.create_task(wake.wait())
                done, _ = await asyncio.wait(
                    {gone, woken}, timeout=self.keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
                if gone in done:
                    return
                if not done:
                    await _send_body(send, _KEEPALIVE)
            await send({"type": "http.response.body", "body": b""})
        except OSError:  # the client went away while we wrote
            return
        finally:
            gone.cancel()
            with self._cond:
                self._waiters.discard(entry)
            self._release()

    async def _asgi_page(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        script = self._script(root if isinstance(root, str) else "")
        held: Message | None = None
        chunks: list[bytes] = []

        async def page_send(message: Message) -> None:
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                           for k, v in message.get("headers", ())]
                if not message.get("trailers") and _injectable(message["status"], headers):
                    held = message
                    return
            elif kind == "http.response.body" and held is not None:
                chunks.append(bytes(message.get("body", b"")))
                if message.get("more_body", False):
                    return
                start, held = held, None
                await _send_page(send, start, b"".join(chunks), script)
                return
            elif held is not None:  # something we do not know: give back what we held
                start, held = held, None
                await send(start)
                if chunks:
                    await send({"type": "http.response.body", "body": b"".join(chunks),
                                "more_body": True})
            await send(message)

        await app(scope, receive, page_send)


class _WsgiStream:
    """One WSGI event stream: hello, then a reload per commit, keep-alives between.

    Werkzeug writes each chunk as it is yielded and closes the iterable when
    the client goes away (a keep-alive fails) or the stream ends.
    """

    def __init__(self, live: LiveReload) -> None:
        self._live = live
        self._events = self._run()
        self._open = True

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def _run(self) -> Generator[bytes, None, None]:
        live = self._live
        seen, hello = live._hello()
        yield hello
        while True:
            version, closed = live._wait(seen)
            if closed:
                return
            if version != seen:
                seen = version
                yield _reload_event(version)
            else:
                yield _KEEPALIVE

    def close(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(ValueError):  # still running in another thread
                self._events.close()
            self._live._release()

    def __del__(self) -> None:  # a server that never closes the body must not leak a slot
        self.close()


def _reload_event(version: int) -> bytes:
    return f"event: reload\ndata: {version}\n\n".encode()


def _injectable(status: int, headers: Iterable[tuple[str, str]]) -> bool:
    """A complete, uncompressed HTML page of a size we buffer."""
    found: dict[str, str] = {k.lower(): v.lower() for k, v in headers}
    kind = found.get("content-type", "")
    length = found.get("content-length", "")
    return (
        kind.startswith("text/html")
        and "utf-16" not in kind and "utf-32" not in kind  # the script is ASCII
        and found.get("content-encoding", "identity") == "identity"
        and "transfer-encoding" not in found
        and length.isdigit() and int(length) <= MAX_PAGE
        and status >= 200 and status not in (204, 304)
    )


def _length(headers: Iterable[tuple[str, str]]) -> int:
    for key, value in headers:
        if key.lower() == "content-length":
            return int(value)
    return -1


def _with_length(headers: Iterable[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return [*kept, ("Content-Length", str(length))]


def _inject(page: bytes, script: bytes) -> bytes:
    """``script`` just before the last ``</body>``, or at the end of a page without one."""
    at = page.lower().rfind(b"</body>")
    if at < 0:
        return page + script
    return page[:at] + script + page[at:]


def _start(status: int, headers: Iterable[tuple[str, str]]) -> Message:
    return {
        "type": "http.response.start", "status": status,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    }


async def _send_body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _send_page(send: Send, start: Message, page: bytes, script: bytes) -> None:
    headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
               for k, v in start.get("headers", ())]
    if _length(headers) == len(page):
        page = _inject(page, script)
        start = {**start, **_start(start["status"], _with_length(headers, len(page)))}
    await send(start)
    await send({"type": "http.response.body", "body": page, "more_body": False})


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass
