"""``hotmod serve`` and bad input: a clear answer, never a traceback.

A target that cannot be served (no such module, no such attribute, not an
app, a missing extra, a port in use) is one line on stderr and a non-zero
exit. The user's own code failing at start-up is different: the server stays
up, serves an error page (500) naming the error, file and line, and a saved
fix brings the app up.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from oracle import write_files
from servehelp import FASTAPI_APP, FLASK_APP, Served, child_env, free_port

pytestmark = pytest.mark.timeout(60)


# A package on PYTHONPATH that shadows an installed one: as if it were not installed.
NOT_INSTALLED = 'raise ModuleNotFoundError("No module named {name!r}", name={name!r})\n'


def _serve(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotmod", "serve", *args],
        cwd=root, capture_output=True, text=True, timeout=45, check=False,
        env=env if env is not None else child_env(), stdin=subprocess.DEVNULL,
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    lines = result.stderr.strip().splitlines()
    described = f"rc={result.returncode}\nstderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    assert result.returncode != 0, described
    assert "Traceback" not in result.stderr, described
    assert len(lines) == 1, described
    assert lines[0].startswith("hotmod: error: "), described
    for text in expected:
        assert text in lines[0], described


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["nosuch:app"], ["cannot import 'nosuch'"]),
        (["app:nope"], ["has no attribute 'nope'"]),
        (["notapp:VALUE"], ["notapp:VALUE is not an app", "int"]),
        (["--factory", "app:app"], ["cannot call app:app()"]),
        (["not a target"], ["not an app"]),
    ],
    ids=["no-module", "no-attribute", "not-an-app", "not-a-factory", "malformed"],
)
def test_bad_target(target: list[str], expected: list[str], tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": FLASK_APP, "notapp.py": "VALUE = 1\n"})
    result = _serve(tmp_path, *target, "--port", str(free_port()))
    _assert_one_line(result, *expected)


@pytest.mark.parametrize(
    ("app", "blocked", "extra"),
    [(FASTAPI_APP, "uvicorn", "asgi"), (FLASK_APP, "werkzeug", "flask")],
    ids=["uvicorn", "werkzeug"],
)
def test_missing_extra(app: str, blocked: str, extra: str, tmp_path: Path) -> None:
    write_files(tmp_path, {
        "proj/app.py": app, f"blocked/{blocked}.py": NOT_INSTALLED.format(name=blocked),
    })
    env = child_env(PYTHONPATH=str(tmp_path / "blocked"))
    result = _serve(tmp_path / "proj", "app:app", "--port", str(free_port()), env=env)
    _assert_one_line(result, f"pip install 'hotmod[{extra}]'")


def test_port_in_use(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": FLASK_APP})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(tmp_path, "app:app", "--port", str(port))
    _assert_one_line(result, f"127.0.0.1:{port}", "address already in use")


SYNTAX_ERROR = """
    from flask import Flask

    app = Flask(__name__)
    broken = (
"""

RAISES = """
    from flask import Flask

    app = Flask(__name__)
    ratio = 1 / 0
"""


def test_startup_error_page_then_fix(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_files(root, {"app.py": SYNTAX_ERROR})
    app_py = root / "app.py"
    with Served(root, ["app:app"], scratch=tmp_path / "s") as served:
        failed = served.wait_event("exited", timeout=30)
        assert failed["error"]["type"] == "SyntaxError", failed
        status, page = served.wait_answering()
        assert status == 500, page
        for shown in ("SyntaxError", str(app_py), "line 4"):
            assert shown in page, page
        served.wait_stderr("serving an error page")
        assert f"{app_py}:4: SyntaxError" in served.stderr_text()

        served.mark()
        write_files(root, {"app.py": RAISES})  # another error: the page follows it
        failed = served.wait_event("exited", timeout=30)
        assert failed["error"]["type"] == "ZeroDivisionError", failed
        served.wait_serving("/", "ZeroDivisionError", status=500)
        status, page = served.get("/")
        for shown in ("line 4", "ratio = 1 / 0"):
            assert shown in page, page

        served.mark()
        write_files(root, {"app.py": FLASK_APP})  # the fix
        served.wait_serving("/", "index-1", timeout=30)
        assert served.wait_event("started").get("restarts") == 2


def test_help_lists_every_option(tmp_path: Path) -> None:
    result = _serve(tmp_path, "--help", env=child_env(COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: hotmod serve [options] module:app\n"), result.stdout
    for option in (
        "--factory", "--host", "--port", "--uds", "--watch", "--exclude", "--debounce-ms",
        "--strict", "--drain-timeout", "--live-reload", "--json-events", "--log-level",
        "--quiet", "--verbose",
    ):
        assert option in result.stdout, option
    assert max(map(len, result.stdout.splitlines())) <= 80, result.stdout
