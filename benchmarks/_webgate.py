"""A server for the gate-overhead runs: one trivial endpoint, with or without the gate.

    python benchmarks/_webgate.py wsgi --port 8001 [--gate]
    python benchmarks/_webgate.py flask --port 8001 [--gate]
    python benchmarks/_webgate.py micro wsgi      # in-process cost per request (JSON)

Apps: ``wsgi`` and ``asgi`` answer ``ok`` with no framework (the worst case for a
fixed per-request cost), ``flask`` and ``fastapi`` a one-line route. Served the
way ``hotmod serve`` serves them: WSGI by Werkzeug's threaded server, ASGI by
uvicorn; with ``--gate`` wrapped in hotmod's ``GateMiddleware`` reading the app
through a getter per request (``app_getter=True``, as the served app's slot is
read). Nothing else differs between the two variants. Request logging is off in
both: it would cost more than what is measured.

``micro`` measures what the throughput runs cannot resolve on a busy machine:
the middleware's own time per request, calling the bare app directly and
through the gate in a loop (no server, no sockets), median of several batches.
"""

from __future__ import annotations

import argparse
import logging
import sys
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


def serve(name: str, port: int, *, gate: bool) -> None:
    app = build(name)
    served: Any = app
    if name in ASGI_APPS:
        if gate:
            from hotmod.asgi import GateMiddleware as AsgiGate

            served = AsgiGate(lambda: app, app_getter=True)
        import uvicorn

        uvicorn.run(served, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    if gate:
        from hotmod.wsgi import GateMiddleware as WsgiGate

        served = WsgiGate(lambda: app, app_getter=True)
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    make_server("127.0.0.1", port, served, threaded=True).serve_forever()


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
    import time

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
        import json

        print(json.dumps(micro(args_in[1])), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="benchmarks/_webgate.py")
    parser.add_argument("app", choices=APPS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gate", action="store_true", help="wrap the app in GateMiddleware")
    args = parser.parse_args(args_in)
    serve(args.app, args.port, gate=args.gate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
