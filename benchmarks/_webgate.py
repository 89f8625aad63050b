"""A server for the gate-overhead runs: one trivial endpoint, bare and gated, in one process.

    python benchmarks/_webgate.py wsgi --port 8001
    python benchmarks/_webgate.py micro wsgi      # in-process cost per request (JSON)

Apps: ``wsgi`` and ``asgi`` answer ``ok`` with no framework (the worst case for a
fixed per-request cost), ``flask`` and ``fastapi`` a one-line route. Served the
way ``hotmod serve`` serves them: WSGI by Werkzeug's threaded server, ASGI by
uvicorn. One process serves the same app object on three paths:

- ``/bare``: the app itself;
- ``/same``: the app itself again (an A/A control: it must cost what ``/bare`` costs);
- ``/gate``: the app wrapped in hotmod's ``GateMiddleware``, read through a
  getter per request (``app_getter=True``, as the served app's slot is read).

A path dispatcher in front picks one (the same few steps for every path), and
answers itself ``/cpu`` (the process's CPU time and how many requests each
path has answered) and ``/trace/start`` and ``/trace/stop`` (the CPU time of
each request while the load comes on one connection, see :class:`Meter`).
Both variants thus share one process, one core and the machine's state of
the moment; ``_webgaterun.py`` drives them. Request logging is off: it would
cost more than what is measured.

``micro`` measures the middleware's own time per request with no server and
no sockets: the bare app called directly and through the gate in a loop,
median of several batches.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

APPS = ("wsgi", "asgi", "flask", "fastapi")
ASGI_APPS = ("asgi", "fastapi")


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def build(name: str) -> Any:
    if name == "wsgi":
        return wsgi_app
    if name == "asgi":
        return asgi_app
    if name == "flask":
        from flask import Flask

        flask_app = Flask(__name__)
        flask_app.add_url_rule("/", "index", lambda: "ok")
        return flask_app
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    fastapi_app = FastAPI()
    fastapi_app.add_api_route("/", lambda: "ok", response_class=PlainTextResponse)
    return fastapi_app


PATHS = ("/bare", "/same", "/gate")  # the order of the counts ``/cpu`` answers


class Meter:
    """What ``/cpu`` and ``/trace`` answer: requests per path, and CPU time per request.

    While tracing (``/trace/start`` … ``/trace/stop``), each request's CPU time
    is recorded for its path. Werkzeug closes the connection after every
    answer, so each request is a connection of its own, handled by a thread of
    its own: its CPU time is that thread's while it handles the connection
    (:meth:`handled`; reading, the app, writing, closing). uvicorn serves every
    request from one thread; with the load on one connection requests come
    one at a time, and the process's CPU time from one request's arrival at
    the dispatcher to the next one's is all the work done for the first
    (answering it, then reading and parsing the next, which costs the same for
    every path: they have the same length) (:meth:`arrived`).
    """

    def __init__(self) -> None:
        self.counters = [itertools.count() for _ in PATHS]
        self.spans: dict[str, list[int]] = {path: [] for path in PATHS}
        self.tracing = False
        self._last = 0
        self._last_path = ""

    def arrived(self, path: str, counter: itertools.count[int], *, spans: bool) -> None:
        next(counter)  # one atomic step: Werkzeug serves from many threads
        if spans and self.tracing:
            now = time.process_time_ns()
            if self._last_path:
                self.spans[self._last_path].append(now - self._last)
            self._last, self._last_path = now, path

    def handled(self, path: str, cpu_ns: int) -> None:
        spans = self.spans.get(path)
        if spans is not None and self.tracing:
            spans.append(cpu_ns)  # one atomic step

    def answer(self, path: str) -> bytes:
        if path == "/trace/start":
            for spans in self.spans.values():
                spans.clear()
            self._last_path, self.tracing = "", True
            return b"{}"
        if path == "/trace/stop":
            self.tracing = False
            return json.dumps(self.spans).encode()
        # The reading itself counts one more on every path; the runner takes it off.
        counts = " ".join(str(next(c)) for c in self.counters)
        return f"{time.process_time_ns()} {counts}".encode()


def dispatcher(name: str, meter: Meter) -> Any:
    """``/bare``, ``/same`` and ``/gate`` on one app object; ``/cpu`` and ``/trace/…``.

    The app sees every request at ``/``, its one route: a framework that tried
    its routes in turn (FastAPI does) would otherwise charge each path for the
    routes before it (in one run, 0.7 % per route), which is not the gate's.
    """
    app = build(name)
    arrived, answer = meter.arrived, meter.answer
    if name in ASGI_APPS:
        from hotmod.asgi import GateMiddleware as AsgiGate

        asgi_gated = AsgiGate(lambda: app, app_getter=True)
        asgi_routes = dict(zip(PATHS, zip((app, app, asgi_gated), meter.counters, strict=True),
                               strict=True))

        async def asgi_dispatch(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get("path", "")
            found = asgi_routes.get(path)
            if found is not None:
                arrived(path, found[1], spans=True)
                scope["path"], scope["raw_path"] = "/", b"/"
                await found[0](scope, receive, send)
            elif scope["type"] == "http":
                body = answer(path)
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            else:  # lifespan
                await app(scope, receive, send)

        return asgi_dispatch
    from hotmod.wsgi import GateMiddleware as WsgiGate

    wsgi_gated = WsgiGate(lambda: app, app_getter=True)
    wsgi_routes = dict(zip(PATHS, zip((app, app, wsgi_gated), meter.counters, strict=True),
                           strict=True))

    def wsgi_dispatch(environ: Any, start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        found = wsgi_routes.get(path)
        if found is not None:
            arrived(path, found[1], spans=False)
            environ["PATH_INFO"] = "/"
            result: Iterable[bytes] = found[0](environ, start_response)
            return result
        body = answer(path)
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return wsgi_dispatch


def serve(name: str, port: int) -> None:
    meter = Meter()
    served = dispatcher(name, meter)
    if name in ASGI_APPS:
        import uvicorn

        uvicorn.run(served, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Handler(WSGIRequestHandler):
        def handle(self) -> None:
            started = time.thread_time_ns()
            super().handle()
            meter.handled(getattr(self, "path", ""), time.thread_time_ns() - started)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    make_server(
        "127.0.0.1", port, served, threaded=True, request_handler=Handler
    ).serve_forever()


def _wsgi_once(app: Any) -> None:
    body = app({}, lambda status, headers, *exc: None)
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def micro(kind: str, *, calls: int = 20_000, batches: int = 7) -> dict[str, float]:
    """Microseconds per request of the bare app and of the gated one (medians of batches)."""
    import asyncio
    import statistics

    if kind == "wsgi":
        from hotmod.wsgi import GateMiddleware as WsgiGate

        gated = WsgiGate(lambda: wsgi_app, app_getter=True)
        apps: dict[str, Any] = {"plain": wsgi_app, "gate": gated}

        def batch(app: Any) -> float:
            started = time.perf_counter()
            for _ in range(calls):
                _wsgi_once(app)
            return (time.perf_counter() - started) / calls * 1e6

        times = {name: [batch(app) for _ in range(batches)] for name, app in apps.items()}
    else:
        from hotmod.asgi import GateMiddleware as AsgiGate

        bare: Any = asgi_app
        apps = {"plain": bare, "gate": AsgiGate(lambda: bare, app_getter=True)}
        scope = {"type": "http"}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            pass

        async def abatch(app: Any) -> float:
            started = time.perf_counter()
            for _ in range(calls):
                await app(scope, receive, send)
            return (time.perf_counter() - started) / calls * 1e6

        async def run_all() -> dict[str, list[float]]:
            return {name: [await abatch(app) for _ in range(batches)] for name, app in apps.items()}

        times = asyncio.run(run_all())
    return {f"{name}_us": statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["micro"]:
        print(json.dumps(micro(args_in[1])), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="benchmarks/_webgate.py")
    parser.add_argument("app", choices=APPS)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(args_in)
    serve(args.app, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
