"""The web benchmark's measurements against one running server.

A :class:`Tool` says how a reloading server is started on the generated project
(``_webapp.py``); a :class:`Server` runs it in its own session, stderr and
stdout to a log, and is killed with everything it started. Then:

- :func:`latency_run`: save-to-live. Save ``probe_view.py`` (a new body for
  ``text()``), then ask ``/probe`` in a tight loop (one keep-alive connection,
  a new one after any error) until it answers the new text: the time from just
  before the save to that answer. Warm-up edits first, not counted.
- :func:`load_run`: a steady load from another process (``_webload.py
  steady``: 200 requests a second, each on a fresh connection) on
  ``/version``, and one save of both token modules a second into it; every
  answer is old, new, **mixed** (one token of each version) or **failed**.

Every wait has a deadline and fails with :class:`BenchError`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from _procs import BenchError, child_env
from _webapp import (
    FASTAPI_TARGET,
    FLASK_TARGET,
    WebProject,
    edit_probe,
    edit_tokens,
    version_text,
)

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "_webload.py"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
EDIT_TIMEOUT_S = 30.0
SETTLE_S = 0.3  # after an edit is live, before the next: restarts finish their own work


@dataclass(frozen=True)
class Tool:
    """One reloading server, and the app it serves."""

    name: str  # key in the results
    label: str  # how the report names it
    app: str  # "flask" or "fastapi"
    argv: Callable[[int, Path], list[str]]  # (port, event file) -> command

    @property
    def target(self) -> str:
        return FLASK_TARGET if self.app == "flask" else FASTAPI_TARGET


def tools(python: str, peers_python: str | None) -> list[Tool]:
    """The servers measured: hotmod on both apps, then each peer on its own framework."""

    def hotmod(target: str) -> Callable[[int, Path], list[str]]:
        return lambda port, events: [
            python, "-m", "hotmod", "serve", target, "--host", HOST, "--port", str(port),
            "--json-events", str(events), "--log-level", "warning",
        ]

    found = [
        Tool("hotmod-flask", "`hotmod serve` (Flask)", "flask", hotmod(FLASK_TARGET)),
        Tool("hotmod-fastapi", "`hotmod serve` (FastAPI)", "fastapi", hotmod(FASTAPI_TARGET)),
        Tool(
            "flask-reload", "`flask run --reload`", "flask",
            lambda port, _: [
                python, "-m", "flask", "--app", FLASK_TARGET, "run", "--reload",
                "--host", HOST, "--port", str(port),
            ],
        ),
        Tool(
            "uvicorn-reload", "`uvicorn --reload`", "fastapi",
            lambda port, _: [
                python, "-m", "uvicorn", FASTAPI_TARGET, "--reload", "--host", HOST,
                "--port", str(port), "--log-level", "warning",
            ],
        ),
    ]
    if peers_python is not None:
        hmr = str(Path(peers_python).with_name("uvicorn-hmr"))
        found.append(
            Tool(
                "uvicorn-hmr", "`uvicorn-hmr`", "fastapi",
                lambda port, _: [
                    hmr, FASTAPI_TARGET, "--host", HOST, "--port", str(port),
                    "--log-level", "warning",
                ],
            )
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process in its own session; a context manager that kills it on exit."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, log: Path) -> None:
        self.argv = list(argv)
        self.log = log
        # Every tool puts its working folder (the project's root) first on sys.path.
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{' '.join(self.argv)} exited; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


class NotLive(BenchError):
    """The server never answered with the edit's text before the deadline."""


