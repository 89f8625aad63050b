"""The gate (G4): one version per request, under real load on real servers.

The unit tests pin the gate's rules (drain, hold, reentrancy, asyncio, the
drain timeout); the load tests serve a real app through the WSGI and ASGI
middleware while edits of two modules are committed over and over, and check
that no request fails and none sees one module's new version with the
other's old one.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import http.client
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import hotmod
from hotmod import Gate
from hotmod._gate import _LockedGate, asks_for_stream, default_gate
from hotmod.asgi import GateMiddleware as ASGIGate
from hotmod.wsgi import GateMiddleware as WSGIGate
from webapp import ServedApp, write_project

DEADLINE = 10.0


def wait_for(check: object, *, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.001)


# -- the rules ------------------------------------------------------------------------------
def test_commit_waits_for_work_in_flight_and_holds_new_work() -> None:
    gate = Gate(drain_timeout=DEADLINE)
    log: list[str] = []
    inside = threading.Event()
    finish = threading.Event()

    def request() -> None:
        with gate.reading():
            inside.set()
            finish.wait(DEADLINE)
            log.append("request done")

    def commit() -> None:
        with gate.writing() as still:
            log.append(f"commit ({still} in flight)")
            wait_for(lambda: gate.waiting == 1)  # the late request is held, not running
            log.append("commit done")

    def late() -> None:
        with gate.reading():
            log.append("late request")

    first = threading.Thread(target=request)
    first.start()
    inside.wait(DEADLINE)
    writer = threading.Thread(target=commit)
    writer.start()
    wait_for(lambda: gate.closed)
    latecomer = threading.Thread(target=late)
    latecomer.start()
    finish.set()
    for t in (first, writer, latecomer):
        t.join(DEADLINE)
    assert log == ["request done", "commit (0 in flight)", "commit done", "late request"]
    assert gate.in_flight == 0


def test_drain_timeout_bounds_the_wait() -> None:
    gate = Gate(drain_timeout=0.2)
    release = threading.Event()
    inside = threading.Event()

    def stream() -> None:
        with gate.reading():
            inside.set()
            release.wait(DEADLINE)

    t = threading.Thread(target=stream)
    t.start()
    inside.wait(DEADLINE)
    started = time.monotonic()
    with gate.writing() as still:
        assert still == 1
    assert time.monotonic() - started < DEADLINE
    release.set()
    t.join(DEADLINE)
    assert gate.in_flight == 0


def test_nested_work_never_waits_for_a_commit_waiting_for_it() -> None:
    gate = Gate(drain_timeout=DEADLINE)
    inside = threading.Event()
    proceed = threading.Event()
    nested_done = threading.Event()

    def request() -> None:
        with gate.reading():
            inside.set()
            proceed.wait(DEADLINE)
            with gate.reading():  # the commit is waiting for this very request
                nested_done.set()

    t = threading.Thread(target=request)
    t.start()
    inside.wait(DEADLINE)
    writer_done = threading.Event()

    def commit() -> None:
        with gate.writing() as still:
            assert still == 0
        writer_done.set()

    w = threading.Thread(target=commit)
    w.start()
    wait_for(lambda: gate.closed)
    proceed.set()
    assert nested_done.wait(DEADLINE)
    assert writer_done.wait(DEADLINE)
    t.join(DEADLINE)
    w.join(DEADLINE)


def _commit_in_thread(gate: Gate) -> tuple[threading.Thread, list[tuple[int, float]]]:
    """A commit from another thread: ``[(still in flight, seconds it took)]`` once done."""
    done: list[tuple[int, float]] = []

    def commit() -> None:
        started = time.monotonic()
        with gate.writing() as still:
            pass
        done.append((still, time.monotonic() - started))

    writer = threading.Thread(target=commit)
    writer.start()
    wait_for(lambda: gate.closed)
    return writer, done


def _start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
    """A WSGI server's ``start_response`` that sends nothing (the tests call apps directly)."""


