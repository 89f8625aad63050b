"""Live browser reload (``hotmod serve --live-reload``): the wrapper, its stream, a real browser.

Two layers, all on real servers bound to 127.0.0.1:

* the wrapper itself, with real HTTP clients: the script added to HTML pages
  (and nothing else), the event stream's ``hello`` and its ``reload`` after a
  batch committed by an in-process :class:`~hotmod.Reloader` (Werkzeug's
  threaded server and uvicorn, in threads);
* end to end in headless Chromium (Debian's ``chromium``; ``make test``
  installs it): a page is opened, its view edited, and Chromium loads the page
  again by itself; the same after the server process is replaced by another on
  the same port. What the browser shows is read from its DevTools HTTP
  endpoint (``/json/list``: each page's title), what it loaded from the app.

Without Chromium the browser tests skip locally and fail under CI.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotmod._web.livereload import LIVE_PATH, LiveReload, _inject
from hotmod._web.slot import app_kind
from oracle import wait_until, write_files
from servehelp import Served
from webapp import ServedApp, write_project

TIMEOUT = 10.0  # any single wait (a read, a page load) on a machine that is slow

SEEN = """
    LOADS = []  # what each page load showed, appended by the views (never edited)
"""

FLASK_APP = """
    from flask import Flask, Response

    import seen

    app = Flask(__name__)


    @app.route("/")
    def index():
        seen.LOADS.append("v1")
        return ("<!doctype html><html><head><title>page v1</title></head>"
                "<body><h1>v1</h1></body></html>")


    @app.route("/data")
    def data():
        return {"version": "v1", "html": "</body>"}


    @app.route("/stream")
    def stream():
        return Response((part for part in ["<html><body>", "streamed", "</body></html>"]),
                        mimetype="text/html")


    @app.route("/gz")
    def gz():
        import gzip
        body = gzip.compress(b"<html><body>zipped</body></html>")
        return Response(body, mimetype="text/html", headers={"Content-Encoding": "gzip"})
"""

STARLETTE_APP = """
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    import seen


    async def index(request):
        seen.LOADS.append("v1")
        return HTMLResponse("<html><head><title>page v1</title></head><body>v1</body></html>")


    async def data(request):
        return JSONResponse({"version": "v1", "html": "</body>"})


    app = Starlette(routes=[Route("/", index), Route("/data", data)])
"""


# -- the app served as hotmod serve --live-reload serves it ----------------------------------
@dataclass
class LivePage:
    """A project's app served in-process (see webapp.py) with live reload around the gate."""

    served: ServedApp
    live: LiveReload

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.served.port}"

    def edit(self, old: str, new: str) -> None:
        """Edit the app's module and apply it synchronously; it must apply in place."""
        name = self.served.target.module + ".py"
        text = (self.served.root / name).read_text(encoding="utf-8")
        assert old in text
        self.served.applied({name: text.replace(old, new)})

    @property
    def loads(self) -> list[str]:
        loads: list[str] = sys.modules["seen"].LOADS
        return loads


@contextlib.contextmanager
def live_served(root: Path, target: str, *, max_streams: int = 64) -> Iterator[LivePage]:
    """``target`` served with live reload; a short keep-alive, so a client that went
    away is noticed within the tests' deadlines."""
    write_project(root, {"seen.py": SEEN, "flaskapp.py": FLASK_APP,
                         "starletteapp.py": STARLETTE_APP})
    live = LiveReload(keepalive=0.2, max_streams=max_streams)
    served = ServedApp(
        root, target, wrap=lambda app: live.asgi(app) if app_kind(app) == "asgi" else live.wsgi(app)
    )
    served.reloader.add_participant(live)
    with served:
        try:
            yield LivePage(served, live)
        finally:
            live.close()  # open streams would hold uvicorn's graceful shutdown


