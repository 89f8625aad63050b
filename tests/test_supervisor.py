"""G7: a restart refuses no connection.

``hotmod serve``'s supervisor owns the listening socket; a restart starts a
new worker that is ready before the old one stops accepting and drains.
Client threads open new connections continuously across forced restarts (an
edit of a module that called ``hot.decline()``: the engine must restart) and
every request must succeed. Also: a new worker that fails at start-up leaves
the old one serving, and a fix brings the new version up; ``hotmod run`` of a
script that starts its own server (Flask's ``app.run()``, ``uvicorn.run()``)
survives a restart.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from oracle import wait_until, write_files
from servehelp import Served, fetch, free_port

RESTARTS = 5
CLIENTS = 4
# Bounds of the load: per client thread, and for the whole test.
MAX_REQUESTS_PER_CLIENT = 5000
LOAD_SECONDS = 150.0  # a bound only: the test stops the load once the last version is seen
# A client that connects, then takes this long to send its request (a scenario, not a wait).
SLOW_CLIENT_S = 0.6

DECLINED = """
    import hotmod

    hotmod.hot(__name__).decline()  # any change to this module restarts the server

    VERSION = 0
"""

FLASK_APP = """
    from flask import Flask

    import settings

    app = Flask(__name__)


    @app.route("/")
    def index():
        return f"version-{settings.VERSION}"
"""

FASTAPI_APP = """
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    import settings

    app = FastAPI()


    @app.get("/", response_class=PlainTextResponse)
    def index():
        return f"version-{settings.VERSION}"