NESTINGS = ["reading", "middleware", "commit"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("nesting", NESTINGS)
@pytest.mark.parametrize("locked", [False, True], ids=["lock-free", "locked"])
def test_work_nested_in_a_wsgi_request_never_waits_for_a_commit_waiting_for_it(
    nesting: str, locked: bool
) -> None:
    """The middleware sets no mark: it is found on the request's stack. Inside a request
    a commit waits for, ``gate.reading()``, the same gate's middleware again and a commit
    of its own go through at once (a drain timeout of 10 s would otherwise be hit)."""
    gate = _LockedGate(DEADLINE) if locked else Gate(DEADLINE)
    inside, proceed, log = threading.Event(), threading.Event(), []
    own: list[int] = []

    def leaf(environ: dict[str, object], start_response: object) -> list[bytes]:
        log.append("nested")
        return [b""]

    def app(environ: Any, start_response: Any) -> list[bytes]:
        inside.set()
        proceed.wait(DEADLINE)
        if nesting == "reading":
            with gate.reading():
                log.append("nested")
        elif nesting == "middleware":
            WSGIGate(leaf, gate=gate)(environ, start_response)
        else:
            with gate.writing() as still:  # does not wait for its own request
                own.append(still)
                log.append("nested")
        return [b"ok"]

    request = threading.Thread(
        target=WSGIGate(app, gate=gate), args=({"PATH_INFO": "/"}, _start_response)
    )
    request.start()
    assert inside.wait(DEADLINE)
    if nesting == "commit":
        proceed.set()
        request.join(DEADLINE)
        assert own == [0]
    else:
        writer, done = _commit_in_thread(gate)
        proceed.set()
        request.join(DEADLINE)
        writer.join(DEADLINE)
        [(still, seconds)] = done
        assert still == 0
        assert seconds < DEADLINE / 2  # drained, not timed out
    assert log == ["nested"]
    assert (gate.in_flight, gate.waiting, gate.closed) == (0, 0, False)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("nesting", NESTINGS)
@pytest.mark.parametrize("locked", [False, True], ids=["lock-free", "locked"])
def test_work_nested_in_an_asgi_request_never_waits_for_a_commit_waiting_for_it(
    nesting: str, locked: bool
) -> None:
    gate = _LockedGate(DEADLINE) if locked else Gate(DEADLINE)
    log: list[str] = []
    own: list[int] = []
    proceed = threading.Event()

    async def leaf(scope: Any, receive: Any, send: Any) -> None:
        log.append("nested")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.to_thread(proceed.wait, DEADLINE)
        if nesting == "reading":
            async with gate.reading():
                log.append("nested")
        elif nesting == "middleware":
            await ASGIGate(leaf, gate=gate)(scope, receive, send)
        else:
            with gate.writing() as still:
                own.append(still)
                log.append("nested")

    async def main() -> None:
        unused: Any = None  # receive and send: the app calls neither
        request = asyncio.create_task(ASGIGate(app, gate=gate)({"type": "http"}, unused, unused))
        await asyncio.to_thread(wait_for, lambda: gate.in_flight == 1)
        if nesting == "commit":
            proceed.set()
            await asyncio.wait_for(request, DEADLINE)
            assert own == [0]
            return
        writer, done = await asyncio.to_thread(_commit_in_thread, gate)
        proceed.set()
        await asyncio.wait_for(request, DEADLINE)
        await asyncio.to_thread(writer.join, DEADLINE)
        [(still, seconds)] = done
        assert still == 0
        assert seconds < DEADLINE / 2  # drained, not timed out

    asyncio.run(main())
    assert log == ["nested"]
    assert (gate.in_flight, gate.waiting, gate.closed) == (0, 0, False)


@pytest.mark.timeout(30)
def test_a_request_for_an_event_stream_is_not_waited_for_nor_is_work_nested_in_it() -> None:
    """A commit does not wait for a request that asked for an event stream; work that
    request starts while the commit holds the gate waits for it like new work."""
    gate = Gate(DEADLINE)
    inside, proceed, log = threading.Event(), threading.Event(), []

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        inside.set()
        proceed.wait(DEADLINE)
        with gate.reading():
            log.append("closed" if gate.closed else "open")
        return [b""]

    environ = {"PATH_INFO": "/events", "HTTP_ACCEPT": "text/event-stream"}
    request = threading.Thread(target=WSGIGate(app, gate=gate), args=(environ, _start_response))
    request.start()
    assert inside.wait(DEADLINE)
    with gate.writing() as still:  # goes ahead at once: the stream is not waited for
        assert still == 0
        proceed.set()
        wait_for(lambda: gate.waiting == 1)  # the stream's nested work is held
    request.join(DEADLINE)
    assert log == ["open"]


def test_a_generated_wsgi_body_holds_the_gate_until_closed_or_dropped() -> None:
    """A body that runs code as it is sent holds the gate while the server iterates it,
    until it is closed; one dropped unclosed (a test client's response) lets go too."""
    from werkzeug.test import Client

    gate = Gate(DEADLINE)
    steps: list[str] = []

    def app(environ: dict[str, object], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        steps.append(f"in flight: {gate.in_flight}")
        yield b"one "
        steps.append(f"in flight: {gate.in_flight}")
        yield b"two"

    middleware = WSGIGate(app, gate=gate)
    body: Any = middleware({"PATH_INFO": "/"}, _start_response)
    assert gate.in_flight == 1
    assert b"".join(body) == b"one two"
    assert steps == ["in flight: 1", "in flight: 1"]
    assert gate.in_flight == 1  # iterated, not yet closed
    body.close()
    assert gate.in_flight == 0
    body.close()  # closing twice lets go once
    assert gate.in_flight == 0

    response = Client(middleware).get("/")  # werkzeug's test client: nobody closes it
    assert response.get_data() == b"one two"
    assert gate.in_flight == 1
    del response
    gc.collect()
    assert gate.in_flight == 0


@pytest.mark.parametrize(("request_item", "stream"), [
    ({"HTTP_ACCEPT": "text/event-stream"}, True),
    ({"HTTP_ACCEPT": "text/html, text/event-stream;q=0.9"}, True),
    ({"HTTP_ACCEPT": "*/*"}, False),
    ({"PATH_INFO": "/"}, False),
    ({"type": "http", "headers": [(b"host", b"x"), (b"accept", b"text/event-stream")]}, True),
    ({"type": "http", "headers": [(b"accept", b"application/json")]}, False),
    ({"type": "http", "headers": []}, False),
    (None, False),
])
def test_which_requests_ask_for_an_event_stream(
    request_item: dict[str, object] | None, stream: bool
) -> None:
    assert asks_for_stream(request_item) is stream


def test_async_work_waits_without_blocking_the_loop() -> None:
    gate = Gate(drain_timeout=DEADLINE)
    entered = threading.Event()
    release = threading.Event()

    async def main() -> list[str]:
        log: list[str] = []

        async def request() -> None:
            async with gate.reading():
                log.append("request")

        async def ticker() -> None:
            for _ in range(3):
                log.append("tick")
                await asyncio.sleep(0)

        writer = threading.Thread(target=hold)
        writer.start()
        await asyncio.to_thread(entered.wait, DEADLINE)
        waiting = asyncio.create_task(request())
        await ticker()  # runs while the request waits: the loop is not blocked
        release.set()
        await asyncio.wait_for(waiting, DEADLINE)
        await asyncio.to_thread(writer.join, DEADLINE)
        return log

    def hold() -> None:
        with gate.writing():
            entered.set()
            release.wait(DEADLINE)

    log = asyncio.run(main())
    assert log == ["tick", "tick", "tick", "request"]


def test_hotmod_gate_is_the_reloaders_gate(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    reloader = hotmod.Reloader([tmp_path], packages=())
    assert reloader.gate is default_gate()
    with reloader, hotmod.gate():
        assert reloader.gate.in_flight == 1
    assert reloader.gate.in_flight == 0


# -- the read side's lock-free fast path, raced ---------------------------------------------
# Readers enter and leave without the lock (append, then check ``closed``); a commit
# closes, then counts. These races run many threads against many commits with the
# interpreter switching threads every microsecond, and check the one thing that
# matters: no unit of work is ever inside while a commit holds the gate.
@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class Race:
    """``readers`` threads entering and leaving while one thread makes ``commits`` commits."""

    def __init__(self, gate: Gate, *, readers: int = 8, commits: int = 1000) -> None:
        self.gate, self.commits = gate, commits
        self.committing = False  # True only while a commit holds the gate, drained
        self.overlaps = 0  # units of work that ran while it was True
        self.entries = 0
        self.stop = threading.Event()
        self._threads = [threading.Thread(target=self._reader, args=(n,)) for n in range(readers)]

    def _work(self) -> None:
        if self.committing:
            self.overlaps += 1
        self.entries += 1

    def _app(self, environ: dict[str, object], start_response: object) -> list[bytes]:
        self._work()
        return []

    def _reader(self, number: int) -> None:
        gate, deadline = self.gate, time.monotonic() + DEADLINE
        # Half of them are requests through the WSGI middleware (its inline fast path).
        middleware = WSGIGate(self._app, gate=gate)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
        while not self.stop.is_set() and time.monotonic() < deadline:
            if number % 2:
                middleware(environ, _start_response)
            else:
                with gate.reading():
                    self._work()

    def run(self) -> list[int]:
        """Start the readers, commit ``commits`` times; what each commit found in flight."""
        for t in self._threads:
            t.start()
        still: list[int] = []
        try:
            wait_for(lambda: self.entries > 100)
            for _ in range(self.commits):
                with self.gate.writing() as left:
                    still.append(left)
                    self.committing = True
                    wait_for(lambda: self.gate.waiting > 0)  # a reader came and was held
                    self.committing = False
        finally:
            self.stop.set()
            for t in self._threads:
                t.join(DEADLINE)
        assert not any(t.is_alive() for t in self._threads)
        return still


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", [Gate, _LockedGate], ids=["lock-free", "locked"])
def test_no_reader_is_inside_while_a_commit_holds_the_gate(
    fast_switching: None, kind: type[Gate]
) -> None:
    gate = kind(drain_timeout=DEADLINE)
    race = Race(gate)
    still = race.run()
    assert still == [0] * race.commits  # every commit drained everyone
    assert race.overlaps == 0
    assert (gate.in_flight, gate.waiting, gate.closed) == (0, 0, False)
    assert gate.swaps == race.commits


@pytest.mark.parametrize("kind", [Gate, _LockedGate], ids=["lock-free", "locked"])
def test_enter_and_exit_without_keys(kind: type[Gate]) -> None:
    """``enter()``/``try_enter()`` then ``exit()`` with no key, as code written before keys
    does: each exit gives back one unit, and a commit then finds none in flight."""
    gate = kind(DEADLINE)
    gate.enter()
    assert gate.try_enter()
    key = gate.enter({"PATH_INFO": "/", "HTTP_ACCEPT": "*/*"})  # a request's unit, keyed
    assert gate.in_flight == 3
    gate.exit()
    gate.exit()
    assert gate.in_flight == 1  # the keyed unit is not one a keyless exit gives back
    with gate.writing(timeout=0.1) as still:
        assert still == 1
        assert not gate.try_enter()  # closed, and this thread holds no unit of it
    gate.exit(key)
    gate.exit()  # nothing left: ignored
    assert (gate.in_flight, gate.closed) == (0, False)


def test_a_gate_is_lock_free_only_with_a_gil() -> None:
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert (type(Gate()) is Gate) == gil
    assert type(_LockedGate()) is _LockedGate


@pytest.mark.timeout(60)
def test_async_readers_racing_commits_never_overlap_them(fast_switching: None) -> None:
    """Tasks on an event loop enter with ``async with`` while another thread commits."""
    gate = Gate(drain_timeout=DEADLINE)
    state = {"committing": False, "overlaps": 0, "entries": 0}
    stop = threading.Event()

    async def task() -> None:
        while not stop.is_set():
            async with gate.reading():
                if state["committing"]:
                    state["overlaps"] += 1
                state["entries"] += 1
                await asyncio.sleep(0)  # other tasks run while this one is inside

    async def tasks() -> None:
        await asyncio.wait_for(asyncio.gather(*(task() for _ in range(20))), DEADLINE * 2)

    loop = threading.Thread(target=asyncio.run, args=(tasks(),))
    loop.start()
    try:
        wait_for(lambda: state["entries"] > 100)
        for _ in range(200):
            with gate.writing() as still:
                assert still == 0
                state["committing"] = True
                wait_for(lambda: gate.waiting > 0)  # a task came and was held
                state["committing"] = False
    finally:
        stop.set()
        loop.join(DEADLINE * 3)
    assert not loop.is_alive()
    assert state["overlaps"] == 0
    assert (gate.in_flight, gate.waiting) == (0, 0)


@pytest.mark.timeout(60)
def test_nested_work_under_racing_commits_never_deadlocks(fast_switching: None) -> None:
    """Readers that enter again from inside (a request calling a job) while commits come
    and go: every nested entry goes through, and no commit waits out its drain timeout."""
    gate = Gate(drain_timeout=DEADLINE)
    stop = threading.Event()
    nested = [0]

    def reader() -> None:
        deadline = time.monotonic() + DEADLINE
        while not stop.is_set() and time.monotonic() < deadline:
            with gate.reading():
                for _ in range(50):
                    pass
                with gate.reading():  # may find a commit waiting for this very reader
                    nested[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: nested[0] > 100)
        for _ in range(200):
            started = time.monotonic()
            with gate.writing() as still:
                assert still == 0
            assert time.monotonic() - started < DEADLINE / 2  # drained, not timed out
    finally:
        stop.set()
        for t in threads:
            t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert (gate.in_flight, gate.waiting) == (0, 0)


# -- under load -----------------------------------------------------------------------------
# Two modules, each with a version token; the view reads one, pauses, reads the
# other. Edits alternate between body-only changes (patched in place) and
# constants (re-executed: the app is rebuilt and swapped).
def _token_module(version: int, *, constant: bool) -> str:
    """Even versions change the constant (re-executed), odd ones the body (patched)."""
    if constant:
        return f'VERSION = "v{version}"\n\ndef token():\n    return VERSION\n'
    return f'VERSION = "v{version - 1}"\n\ndef token():\n    return "v{version}"\n'


FLASK_APP = """
    import time
    from flask import Flask
    from tokens import a, b

    app = Flask(__name__)

    @app.route("/")
    def index():
        first = a.token()
        time.sleep(0.004)
        return first + " " + b.token()
"""

STARLETTE_APP = """
    import asyncio
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from tokens import a, b

    async def index(request):
        first = a.token()
        await asyncio.sleep(0.004)
        return PlainTextResponse(first + " " + b.token())

    app = Starlette(routes=[Route("/", index)])
"""


@dataclass
class LoadReport:
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # older than a version committed before it began


class Load:
    """``clients`` threads, each opening a new connection per request, ``rate`` req/s in all."""

    def __init__(self, port: int, committed: list[int], *, rate: float, clients: int) -> None:
        self.port, self.committed = port, committed
        self.interval = clients / rate
        self.report = LoadReport()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(DEADLINE)

    def _client(self) -> None:
        report, next_at = self.report, time.monotonic()
        while not self.stop.is_set():
            floor = self.committed[-1]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode()
                conn.close()
            except OSError as exc:
                with self._lock:
                    report.failed.append(repr(exc))
                continue
            with self._lock:
                if resp.status != 200:
                    report.failed.append(f"{resp.status}: {body[:200]}")
                elif len(set(body.split())) != 1:
                    report.mixed.append(body)
                elif int(body.split()[0][1:]) < floor:
                    report.stale.append(f"{body} after v{floor} was committed")
                else:
                    report.ok += 1
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_no_request_sees_two_versions_under_load(tmp_path: Path, kind: str) -> None:
    """200 req/s for 20 s across 24 reloads of two modules: 0 failed, 0 mixed, 0 stale."""
    write_project(tmp_path, {
        "tokens/__init__.py": "",
        "tokens/a.py": _token_module(0, constant=True),
        "tokens/b.py": _token_module(0, constant=True),
        "web.py": FLASK_APP if kind == "wsgi" else STARLETTE_APP,
    })
    reloads, duration, rate = 24, 20.0, 200.0
    committed = [0]
    with ServedApp(tmp_path, "web:app") as served:
        assert served.get("/").body == "v0 v0"
        outcomes = []
        with Load(served.port, committed, rate=rate, clients=8) as load:
            started = time.monotonic()
            for version in range(1, reloads + 1):
                load.stop.wait(max(0.0, started + version * duration / (reloads + 1)
                                   - time.monotonic()))
                constant = version % 2 == 0
                result = served.edit({
                    "tokens/a.py": _token_module(version, constant=constant),
                    "tokens/b.py": _token_module(version, constant=constant),
                })
                outcomes.append((result.outcome.value, bool(result.reexecuted)))
                if result.outcome == "applied":
                    committed.append(version)
            load.stop.wait(max(0.0, started + duration - time.monotonic()))
        assert outcomes == [("applied", v % 2 == 0) for v in range(1, reloads + 1)]
        assert served.get("/").body == f"v{reloads} v{reloads}"
    report = load.report
    assert report.failed == []
    assert report.mixed == []
    assert report.stale == [], sorted(collections.Counter(report.stale).items())[:30]
    assert report.ok >= rate * duration * 0.25  # the load really ran (on a busy machine too)


# -- long-lived responses never hold a commit forever ---------------------------------------
STREAMS_FLASK = """
    import time
    from flask import Flask, Response
    from words import word

    app = Flask(__name__)

    @app.route("/events")
    def events():
        def stream():
            for _ in range(1000):
                yield f"data: {word()}\\n\\n"
                time.sleep(0.02)
        return Response(stream(), mimetype="text/event-stream")

    @app.route("/download")
    def download():
        def body():
            for _ in range(1000):
                yield word().encode() + b"\\n"
                time.sleep(0.02)
        return Response(body(), mimetype="application/octet-stream")

    @app.route("/")
    def index():
        return word()
"""

STREAMS_STARLETTE = """
    import asyncio
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from words import word

    async def events(request):
        async def stream():
            for _ in range(1000):
                yield f"data: {word()}\\n\\n"
                await asyncio.sleep(0.02)
        return StreamingResponse(stream(), media_type="text/event-stream")

    async def download(request):
        async def body():
            for _ in range(1000):
                yield word().encode() + b"\\n"
                await asyncio.sleep(0.02)
        return StreamingResponse(body(), media_type="application/octet-stream")

    async def echo(websocket):
        await websocket.accept()
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{word()} {text}")

    async def index(request):
        return PlainTextResponse(word())

    app = Starlette(routes=[Route("/events", events), Route("/download", download),
                            Route("/", index), WebSocketRoute("/ws", echo)])
"""

WORDS = 'def word():\n    return "old"\n'
NEW_WORDS = 'def word():\n    return "new"\n'


Stream = tuple[http.client.HTTPConnection, http.client.HTTPResponse]


def _open_stream(port: int, path: str, headers: dict[str, str] | None = None) -> Stream:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.readline()  # the stream is running: its request is in flight
    return conn, resp


def _lines_until(resp: http.client.HTTPResponse, text: bytes) -> None:
    deadline = time.monotonic() + DEADLINE
    while text not in resp.readline():
        assert time.monotonic() < deadline, f"{text!r} never came"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_an_event_stream_never_holds_a_commit(tmp_path: Path, kind: str) -> None:
    """A request for an event stream (the Accept header EventSource sends) is not waited
    for: commits go through at once (a drain timeout of 60 s, longer than this test may
    take, would otherwise be hit)."""
    write_project(tmp_path, {
        "words.py": WORDS, "web.py": STREAMS_FLASK if kind == "wsgi" else STREAMS_STARLETTE,
    })
    with ServedApp(tmp_path, "web:app", drain_timeout=60) as served:
        conn, resp = _open_stream(served.port, "/events", {"Accept": "text/event-stream"})
        try:
            result = served.applied({"words.py": NEW_WORDS})
            assert not any("in flight" in note for note in result.notes)
            assert served.get("/").body == "new"
            _lines_until(resp, b"data: new")  # the stream goes on, on the new code
        finally:
            conn.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", ["/download", "/events"])
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_long_download_holds_a_commit_only_for_the_drain_timeout(
    tmp_path: Path, kind: str, path: str
) -> None:
    """Any other long response holds a commit, up to the drain timeout: a download, and an
    event stream read by a client that did not ask for one (``curl`` without headers)."""
    write_project(tmp_path, {
        "words.py": WORDS, "web.py": STREAMS_FLASK if kind == "wsgi" else STREAMS_STARLETTE,
    })
    with ServedApp(tmp_path, "web:app", drain_timeout=0.5) as served:
        conn, _ = _open_stream(served.port, path)
        try:
            result = served.applied({"words.py": NEW_WORDS})
            assert any(f"1 request(s) still in flight after the 0.5 s drain (GET {path})" in note
                       for note in result.notes), result.notes
            assert served.get("/").body == "new"
        finally:
            conn.close()


@pytest.mark.timeout(30)
def test_an_open_websocket_never_holds_a_commit(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    write_project(tmp_path, {"words.py": WORDS, "web.py": STREAMS_STARLETTE})
    with ServedApp(tmp_path, "web:app", drain_timeout=60) as served, connect(
        f"ws://127.0.0.1:{served.port}/ws", open_timeout=DEADLINE
    ) as ws:
        ws.send("one")
        assert ws.recv(timeout=DEADLINE) == "old one"
        result = served.applied({"words.py": NEW_WORDS})
        assert not any("in flight" in note for note in result.notes)
        ws.send("two")
        assert ws.recv(timeout=DEADLINE) == "new two"  # the socket lives on, on the new code
