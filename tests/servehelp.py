"""Driving ``hotmod serve`` (and servers under ``hotmod run``) from tests.

:class:`Served` starts ``python -m hotmod serve ... --json-events FILE`` as a
real subprocess in a project folder, talks HTTP to it over 127.0.0.1 (or its
unix socket) with ``http.client`` and bounded timeouts, and waits for its
events with deadlines. Failures carry the child's stderr and events.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from oracle import OracleError, wait_until

#: The apps most tests serve: ``/`` answers ``index-1``.
FLASK_APP = """
    from flask import Flask

    app = Flask(__name__)


    @app.route("/")
    def index():
        return "index-1"
"""

FASTAPI_APP = """
    from fastapi import FastAPI

    app = FastAPI()


    @app.get("/")
    def index():
        return {"text": "index-1"}
"""

START_TIMEOUT = 30.0
RELOAD_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    """A port nothing listens on now (bound to 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def fetch(
    path: str, *, port: int | None = None, uds: str | None = None, timeout: float = HTTP_TIMEOUT
) -> tuple[int, str]:
    """One GET on a new connection: ``(status, body)``; connection errors propagate."""
    conn: http.client.HTTPConnection = (
        _UnixConnection(uds, timeout) if uds is not None
        else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    )
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Served:
    """A command serving HTTP in a subprocess (``hotmod serve`` by default)."""

    def __init__(
        self, root: Path, args: Sequence[str], *, scratch: Path, port: int | None = None,
        uds: str | None = None, command: Sequence[str] = ("serve",),
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.port = port if port is not None or uds is not None else free_port()
        self.uds = uds
        scratch.mkdir(parents=True, exist_ok=True)
        self.events_path = scratch / "events.jsonl"
        self.stderr_path = scratch / "stderr.log"
        where = ["--uds", uds] if uds is not None else ["--port", str(self.port)]
        if command[0] != "serve":
            where = []
        self.argv = [
            sys.executable, "-m", "hotmod", *command, "--json-events", str(self.events_path),
            *where, *args,
        ]
        self.env = env if env is not None else child_env()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.cursor = 0

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> Served:
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, cwd=self.root, stdin=subprocess.DEVNULL, stdout=self._stderr,
            stderr=self._stderr, env=self.env,
        )
        return self

    def wait_answering(self, *, timeout: float = START_TIMEOUT) -> tuple[int, str]:
        """Poll ``/`` until the server answers (any status); that answer."""
        answer: list[tuple[int, str]] = []

        def answers() -> bool:
            self.check_alive()
            try:
                answer.append(self.get("/", timeout=2.0))
            except OSError:
                return False
            return True

        wait_until(answers, timeout=timeout, message=lambda: self.describe("not answering"))
        return answer[0]

    def wait_serving(
        self, path: str, expected: str, *, status: int = 200, timeout: float = RELOAD_TIMEOUT
    ) -> None:
        """Poll ``path`` until it answers ``status`` with ``expected`` in the body."""
        last: list[Any] = [None]

        def serving() -> bool:
            self.check_alive()
            try:
                got, body = self.get(path, timeout=2.0)
            except OSError as exc:
                last[0] = exc
                return False
            last[0] = (got, body[:300])
            return got == status and expected in body

        wait_until(
            serving, timeout=timeout,
            message=lambda: self.describe(f"{path} never served {expected!r}; last: {last[0]!r}"),
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return proc.returncode

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise OracleError(self.describe(f"exited with {self.proc.returncode}"))

    # -- HTTP -------------------------------------------------------------------------
    def get(self, path: str, *, timeout: float = HTTP_TIMEOUT) -> tuple[int, str]:
        return fetch(path, port=self.port, uds=self.uds, timeout=timeout)

    # -- events -----------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        try:
            text = self.events_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines(keepends=True)
                if line.endswith("\n") and line.strip()]

    def mark(self) -> None:
        """Later waits look only at events written from now on."""
        self.cursor = len(self.events())

    def wait_event(
        self, kind: str, accept: Callable[[dict[str, Any]], bool] | None = None, *,
        timeout: float = RELOAD_TIMEOUT,
    ) -> dict[str, Any]:
        """The next event of ``kind`` (after the cursor, which moves past it)."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            self.check_alive()
            events = self.events()
            for i in range(self.cursor, len(events)):
                event = events[i]
                if event.get("event") == kind and (accept is None or accept(event)):
                    self.cursor = i + 1
                    found.append(event)
                    return True
            return False

        wait_until(check, timeout=timeout, message=lambda: self.describe(f"no {kind!r} event"))
        return found[0]

    def wait_reload(self, *, timeout: float = RELOAD_TIMEOUT) -> dict[str, Any]:
        """The next ``reload`` event that changed something (``unchanged`` skipped)."""
        return self.wait_event(
            "reload", lambda e: e.get("outcome") != "unchanged", timeout=timeout
        )

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return ""

    def wait_stderr(self, text: str, *, timeout: float = RELOAD_TIMEOUT) -> None:
        wait_until(
            lambda: text in self.stderr_text(), timeout=timeout,
            message=lambda: self.describe(f"{text!r} never on stderr"),
        )

    def describe(self, what: str) -> str:
        rc = None if self.proc is None else self.proc.poll()
        events = "\n".join(json.dumps(e, sort_keys=True)[:400] for e in self.events())
        return (
            f"{what}\nargv: {self.argv}\ncwd: {self.root}\nreturncode: {rc}\n"
            f"--- events ---\n{events}\n--- output ---\n{self.stderr_text()[-8000:]}"
        )

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

