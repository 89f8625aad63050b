"""Which HTTP server runs the app: Werkzeug for WSGI, uvicorn for ASGI.

Both are optional dependencies (the ``flask`` and ``asgi`` extras), imported
only here and only for the kind of app being served; a missing one is a
:class:`MissingExtra` that names the extra to install.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from .._errors import UsageError
from .options import ServeOptions
from .slot import Kind

_EXTRA = {"wsgi": "flask", "asgi": "asgi"}
_SERVER_PACKAGE = {"wsgi": "werkzeug", "asgi": "uvicorn"}


class MissingExtra(UsageError):
    """The server for this kind of app is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed (needed to serve this app): pip install 'hotmod[{extra}]'"
        )
        self.package = package
        self.extra = extra


def missing_extra(kind: Kind) -> MissingExtra:
    return MissingExtra(_SERVER_PACKAGE[kind], _EXTRA[kind])


class Server(Protocol):
    """An HTTP server on the inherited listening socket."""

    name: str

    def serve(self, on_ready: Callable[[], None]) -> None:
        """Call ``on_ready()`` once accepting, serve until :meth:`stop`, drain, return."""

    def stop(self) -> None:
        """Stop accepting and drain (from any thread)."""

    @property
    def startup_failed(self) -> bool:
        """The app's own start-up (ASGI lifespan) failed; nothing was served."""


def available(kind: Kind) -> bool:
    """Whether the server for ``kind`` can be imported."""
    try:
        _import(kind)
    except MissingExtra:
        return False
    return True


def _import(kind: Kind) -> None:
    try:
        if kind == "wsgi":
            from . import wsgiserver  # noqa: F401
        else:
            from . import asgiserver  # noqa: F401
    except ImportError as exc:
        raise missing_extra(kind) from exc


def make_server(kind: Kind, app: Any, fd: int, options: ServeOptions) -> Server:
    """The server for ``kind``, serving ``app`` on the listening socket ``fd``."""
    _import(kind)
    if kind == "wsgi":
        from .wsgiserver import WerkzeugServer

        level = logging.DEBUG if options.log_level == "trace" else options.log_level.upper()
        logging.getLogger("werkzeug").setLevel(level)  # its own logger, never the root
        return WerkzeugServer(
            app, fd, uds=options.uds, host=options.host, port=options.port,
            drain_timeout=options.drain_timeout,
        )
    from .asgiserver import UvicornServer, quiet_lifecycle

    server = UvicornServer(
        app, fd, uds=options.uds, host=options.host, port=options.port,
        drain_timeout=options.drain_timeout, log_level=options.log_level,
    )
    if options.verbosity < 2 and options.log_level == "info":
        quiet_lifecycle()
    return server