# -- HTTP and event-stream clients ---------------------------------------------------------
def fetch(url: str, *, method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
    """Status, headers (case-insensitive) and body of one request."""
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.status, response.headers, response.read()


class Events:
    """An event-stream client over http.client (every read bounded by TIMEOUT)."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        self.conn.request("GET", LIVE_PATH)
        self.response = self.conn.getresponse()

    def next(self) -> tuple[str, str]:
        """The next event (comments skipped) as (event, data); EOFError at the end."""
        event, data = "message", list[str]()
        while True:
            line = self.response.readline().decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if not line:
                if data:
                    return event, "\n".join(data)
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)

    def close(self) -> None:
        self.response.close()
        self.conn.close()


@contextlib.contextmanager
def events(base: str) -> Iterator[Events]:
    stream = Events(base)
    try:
        yield stream
    finally:
        stream.close()


def _check_page(base: str, live: LiveReload) -> None:
    """The script is in the page, before ``</body>``, with a right Content-Length."""
    status, headers, body = fetch(base + "/")
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    assert body.count(b"<script>") == 1
    assert body.index(b"EventSource") < body.rindex(b"</body>")
    assert body.endswith(b"</body></html>")
    assert f'"instance": "{live.instance}"'.encode() in body
    assert LIVE_PATH.encode() in body
    _, headers, data = fetch(base + "/data")  # JSON: untouched, even with "</body>" inside
    assert json.loads(data) == {"version": "v1", "html": "</body>"}
    assert int(headers["Content-Length"]) == len(data)
    status, headers, body = fetch(base + "/", method="HEAD")  # HEAD: untouched
    assert status == 200
    assert body == b""


def _check_stream(page: LivePage) -> None:
    """hello (instance, version), then reload once an edit has committed."""
    base, live = page.base, page.live
    with events(base) as stream:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
        assert stream.next() == ("hello", json.dumps({"instance": live.instance, "version": 0}))
        wait_until(lambda: live.streams == 1, timeout=TIMEOUT, message="stream not counted")
        page.edit("v1", "v2")
        assert stream.next() == ("reload", "1")
    _, _, body = fetch(base + "/")
    assert b"page v2" in body
    assert b'"version": 1' in body  # the script of a page served after it carries the version


# -- the wrapper, with real clients ---------------------------------------------------------
def test_wsgi_script_in_pages_and_reload_event_after_commit(tmp_path: Path) -> None:
    with live_served(tmp_path, "flaskapp:app") as page:
        base, live = page.base, page.live
        _check_page(base, live)
        _, headers, body = fetch(base + "/stream")  # a streamed page: untouched
        assert body == b"<html><body>streamed</body></html>"
        _, headers, body = fetch(base + "/gz")  # compressed: untouched
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == b"<html><body>zipped</body></html>"
        _check_stream(page)
        wait_until(lambda: live.streams == 0, timeout=TIMEOUT, message="stream not released")


def test_asgi_script_in_pages_and_reload_event_after_commit(tmp_path: Path) -> None:
    with live_served(tmp_path, "starletteapp:app") as page:
        base, live = page.base, page.live
        _check_page(base, live)
        _check_stream(page)
        wait_until(lambda: live.streams == 0, timeout=TIMEOUT, message="stream not released")


@pytest.mark.parametrize("target", ["flaskapp:app", "starletteapp:app"])
def test_streams_are_bounded_and_end_on_close(tmp_path: Path, target: str) -> None:
    with live_served(tmp_path, target, max_streams=1) as page:
        base, live = page.base, page.live
        with events(base) as first:
            assert first.next()[0] == "hello"
            with events(base) as second:  # one too many: refused, the page retries later
                assert second.response.status == 503
            live.close()  # the server shuts down: the stream ends, the browser reconnects
            with pytest.raises(EOFError):
                first.next()
        wait_until(lambda: live.streams == 0, timeout=TIMEOUT, message="stream not released")


def test_inject_places_the_script_before_the_last_body_end() -> None:
    assert _inject(b"<p>a</BODY></html>", b"S") == b"<p>aS</BODY></html>"
    assert _inject(b"<body></body>x</body>", b"S") == b"<body></body>xS</body>"
    assert _inject(b"<p>no end", b"S") == b"<p>no endS"


# -- headless Chromium ----------------------------------------------------------------------
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
)


class Browser:
    """Headless Chromium on one page; its process group is killed at the end, always."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.executable = executable
        self.profile = profile
        self.process: subprocess.Popen[bytes] | None = None
        self.log = profile.parent / "chromium.log"

    def open(self, url: str) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", url],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        active = self.profile / "DevToolsActivePort"
        wait_until(
            lambda: active.exists() and active.read_text().strip() != "",
            timeout=30, message=lambda: f"Chromium did not start: {self.log_tail()}",
        )
        self.devtools = int(active.read_text().split()[0])

    def titles(self) -> list[str]:
        """The titles of the pages open now, as the browser shows them."""
        url = f"http://127.0.0.1:{self.devtools}/json/list"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            targets = json.load(response)
        return [t["title"] for t in targets if t.get("type") == "page"]

    def wait_title(self, title: str) -> None:
        wait_until(
            lambda: title in self.titles(), timeout=30,
            message=lambda: f"the page never showed {title!r}: {self.titles()}",
        )

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT)
        self.process = None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(executable):
        message = "Chromium is not installed (`make chromium` installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + ": the browser tests must run in CI")
        pytest.skip(message)
    browser = Browser(executable, tmp_path / "chromium-profile")
    try:
        yield browser
    finally:
        browser.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("target", ["flaskapp:app", "starletteapp:app"])