class Poller:
    """GETs on one keep-alive connection, reopened after any error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> str | None:
        """The body of a 200 answer, or None (refused, reset, other status)."""
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=EDIT_TIMEOUT_S)
            self._conn.request("GET", path)
            response = self._conn.getresponse()
            body = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            self.close()
            return None
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return body if response.status == 200 else None

    def wait_for(self, path: str, text: str, *, timeout: float, server: Server) -> int:
        """Poll until ``path`` answers ``text``; the ``perf_counter_ns`` of that answer."""
        deadline = time.monotonic() + timeout
        while True:
            if self.get(path) == text:
                return time.perf_counter_ns()
            if time.monotonic() > deadline:
                raise NotLive(f"{path} never answered {text!r} in {timeout:.0f} s")
            if self._conn is None:  # refused or reset: the server is (re)starting
                server.check()
                time.sleep(0.0005)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def start(tool: Tool, project: WebProject, workdir: Path, session: str) -> tuple[Server, int]:
    """Start ``tool`` on a free port; return it once ``/probe`` answers."""
    port = free_port()
    events = workdir / f"{session}.events.jsonl"
    server = Server(tool.argv(port, events), cwd=project.root, log=workdir / f"{session}.log")
    try:
        poller = Poller(port)
        poller.wait_for("/probe", "edit-0", timeout=START_TIMEOUT_S, server=server)
        poller.close()
    except BaseException:
        server.stop()
        raise
    return server, port


def latency_run(
    server: Server, port: int, project: WebProject, *, count: int, warmup: int, first: int,
    save_mode: str,
) -> list[dict[str, Any]]:
    """``warmup + count`` body edits; each sample's save-to-live time in ms.

    An edit not live within ``EDIT_TIMEOUT_S`` is recorded (``latency_ms`` None)
    and ends the series: the server no longer follows the files.
    """
    samples: list[dict[str, Any]] = []
    poller = Poller(port)
    try:
        for i in range(warmup + count):
            n = first + i
            saved_ns = time.time_ns()  # wall clock, to compare with hotmod's events
            saved = time.perf_counter_ns()
            edit_probe(project, n, mode=save_mode)
            sample: dict[str, Any] = {
                "edit": n, "warmup": i < warmup, "latency_ms": None, "saved_ns": saved_ns
            }
            samples.append(sample)
            try:
                live = poller.wait_for(
                    "/probe", f"edit-{n}", timeout=EDIT_TIMEOUT_S, server=server
                )
            except NotLive:
                break
            sample["latency_ms"] = (live - saved) / 1e6
            time.sleep(SETTLE_S)  # not a synchronisation: spacing between edits
    finally:
        poller.close()
    return samples


def classify(records: Sequence[Sequence[Any]], new: int) -> dict[str, Any]:
    """Count a load round's answers: old, new, mixed, failed (and why)."""
    counts = {"old": 0, "new": 0, "mixed": 0, "failed": 0, "other": 0}
    why: dict[str, int] = {}
    slowest = 0.0
    for start_ns, end_ns, outcome in records:
        slowest = max(slowest, (end_ns - start_ns) / 1e6)
        tokens = re.fullmatch(r"a=a(\d+) b=b(\d+)", outcome)
        if outcome.startswith("fail:"):
            counts["failed"] += 1
            why[outcome[5:]] = why.get(outcome[5:], 0) + 1
        elif tokens is None:
            counts["other"] += 1
        elif tokens[1] != tokens[2]:
            counts["mixed"] += 1
        else:
            counts["new" if int(tokens[1]) == new else "old"] += 1
    return {**counts, "requests": len(records), "failures": why, "slowest_ms": slowest}


def load_run(
    server: Server, port: int, project: WebProject, workdir: Path, session: str, *,
    rounds: int, rate: float, before_s: float, after_s: float, first: int, save_mode: str,
) -> list[dict[str, Any]]:
    """``rounds`` saves of both token files, each under a steady load; counts per round.

    ``live`` says whether ``/version`` answered the new tokens within
    ``EDIT_TIMEOUT_S`` after the load (a server that missed the save).
    """
    results = []
    poller = Poller(port)
    try:
        for r in range(rounds):
            new = first + r
            argv = [
                sys.executable, str(LOADGEN), "steady", f"http://{HOST}:{port}/version",
                "--rate", str(rate), "--duration", str(before_s + after_s),
            ]
            with open(workdir / f"{session}.load{r}.err", "wb") as err:
                load = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
                )
            try:
                assert load.stdout is not None
                # It prints "ready" as it starts; EOF (b"") if it died first.
                if not select.select([load.stdout], [], [], START_TIMEOUT_S)[0]:
                    raise BenchError(f"load generator silent for {START_TIMEOUT_S:.0f} s")
                ready = load.stdout.readline()
                if not ready.startswith(b"ready"):
                    raise BenchError(f"load generator did not start; see {err.name}")
                time.sleep(before_s)  # the load pattern: steady traffic before the save
                saved_ns = time.time_ns()
                edit_tokens(project, new, mode=save_mode)
                out, _ = load.communicate(timeout=before_s + after_s + 60)
            finally:
                if load.poll() is None:
                    load.kill()
                    load.wait(timeout=10)
            records = json.loads(out.decode().strip().splitlines()[-1])["records"]
            try:
                poller.wait_for(
                    "/version", version_text(new), timeout=EDIT_TIMEOUT_S, server=server
                )
                live = True
            except NotLive:
                live = False
            results.append({"save_ns": saved_ns, "live": live, **classify(records, new)})
            time.sleep(SETTLE_S)
    finally:
        poller.close()
    return results


def wrk_path() -> str | None:
    """``wrk``, installed with apt-get when missing and we are root (Debian's package)."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("[bench] installing wrk (apt-get install wrk) ...", file=sys.stderr, flush=True)
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(argv, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            return None
    return shutil.which("wrk")


def pinning() -> tuple[list[str], list[str]]:
    """Command prefixes that put the servers on one core and the load generator on
    another (``taskset``, 2+ cores), so the two never compete; empty if unavailable."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return [], []
    return [taskset, "-c", "0"], [taskset, "-c", "1"]
