"""``hotmod serve``: real Flask and FastAPI apps, served, edited, fetched over HTTP.

Each test writes a project into a temporary folder and serves it with
``hotmod serve`` in a subprocess on 127.0.0.1 (a free port, or a unix socket);
edits are waited for through the ``--json-events`` file. What is promised in
place must come in place: outcome ``applied`` and no restart (one worker).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oracle import code, write_files
from servehelp import FASTAPI_APP, FLASK_APP, Served

pytestmark = pytest.mark.timeout(60)


FLASK_ROUTE = """

    @app.route("/added")
    def added():
        return "added-1"
"""


FASTAPI_ROUTE = """

    @app.get("/added")
    def added():
        return {"text": "added-1"}
"""

FACTORY_APP = """
    import logging

    from flask import Flask


    def create_app():
        app = Flask(__name__)

        @app.route("/")
        def index():
            return "factory-1"

        @app.route("/root-logger")
        def root_logger():
            root = logging.getLogger()
            return f"{len(root.handlers)} {logging.getLevelName(root.level)}"

        return app
"""

APPS = {"flask": (FLASK_APP, FLASK_ROUTE), "fastapi": (FASTAPI_APP, FASTAPI_ROUTE)}


def _edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _assert_in_place(served: Served, event: dict[str, object]) -> None:
    """An ``applied`` reload, and still the first worker (no restart)."""
    if event.get("outcome") != "applied":
        raise AssertionError(served.describe(f"expected an in-place apply, got {event}"))
    restarts = [e for e in served.events() if e.get("event") == "started" and e.get("restarts")]
    assert not restarts, served.describe("a worker was restarted")


@pytest.mark.parametrize("framework", sorted(APPS))
def test_body_edit_and_new_route_apply_in_place(framework: str, tmp_path: Path) -> None:
    app, route = APPS[framework]
    root = tmp_path / "proj"
    write_files(root, {"app.py": app})
    with Served(root, ["app:app"], scratch=tmp_path / "scratch") as served:
        served.wait_event("started", timeout=30)
        assert "index-1" in served.get("/")[1]

        served.mark()
        _edit(root, "app.py", "index-1", "index-2")
        _assert_in_place(served, served.wait_reload())
        status, body = served.get("/")  # at once: the reload event means it is live
        assert (status, "index-2" in body) == (200, True), body

        served.mark()
        with (root / "app.py").open("a", encoding="utf-8") as fh:
            fh.write(code(route))
        _assert_in_place(served, served.wait_reload())
        status, body = served.get("/added")
        assert (status, "added-1" in body) == (200, True), body
        assert "index-2" in served.get("/")[1]
    assert served.proc is not None
    assert served.proc.returncode == 0, served.describe("SIGTERM must exit 0")


def test_factory(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, {"factory.py": FACTORY_APP})
    args = ["--factory", "factory:create_app"]
    with Served(root, args, scratch=tmp_path / "scratch") as served:
        served.wait_event("started", timeout=30)
        assert served.get("/") == (200, "factory-1")
        # hotmod and the server configure their own loggers, never the app's root logger.
        assert served.get("/root-logger") == (200, "0 WARNING")
        served.mark()
        _edit(root, "factory.py", "factory-1", "factory-2")
        _assert_in_place(served, served.wait_reload())
        assert served.get("/") == (200, "factory-2")


def test_unix_socket(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, {"app.py": FASTAPI_APP})
    uds = str(tmp_path / "app.sock")
    with Served(root, ["app:app"], scratch=tmp_path / "scratch", uds=uds) as served:
        served.wait_event("started", timeout=30)
        assert served.get("/") == (200, '{"text":"index-1"}')
        served.mark()
        _edit(root, "app.py", "index-1", "index-2")
        _assert_in_place(served, served.wait_reload())
        assert served.get("/") == (200, '{"text":"index-2"}')
    assert not Path(uds).exists(), "the socket file is removed at exit"
