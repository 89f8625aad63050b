"""Serving a project's web app in-process, under a real server, for adapter tests.

:class:`ServedApp` is what ``hotmod serve`` does, minus the supervisor: a
:class:`hotmod.Reloader` over the project, the app in an
:class:`~hotmod._web.slot.AppSlot` wired by ``frameworks.attach``, and a real
server on 127.0.0.1 (Werkzeug's threaded server for WSGI, uvicorn for ASGI)
serving it through the gate middleware. Edits are applied synchronously with
``Reloader.apply``, so a test knows exactly which batch it is looking at.

:func:`fresh` serves the same sources in a new process and fetches the same
paths: what a fresh start would serve, to compare with (G2).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotmod import Gate, Reloader, ReloadResult
from hotmod._web import frameworks
from hotmod._web.slot import AppSlot, Target, app_kind, load

DEADLINE_S = 20.0


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int, path: str, *, method: str = "GET", body: bytes | None = None,
    headers: Mapping[str, str] | None = None, timeout: float = 10.0,
) -> Response:
    """One request on a new connection to 127.0.0.1:``port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        return Response(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def write_project(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


class ServedApp:
    """A project's app served in this process under hot reload (see the module docstring)."""

    def __init__(
        self, root: Path, target: str, *, factory: bool = False, drain_timeout: float = 10.0,
        wrap: Callable[[Any], Any] | None = None,
    ) -> None:
        self.root = root
        self.wrap = wrap  # around the gated app, as hotmod serve adds live reload
        self.target = Target.parse(target, factory=factory)
        self.gate = Gate(drain_timeout)
        self.reloader = Reloader([root], packages=(), gate=self.gate)
        self.slot: AppSlot | None = None
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> ServedApp:
        sys.path.insert(0, str(self.root))
        self.reloader.install()
        _, app = load(self.target)
        self.slot = AppSlot(self.target, app, app_kind(app))
        frameworks.attach(self.reloader, self.slot)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        if self.slot.kind == "wsgi":
            self._serve_wsgi(sock)
        else:
            self._serve_asgi(sock)
        return self

    def _serve_wsgi(self, sock: socket.socket) -> None:
        from werkzeug.serving import make_server

        from hotmod.wsgi import GateMiddleware

        sock.listen(128)
        assert self.slot is not None
        server = make_server(
            "127.0.0.1", self.port,
            self._wrapped(GateMiddleware(self.slot, app_getter=True, gate=self.gate)),
            threaded=True, fd=sock.detach(),
        )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def _serve_asgi(self, sock: socket.socket) -> None:
        import uvicorn

        from hotmod.asgi import GateMiddleware

        assert self.slot is not None
        slot = self.slot
        config = uvicorn.Config(
            self._wrapped(GateMiddleware(slot, app_getter=True, gate=self.gate)),
            log_level="warning", lifespan="auto",
        )
        server = uvicorn.Server(config)
        self._server = server

        def run() -> None:
            loop = asyncio.new_event_loop()
            slot.loop = loop
            loop.run_until_complete(server.serve(sockets=[sock]))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def _wrapped(self, app: Any) -> Any:
        return app if self.wrap is None else self.wrap(app)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            if self.slot is not None and self.slot.kind == "wsgi":
                server.shutdown()
                server.server_close()
            else:
                server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=DEADLINE_S)
        self.reloader.uninstall()

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- driving it ---------------------------------------------------------------------
    def get(self, path: str, **kwargs: Any) -> Response:
        return request(self.port, path, **kwargs)

    def edit(self, files: Mapping[str, str | None]) -> ReloadResult:
        """Write (or delete, for None) project files, then apply them as one batch."""
        paths = []
        for name, text in files.items():
            path = self.root / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
            paths.append(path)
        return self.reloader.apply(paths)

    def applied(self, files: Mapping[str, str | None]) -> ReloadResult:
        """:meth:`edit`, asserting the batch was applied in place."""
        result = self.edit(files)
        assert result.outcome == "applied", (result.outcome, result.reason, result.error,
                                             result.traceback)
        return result


_FRESH = """
import json, socket, sys
sys.path.insert(0, sys.argv[1])
from hotmod._web.slot import Target, app_kind, load
target = Target.parse(sys.argv[2], factory=sys.argv[3] == "1")
_, app = load(target)
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(64)
print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
if app_kind(app) == "wsgi":
    from werkzeug.serving import make_server
    make_server("127.0.0.1", 0, app, threaded=True, fd=sock.detach()).serve_forever()
else:
    import uvicorn
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""


def fresh(
    root: Path, target: str, paths: Iterable[str], *, factory: bool = False,
    requests: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Response]:
    """What a fresh process serving ``root``'s current sources answers for ``paths``.

    ``requests`` maps a path to extra :func:`request` arguments (method, body, headers).
    """
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", _FRESH, str(root), target, "1" if factory else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fresh start failed:\n{proc.communicate(timeout=10)[1]}")
        port = json.loads(line)["port"]
        extra = requests or {}
        return {path: request(port, path, **extra.get(path, {})) for path in paths}
    finally:
        proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes the pipes