"""


def _set_version(root: Path, value: str) -> None:
    text = (root / "settings.py").read_text(encoding="utf-8")
    head, _, _ = text.rpartition("VERSION = ")
    (root / "settings.py").write_text(f"{head}VERSION = {value}\n", encoding="utf-8")


class Load:
    """Client threads, each opening a new connection per request, counting outcomes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bodies: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]
        self.deadline = time.monotonic() + LOAD_SECONDS

    def _client(self) -> None:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            try:
                status, body = fetch("/", port=self.port, timeout=10.0)
                outcome = body if status == 200 else f"HTTP {status}: {body[:200]}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
                status = 0
            with self.lock:
                if status == 200:
                    self.bodies[outcome] += 1
                else:
                    self.errors.append(outcome)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_restarts_refuse_no_connection(app: str, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    source = FLASK_APP if app == "flask" else FASTAPI_APP
    write_files(root, {"settings.py": DECLINED, "app.py": source})
    port = free_port()
    args = ["app:app", "--drain-timeout", "5"]
    with Served(root, args, scratch=tmp_path / "s", port=port) as served:
        served.wait_serving("/", "version-0", timeout=30)
        with Load(port) as load:
            for version in range(1, RESTARTS + 1):
                served.mark()
                _set_version(root, str(version))
                event = served.wait_reload()
                assert event.get("outcome") == "restart", served.describe(f"not a restart: {event}")
                served.wait_serving("/", f"version-{version}")
            # The clients go on until each could have seen the last version.
            last = f"version-{RESTARTS}"
            deadline = time.monotonic() + 30
            while load.bodies[last] < CLIENTS and time.monotonic() < deadline:
                load.stop.wait(0.01)
        stopped = served.stop()
    assert not load.errors, served.describe(
        f"{len(load.errors)} failed requests of {sum(load.bodies.values()) + len(load.errors)},"
        f" e.g. {load.errors[:5]}"
    )
    seen = {body for body in load.bodies}
    assert {f"version-{v}" for v in range(RESTARTS + 1)} <= seen, (seen, load.bodies)
    assert sum(load.bodies.values()) >= CLIENTS * RESTARTS, load.bodies
    started = [e for e in served.events() if e.get("event") == "started"]
    assert len(started) == RESTARTS + 1, served.describe("one worker per restart")
    assert stopped == 0, served.describe("SIGTERM must stop cleanly")


def test_failed_new_worker_keeps_old_serving_until_fixed(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, {"settings.py": DECLINED, "app.py": FLASK_APP})
    with Served(root, ["app:app"], scratch=tmp_path / "s") as served:
        served.wait_serving("/", "version-0", timeout=30)
        served.mark()
        _set_version(root, "1 // 0")  # the new worker dies importing it
        assert served.wait_reload().get("outcome") == "restart"
        failed = served.wait_event("exited", timeout=30)
        assert failed["error"]["type"] == "ZeroDivisionError", failed
        assert failed["error"]["path"] == str(root / "settings.py"), failed
        served.wait_stderr("still serving the previous version")
        output = served.stderr_text()
        assert f"{root / 'settings.py'}:5: ZeroDivisionError" in output, output
        assert served.get("/") == (200, "version-0")  # the old worker serves on

        served.mark()
        _set_version(root, "2")  # the fix: the pending restart is tried again
        served.wait_serving("/", "version-2", timeout=30)
        assert served.wait_event("started").get("restarts") == 2


FLASK_SCRIPT = """
    import sys

    from flask import Flask

    app = Flask(__name__)
    VERSION = "script-1"


    @app.route("/")
    def index():
        return VERSION


    app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""

UVICORN_SCRIPT = """
    import sys

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    VERSION = "script-1"


    async def index(request):
        return PlainTextResponse(VERSION)


    app = Starlette(routes=[Route("/", index)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.mark.parametrize("script", ["flask", "uvicorn"])
def test_hotmod_run_server_script_survives_restart(script: str, tmp_path: Path) -> None:
    """A restart of ``hotmod run`` must not leave the new process a taken port."""
    root = tmp_path / "proj"
    write_files(root, {"server.py": FLASK_SCRIPT if script == "flask" else UVICORN_SCRIPT})
    port = free_port()
    run = Served(
        root, ["server.py", str(port)], scratch=tmp_path / "s", port=port, command=("run",)
    )
    with run:
        run.wait_serving("/", "script-1", timeout=30)
        run.mark()
        # The entry script's top level changed: the engine restarts the process.
        path = root / "server.py"
        path.write_text(path.read_text().replace('"script-1"', '"script-2"'), encoding="utf-8")
        assert run.wait_reload().get("outcome") == "restart"
        run.wait_event("started", lambda e: e.get("restarts") == 1, timeout=30)
        run.wait_serving("/", "script-2", timeout=30)


SLOW_FLASK = FLASK_APP + """

    @app.route("/slow")
    def slow():
        import pathlib
        import time

        pathlib.Path("slow-started").touch()
        time.sleep(1.5)
        return f"slow-{settings.VERSION}"
"""

SLOW_FASTAPI = FASTAPI_APP + """

    @app.get("/slow", response_class=PlainTextResponse)
    async def slow():
        import asyncio
        import pathlib

        pathlib.Path("slow-started").touch()
        await asyncio.sleep(1.5)
        return f"slow-{settings.VERSION}"
"""


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_old_worker_finishes_its_requests_then_ctrl_c_stops_all(
    app: str, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    source = SLOW_FLASK if app == "flask" else SLOW_FASTAPI
    write_files(root, {"settings.py": DECLINED, "app.py": source})
    with Served(root, ["app:app"], scratch=tmp_path / "s") as served:
        served.wait_serving("/", "version-0", timeout=30)
        answers: list[tuple[int, str]] = []
        slow = threading.Thread(target=lambda: answers.append(served.get("/slow")), daemon=True)
        slow.start()
        wait_until(
            (root / "slow-started").exists, timeout=15, message="the slow request never started"
        )
        served.mark()
        _set_version(root, "1")  # restart while /slow is in flight on the old worker
        served.wait_serving("/", "version-1")
        slow.join(timeout=15)
        assert answers == [(200, "slow-0")], served.describe("the old worker must drain")
        assert served.stop(signal.SIGINT) == 0, served.describe("Ctrl-C must exit 0")
    pids = [e["pid"] for e in served.events() if e.get("event") == "started"]
    assert len(pids) == 2, pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every worker is gone (and reaped) once the supervisor exits


def _gone(pid: int) -> bool:
    """``pid`` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] == "Z"
    return False


def test_dead_worker_is_replaced_and_workers_outlive_no_supervisor(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, {"settings.py": DECLINED, "app.py": FLASK_APP})
    with Served(root, ["app:app"], scratch=tmp_path / "s") as served:
        first = served.wait_event("started", timeout=30)["pid"]
        os.kill(first, signal.SIGKILL)  # the worker dies unexpectedly
        second = served.wait_event("started", timeout=30)["pid"]
        served.wait_serving("/", "version-0")
        assert served.proc is not None
        served.proc.kill()  # the supervisor dies without a word
        served.proc.wait(timeout=10)
        wait_until(
            lambda: _gone(second), timeout=15,
            message="a worker must stop when its supervisor is gone",
        )
    assert second != first


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_client_slow_to_send_its_request_across_a_restart(app: str, tmp_path: Path) -> None:
    """A connection accepted by the old worker is answered even if its request comes late."""
    root = tmp_path / "proj"
    source = FLASK_APP if app == "flask" else FASTAPI_APP
    write_files(root, {"settings.py": DECLINED, "app.py": source})
    with Served(root, ["app:app"], scratch=tmp_path / "s") as served:
        served.wait_serving("/", "version-0", timeout=30)
        served.mark()
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        conn.connect()  # accepted by the old worker, which is about to be replaced
        try:
            _set_version(root, "1")
            served.wait_event("started", timeout=30)  # the new worker is ready: the old one stops
            time.sleep(SLOW_CLIENT_S)  # the scenario: a client this slow to send its request
            conn.request("GET", "/")
            response = conn.getresponse()
            answer = (response.status, response.read().decode())
        finally:
            conn.close()
        assert answer in {(200, "version-0"), (200, "version-1")}, answer


def test_idle_keep_alive_connection_does_not_hold_the_old_worker(tmp_path: Path) -> None:
    """uvicorn keeps connections alive; Werkzeug closes each after its response."""
    root = tmp_path / "proj"
    write_files(root, {"settings.py": DECLINED, "app.py": FASTAPI_APP})
    with Served(root, ["app:app", "--drain-timeout", "30"], scratch=tmp_path / "s") as served:
        old = served.wait_event("started", timeout=30)["pid"]
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            conn.request("GET", "/")  # served, and the connection is kept alive, idle
            assert conn.getresponse().read() == b"version-0"
            _set_version(root, "1")
            served.wait_event("started", timeout=30)
            # Closed by the old worker at once, not after the 30 s drain timeout.
            wait_until(lambda: _gone(old), timeout=10, message="the old worker lingers")
        finally:
            conn.close()
