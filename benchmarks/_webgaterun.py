"""The gate's cost under a real load generator: ``wrk`` against ``_webgate.py``'s paths.

One server process serves the same trivial app bare (``/bare``), bare again
(``/same``, the A/A control) and through hotmod's gate (``/gate``). A round
is one short ``wrk`` run on each path, in an order that goes through all six
permutations over six rounds, so no path is always first or last. Around
each run the server is asked for its CPU time and request counts (``/cpu``),
which gives each run its **CPU time per request** beside wrk's **requests a
second**.

Why both, and why one process: on a shared machine the throughput of a run
moves with whatever else the cores do (two runs of the same server seconds
apart differ by tens of percent), while the CPU time the server spends on a
request hardly does — and a server that saturates its core, as these do, has
a throughput overhead equal to its CPU-per-request overhead. Serving both
variants from one process on one pinned core makes them share the same
interpreter, warm caches and machine state; the A/A path shows how much of a
difference the method itself reports when there is none.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from itertools import permutations
from pathlib import Path
from typing import Any

from _procs import BenchError
from _websessions import HOST, LOADGEN, START_TIMEOUT_S, Poller, Server, free_port, pinning

HERE = Path(__file__).resolve().parent
GATE_SERVER = HERE / "_webgate.py"
PATHS = ("/bare", "/same", "/gate")  # as _webgate.PATHS: the order of /cpu's counts
ORDERS = list(permutations(PATHS))


# wrk picks each request's path at random: the three share every moment of a run.
MIXED_SCRIPT = """
local paths = {"/bare", "/same", "/gate"}
math.randomseed(6)
request = function()
  return wrk.format("GET", paths[math.random(3)])
end
"""


def _load(
    port: int, path: str, seconds: float, connections: int, wrk: str | None,
    script: Path | None = None,
) -> float:
    """Requests a second that ``wrk`` (or ``_webload.py flood``) got from ``path``
    (from the paths ``script`` picks, with one)."""
    url = f"http://{HOST}:{port}{path}"
    if wrk is not None:
        extra = ["-s", str(script)] if script is not None else []
        done = subprocess.run(
            [*pinning()[1], wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", *extra, url],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )
        match = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
        if done.returncode != 0 or match is None:
            raise BenchError(f"wrk failed: {done.stdout}{done.stderr}")
        if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
            raise BenchError(f"wrk saw errors: {done.stdout}")
        return float(match.group(1))
    done = subprocess.run(
        [*pinning()[1], sys.executable, str(LOADGEN), "flood", url,
         "--connections", str(connections), "--duration", str(seconds)],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"load generator failed: {done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["answers"]) / float(result["seconds"])


class _Meter:
    """The server's ``/cpu`` answers: process CPU time (ns) and requests per path."""

    def __init__(self, port: int) -> None:
        self._poller = Poller(port)

    def read(self) -> tuple[int, dict[str, int]]:
        text = self._poller.get("/cpu")
        if text is None:
            raise BenchError("the gate server did not answer /cpu")
        cpu, *counts = (int(field) for field in text.split())
        return cpu, dict(zip(PATHS, counts, strict=True))

    def trace(self, action: str) -> dict[str, list[int]]:
        text = self._poller.get(f"/trace/{action}")
        if text is None:
            raise BenchError(f"the gate server did not answer /trace/{action}")
        spans: dict[str, list[int]] = json.loads(text)
        return spans

    def close(self) -> None:
        self._poller.close()


def _start(app: str, workdir: Path) -> tuple[Server, int]:
    port = free_port()
    argv = [*pinning()[0], sys.executable, str(GATE_SERVER), app, "--port", str(port)]
    server = Server(argv, cwd=HERE, log=workdir / f"gate-{app}.log")
    deadline = time.monotonic() + START_TIMEOUT_S
    poller = Poller(port)
    try:
        while poller.get("/gate") != "ok":
            server.check()
            if time.monotonic() > deadline:
                raise BenchError(f"gate server {app} did not start; see {server.log}")
            time.sleep(0.01)
    except BaseException:
        server.stop()
        raise
    finally:
        poller.close()
    return server, port


def gate_compare(
    app: str, workdir: Path, *, blocks: int, rounds: int, seconds: float, warmup_s: float,
    connections: int, wrk: str | None,
) -> dict[str, Any]:
    """The gate's cost on ``app``, measured two ways in one server process.

    ``blocks``: runs of one connection with each request's path drawn at random;
    per block and path, the median CPU time per request (ns). ``rounds``: one
    run per path with ``connections`` connections, in turn; per run, wrk's rate,
    the requests the server counted and the CPU time it spent.
    """
    result: dict[str, Any] = {"app": app, "blocks": [], "runs": []}
    server, port = _start(app, workdir)
    meter = _Meter(port)
    try:
        for path in PATHS:  # warm every path's code and caches; not counted
            _load(port, path, warmup_s, connections, wrk)
        if wrk is not None:
            script = workdir / "gate-mixed.lua"
            script.write_text(MIXED_SCRIPT, encoding="utf-8")
            for _ in range(blocks):
                server.check()
                meter.trace("start")
                _load(port, "/", seconds, 1, wrk, script)
                spans = meter.trace("stop")
                result["blocks"].append({
                    path: {"requests": len(v), "median_ns": statistics.median(v)}
                    for path, v in spans.items() if v
                })
        for number in range(rounds):
            for path in ORDERS[number % len(ORDERS)]:
                server.check()
                cpu_before, before = meter.read()
                rate = _load(port, path, seconds, connections, wrk)
                cpu_after, after = meter.read()
                # Each /cpu reading counts itself once on every path: take it off.
                requests = after[path] - before[path] - 1
                if requests <= 0:
                    raise BenchError(f"{app} {path}: no requests counted")
                result["runs"].append({
                    "round": number, "path": path, "rate": rate, "requests": requests,
                    "cpu_ns": cpu_after - cpu_before,
                })
    finally:
        meter.close()
        server.stop()
    return result


def gate_micro(kind: str) -> dict[str, float]:
    """The gate middleware's own time per request, in-process (``_webgate.py micro``)."""
    done = subprocess.run(
        [*pinning()[0], sys.executable, str(GATE_SERVER), "micro", kind],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"_webgate.py micro {kind} failed: {done.stderr[-500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