def test_browser_reloads_the_page_after_a_committed_edit(
    tmp_path: Path, browser: Browser, target: str
) -> None:
    with live_served(tmp_path / "project", target) as page:
        live = page.live
        browser.open(page.base + "/")
        browser.wait_title("page v1")
        # The page's script is connected: the reload comes as an event, not a hello.
        wait_until(lambda: live.streams == 1, timeout=30, message="the page never connected")
        page.edit("v1", "v2")
        browser.wait_title("page v2")
        wait_until(lambda: live.streams == 1, timeout=30, message="the page never reconnected")
        assert page.loads == ["v1", "v2"]  # one load per version: no reload loop


# The server of the restart test, run as its own process: killing it closes every
# connection, as the supervisor's old worker does when a new one takes over.
SERVER = """
    import socket, sys
    from hotmod._web.livereload import LiveReload

    kind, port, title = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    page = f"<html><head><title>{title}</title></head><body>{title}</body></html>".encode()
    live = LiveReload()

    def wsgi_app(environ, start_response):
        headers = [("Content-Type", "text/html"), ("Content-Length", str(len(page)))]
        start_response("200 OK", headers)
        return [page]

    async def asgi_app(scope, receive, send):
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html"), (b"content-length", str(len(page)).encode())]})
        await send({"type": "http.response.body", "body": page})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    if kind == "wsgi":
        from werkzeug.serving import make_server
        server = make_server("127.0.0.1", 0, live.wsgi(wsgi_app), threaded=True, fd=sock.fileno())
        server.serve_forever()
    else:
        import uvicorn
        config = uvicorn.Config(live.asgi(asgi_app), log_level="warning", lifespan="off")
        uvicorn.Server(config).run(sockets=[sock])
"""


@contextlib.contextmanager
def server_process(script: Path, kind: str, port: int, title: str) -> Iterator[int]:
    """The server above in a child process; yields its port once it listens; killed after."""
    child = subprocess.Popen(
        [sys.executable, str(script), kind, str(port), title],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child prints its port once it listens
        if not line:
            raise AssertionError(f"server did not start: {child.communicate(timeout=TIMEOUT)}")
        yield int(line)
    finally:
        child.kill()
        child.communicate(timeout=TIMEOUT)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_browser_reloads_the_page_after_a_restart(
    tmp_path: Path, browser: Browser, kind: str
) -> None:
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(SERVER), encoding="utf-8")
    with server_process(script, kind, 0, "server one") as port:
        browser.open(f"http://127.0.0.1:{port}/")
        browser.wait_title("server one")
    # The first server is gone (its connections with it); another takes its port.
    with server_process(script, kind, port, "server two"):
        browser.wait_title("server two")


# -- through hotmod serve --live-reload ------------------------------------------------------
SERVED_APP = """
    from flask import Flask

    import declined

    app = Flask(__name__)


    @app.route("/")
    def index():
        return f"<html><head><title>page v1 {declined.MARK}</title></head><body>v1</body></html>"
"""

DECLINED = """
    import hotmod

    hotmod.hot(__name__).decline()  # any edit of this module needs a restart
    MARK = "r1"
"""


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.timeout(120)
def test_browser_reloads_through_hotmod_serve(tmp_path: Path, browser: Browser) -> None:
    """An edit that restarts the worker, then one applied in place: the page follows both.

    The restart comes first: both workers are then at version 0, so only the
    new instance id can tell the page to reload.
    """
    root = tmp_path / "project"
    write_files(root, {"app.py": SERVED_APP, "declined.py": DECLINED})
    with Served(root, ["--live-reload", "app:app"], scratch=tmp_path / "scratch") as served:
        served.wait_event("started", timeout=30)
        browser.open(f"http://127.0.0.1:{served.port}/")
        browser.wait_title("page v1 r1")
        served.mark()
        _replace(root / "declined.py", '"r1"', '"r2"')
        served.wait_event("started", lambda e: bool(e.get("restarts")), timeout=30)
        browser.wait_title("page v1 r2")  # the new worker's page, loaded by the browser itself
        served.mark()
        _replace(root / "app.py", "page v1", "page v2")
        event = served.wait_reload()
        assert event.get("outcome") == "applied", served.describe(f"not in place: {event}")
        browser.wait_title("page v2 r2")
    assert served.proc is not None
    assert served.proc.returncode == 0, served.describe("SIGTERM must exit 0")
