"""The page ``hotmod serve`` answers with while the app cannot start.

A syntax error or an exception in the user's code at start-up must not take
the server down (uvicorn and Werkzeug die or hang there): the worker serves
this page, status 500, to every request until a saved fix brings the app up.
Plain HTML, no assets, nothing that can fail.
"""

from __future__ import annotations

import html
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._run.tracebacks import format_program_error, location, trim

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..asgi import Receive, Scope, Send


@dataclass(frozen=True)
class StartupError:
    """What went wrong while importing or building the app."""

    type: str
    message: str
    path: str | None
    line: int | None
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> StartupError:
        _drop_leading(exc)  # hotmod importing the app: not the user's business
        trim(exc)  # the import machinery's frames out, as `hotmod run` prints them
        path, line = location(exc)
        try:
            message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        except Exception:
            message = "<exception str() failed>"
        return cls(type(exc).__name__, message, path, line, format_program_error(exc))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type, "message": self.message, "path": self.path,
            "line": self.line, "traceback": self.traceback,
        }

    def where(self) -> str:
        if self.path is None:
            return "?"
        return f"{self.path}:{self.line}" if self.line else self.path

    def headline(self) -> str:
        """``path:line: Type: message``."""
        return f"{self.where()}: {self.type}: {self.message}"


_HOTMOD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_IMPORTLIB = (_HOTMOD_DIR, "<frozen importlib.", os.path.dirname(importlib.__file__) + os.sep)


def _drop_leading(exc: BaseException) -> None:
    """Drop the frames of hotmod and importlib above the first frame of the app."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_IMPORTLIB):
        tb = tb.tb_next
    if tb is not None or isinstance(exc, SyntaxError):
        exc.__traceback__ = tb


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;}}pre{{background:#f4f4f4;padding:1em;
overflow:auto;}}h1{{color:#a00;font-size:1.4em;}}</style></head>
<body><h1>{title}</h1>
<p>The app failed to start. Save a fix and this page becomes the app
(reload the page).</p>
<p><b>{kind}</b>: {message}<br>File <code>{path}</code>, line {line}</p>
<pre>{traceback}</pre>
<p><small>hotmod serve</small></p></body></html>
"""


def render(error: StartupError) -> bytes:
    """The page for ``error``, UTF-8."""
    return _PAGE.format(
        title=html.escape(f"{error.type} at start-up"),
        kind=html.escape(error.type),
        message=html.escape(error.message),
        path=html.escape(error.path or "?"),
        line=error.line if error.line is not None else "?",
        traceback=html.escape(error.traceback),
    ).encode()


_HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]


class ErrorPageWSGI:
    """A WSGI app answering every request with the error page (500)."""

    def __init__(self, error: StartupError) -> None:
        self.body = render(error)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(
            "500 Internal Server Error", [*_HEADERS, ("Content-Length", str(len(self.body)))]
        )
        return [self.body]


class ErrorPageASGI:
    """An ASGI app answering every HTTP request with the error page (500)."""

    def __init__(self, error: StartupError) -> None:
        self.body = render(error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})
            return
        headers = [(k.lower().encode(), v.encode()) for k, v in _HEADERS]
        headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})
