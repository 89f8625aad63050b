"""The fresh-start oracle (DESIGN §6): run a program under hotmod, edit it, compare.

A test writes a small project into a temporary folder, starts it under
``hotmod run --json-events FILE`` as a real subprocess, edits files on disk and
then checks that what the running program computes (:meth:`HotProgram.probe`)
equals what a fresh ``python main.py`` computes on the current sources
(:meth:`HotProgram.fresh_probe`)::

    prog = hot_program({"app.py": APP})          # started, ``started`` event seen
    prog.edit("app.py", APP.replace("1", "2"))
    event = prog.wait_for_reload()               # the ``reload`` event of that save
    assert prog.probe() == prog.fresh_probe()

The entry script speaks a one-line protocol: each ``probe`` line on stdin is
answered by one stdout line ``PROBE_PREFIX + json``; a ``ping`` line by
``{"ok": "pong"}`` (start-up waits for it: once the program serves, the
watcher is armed). :data:`DEFAULT_MAIN`
imports ``app`` and answers with ``app.probe()``; tests may bring their own.

Every wait has a deadline and fails with what the child printed and reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

PROBE_PREFIX = "@@hotmod-probe "

#: Deadlines (seconds). Generous: CI machines are slow, a passing run never waits them out.
START_TIMEOUT = 30.0
RELOAD_TIMEOUT = 15.0
PROBE_TIMEOUT = 15.0
FRESH_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

DEFAULT_MAIN = f'''\
"""Probe server: each "probe" line on stdin is answered with app.probe() as JSON."""
import json
import sys

import app

PREFIX = {PROBE_PREFIX!r}


def serve() -> None:
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip() == "ping":
            print(PREFIX + json.dumps({{"ok": "pong"}}), flush=True)
            continue
        if line.strip() != "probe":
            continue
        try:
            answer = {{"ok": app.probe()}}
        except Exception as exc:  # report the error as the answer, keep serving
            answer = {{"error": type(exc).__name__ + ": " + str(exc)}}
        print(PREFIX + json.dumps(answer, sort_keys=True), flush=True)


if __name__ == "__main__":
    serve()
'''

#: A helper a project module can paste to report the line numbers of a traceback.
TRACEBACK_HELPER = """\
import os
import traceback


def tb_lines(exc: BaseException) -> list[list[object]]:
    out = []
    for frame in traceback.extract_tb(exc.__traceback__):
        out.append([os.path.basename(frame.filename), frame.name, frame.lineno, frame.line])
    return out
"""


class OracleError(AssertionError):
    """A wait ran out or the child misbehaved; the message carries the diagnostics."""


def code(text: str) -> str:
    """Dedent a triple-quoted source snippet (leading newline dropped)."""
    return textwrap.dedent(text).lstrip("\n")


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write ``relpath -> source`` into ``root`` (folders created, sources dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code(text), encoding="utf-8")


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    message: str | Callable[[], str],
    interval: float = 0.01,
) -> None:
    """Poll ``predicate`` until it is true; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise OracleError(f"timed out after {timeout:.1f}s: {text}")
        time.sleep(interval)


def json_diff(hot: Any, fresh: Any, path: str = "") -> list[str]:
    """Where two probe answers differ, as ``path: hot != fresh`` lines."""
    if isinstance(hot, dict) and isinstance(fresh, dict):
        out: list[str] = []
        for key in sorted(set(hot) | set(fresh), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in hot or key not in fresh:
                got, want = hot.get(key, "<missing>"), fresh.get(key, "<missing>")
                out.append(f"{sub}: hot {got!r} != fresh {want!r}")
            else:
                out += json_diff(hot[key], fresh[key], sub)
        return out
    if hot != fresh:
        return [f"{path or '<answer>'}: hot {hot!r} != fresh {fresh!r}"]
    return []


def _unwrap(envelope: Any) -> Any:
    if isinstance(envelope, dict) and "ok" in envelope:
        return envelope["ok"]
    if isinstance(envelope, dict) and "error" in envelope:
        return {"__probe_error__": envelope["error"]}
    return envelope


def parse_probe_output(stdout: str) -> Any:
    """The answer of the first probe line in ``stdout`` (``None`` if there is none)."""
    for line in stdout.splitlines():
        if line.startswith(PROBE_PREFIX):
            return _unwrap(json.loads(line[len(PROBE_PREFIX) :]))
    return None


_fresh_counter = 0
_fresh_lock = threading.Lock()


def run_fresh(
    root: Path,
    entry: Sequence[str],
    *,
    scratch: Path,
    stdin: str = "probe\n",
    args: Sequence[str] = (),
    timeout: float = FRESH_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``python <entry>`` fresh in ``root``, bytecode caches out of the picture.

    ``PYTHONPYCACHEPREFIX`` points at an empty folder so no ``.pyc`` written by the
    hot program (possibly stale: same size, same mtime second) is ever read.
    """
    global _fresh_counter
    with _fresh_lock:
        _fresh_counter += 1
        n = _fresh_counter
    env = dict(os.environ)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / f"fresh-pycache-{n}")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, *entry, *args],
        cwd=root,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def snapshot_sources(root: Path) -> dict[str, str]:
    """Every ``.py`` file under ``root`` (relative path -> text), caches skipped."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        out[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    return out


class HotProgram:
    """A project run under ``hotmod run`` in a subprocess, driven over stdin/stdout.

    ``entry`` is what follows ``hotmod run`` (and ``python`` for the fresh run):
    ``("main.py",)`` or ``("-m", "pkg.main")``.
    """

    def __init__(
        self,
        root: Path,
        *,
        scratch: Path,
        entry: Sequence[str] = ("main.py",),
        hotmod_args: Sequence[str] = (),
        debounce_ms: int | None = None,
        name: str = "program",
    ) -> None:
        self.root = root
        self.scratch = scratch
        self.entry = tuple(entry)
        self.name = name
        scratch.mkdir(parents=True, exist_ok=True)
        self.events_path = scratch / f"{name}-events.jsonl"
        self.stderr_path = scratch / f"{name}-stderr.log"
        args = list(hotmod_args)
        if debounce_ms is not None:
            args += ["--debounce-ms", str(debounce_ms)]
        self.argv = [
            sys.executable,
            "-m",
            "hotmod",
            "run",
            "--json-events",
            str(self.events_path),
            *args,
            *self.entry,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self._answers: queue.Queue[str] = queue.Queue()
        self.other_stdout: list[str] = []
        self._reader: threading.Thread | None = None
        self._stderr_fh: IO[str] | None = None
        self._cursor = 0  # events before this index have been consumed
        self._together: dict[str, str] | None = None  # edits held back by together()
        self.restarts = 0
        self.history: list[str] = []  # what the test did, for failure messages

    # -- life cycle ---------------------------------------------------------

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the child and wait for its first ``started`` event."""
        self.events_path.unlink(missing_ok=True)
        self._stderr_fh = open(self.stderr_path, "w", encoding="utf-8")  # noqa: SIM115
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_fh,
            text=True,
            bufsize=1,
            env=env,
        )
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"{self.name}-stdout", daemon=True
        )
        self._reader.start()
        self.history.append("start")
        self.wait_for_event("started", timeout=timeout)
        self.wait_serving(timeout=timeout)

    def wait_serving(self, *, timeout: float = START_TIMEOUT) -> None:
        """Ping until the program answers (the ``started`` event, written once the
        watchers are armed, may come before or after the program's first answer)."""
        answer = self._ask("ping", timeout=timeout)
        if answer != "pong":
            raise self.fail(f"expected 'pong', got {answer!r}")

    def _read_stdout(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PROBE_PREFIX):
                self._answers.put(line)
            else:
                self.other_stdout.append(line.rstrip("\n"))

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> int | None:
        """Close stdin (the probe loop ends), then terminate/kill if it lingers."""
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        finally:
            if self._reader is not None:
                self._reader.join(timeout=timeout)
            if proc.stdout is not None:
                with contextlib.suppress(OSError):
                    proc.stdout.close()
            if self._stderr_fh is not None:
                self._stderr_fh.close()
                self._stderr_fh = None
        return proc.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- diagnostics ----------------------------------------------------------

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def describe(self, *, tail: int = 12000) -> str:
        """Everything useful when a test fails: what happened, events, stderr."""
        rc = None if self.proc is None else self.proc.poll()
        events = "\n".join(json.dumps(e, sort_keys=True) for e in self.events())
        stderr = self.stderr_text()
        if len(stderr) > tail:
            stderr = "...\n" + stderr[-tail:]
        other = "\n".join(self.other_stdout[-50:])
        return (
            f"argv: {self.argv}\ncwd: {self.root}\nreturncode: {rc}\n"
            f"test steps: {self.history}\n"
            f"--- events ({self.events_path}) ---\n{events}\n"
            f"--- other stdout ---\n{other}\n"
            f"--- stderr ({self.stderr_path}) ---\n{stderr}"
        )

    def fail(self, message: str) -> OracleError:
        return OracleError(f"{message}\n{self.describe()}")

    # -- events ---------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        """All complete event lines written so far."""
        try:
            text = self.events_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # being written
            if line.strip():
                out.append(json.loads(line))
        return out

    def reload_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == "reload"]

    def mark(self) -> int:
        """Skip every event written so far: waits look only at later ones."""
        if self._together is None:
            self._cursor = len(self.events())
        return self._cursor

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Several edits meant as one save: one mark, all files written back to back.

        The edits inside are held (``read`` sees them) and written when the
        block ends, microseconds apart, so they arrive as one batch even on a
        loaded machine; use a ``debounce_ms`` of some tens of milliseconds.
        """
        self.mark()
        self._together = {}
        try:
            yield
            held = self._together
        finally:
            self._together = None
        for rel, text in held.items():  # as held: already dedented
            self.path(rel).parent.mkdir(parents=True, exist_ok=True)
            self.path(rel).write_text(text, encoding="utf-8")

    def wait_for_event(
        self,
        kind: str,
        *,
        timeout: float = RELOAD_TIMEOUT,
        accept: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The next event of ``kind`` after the cursor (which moves past it)."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            events = self.events()
            for i in range(self._cursor, len(events)):
                e = events[i]
                if e.get("event") == kind and (accept is None or accept(e)):
                    self._cursor = i + 1
                    found.append(e)
                    return True
            if not self.alive:
                raise self.fail(f"child exited while waiting for a {kind!r} event")
            return False

        wait_until(
            check,
            timeout=timeout,
            message=lambda: self.describe() + f"\n(waiting for a {kind!r} event)",
        )
        if kind == "started":
            self.restarts = int(found[0].get("restarts", 0))
        return found[0]

    def wait_for_reload(
        self,
        *,
        timeout: float = RELOAD_TIMEOUT,
        skip_unchanged: bool = True,
        paths: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """The next ``reload`` event after the last edit; after a restart, also the
        new ``started`` event (the program then serves probes again).

        ``skip_unchanged`` ignores ``unchanged`` batches (a save's trailing event);
        ``paths`` (relative) only accepts an event naming one of them.
        """
        wanted = None if paths is None else {str((self.root / p).resolve()) for p in paths}

        def accept(e: dict[str, Any]) -> bool:
            if skip_unchanged and e.get("outcome") == "unchanged":
                return False
            if wanted is not None:
                got = {str(Path(p).resolve()) for p in e.get("paths", [])}
                return bool(got & wanted)
            return True

        event = self.wait_for_event("reload", timeout=timeout, accept=accept)
        self.history.append(f"reload:{event.get('outcome')}")
        if event.get("outcome") == "restart":
            before = self.restarts
            self.wait_for_event(
                "started",
                timeout=START_TIMEOUT,
                accept=lambda e: int(e.get("restarts", 0)) > before,
            )
            self.wait_serving()
        return event

    def expect(self, event: dict[str, Any], *outcomes: str) -> dict[str, Any]:
        """Fail (with diagnostics) unless the event's outcome is one of ``outcomes``."""
        if event.get("outcome") not in outcomes:
            raise self.fail(
                f"expected outcome {' or '.join(outcomes)}, got {event.get('outcome')!r}:\n"
                f"{json.dumps(event, sort_keys=True, indent=1)}"
            )
        return event

    def reload_and_expect(self, *outcomes: str, timeout: float = RELOAD_TIMEOUT) -> dict[str, Any]:
        """:meth:`wait_for_reload`, then :meth:`expect` one of ``outcomes``."""
        return self.expect(self.wait_for_reload(timeout=timeout), *outcomes)

    # -- probes ---------------------------------------------------------------

    def probe(self, *, timeout: float = PROBE_TIMEOUT) -> Any:
        """Ask the running program; its answer (``{"__probe_error__": ...}`` if it raised)."""
        return self._ask("probe", timeout=timeout)

    def _ask(self, request: str, *, timeout: float) -> Any:
        proc = self.proc
        if proc is None or proc.stdin is None:
            raise OracleError("program not started")
        while not self._answers.empty():  # an answer nobody waited for: drop it
            self._answers.get_nowait()
        try:
            proc.stdin.write(request + "\n")
            proc.stdin.flush()
        except OSError as exc:
            raise self.fail(f"cannot write the probe: {exc!r}") from exc
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._answers.get(timeout=0.05)
                break
            except queue.Empty:
                if proc.poll() is not None and self._answers.empty():
                    raise self.fail(f"child exited while answering {request!r}") from None
                if time.monotonic() >= deadline:
                    raise self.fail(f"no answer to {request!r} within {timeout:.1f}s") from None
        return _unwrap(json.loads(line[len(PROBE_PREFIX) :]))

    def fresh_run(self) -> subprocess.CompletedProcess[str]:
        """Run a fresh ``python <entry>`` on the current sources; the raw result."""
        return run_fresh(self.root, self.entry, scratch=self.scratch)

    def fresh_probe(self, sources: Mapping[str, str] | None = None) -> Any:
        """What a fresh ``python <entry>`` answers on the current sources (or on
        ``sources``, a ``relpath -> text`` snapshot run in a scratch folder)."""
        root = self.root
        if sources is not None:
            global _fresh_counter
            with _fresh_lock:
                _fresh_counter += 1
                root = self.scratch / f"fresh-src-{_fresh_counter}"
            write_files(root, sources)
        try:
            result = run_fresh(root, self.entry, scratch=self.scratch)
        finally:
            if sources is not None:
                shutil.rmtree(root, ignore_errors=True)
        answer = parse_probe_output(result.stdout)
        if answer is None:
            raise self.fail(
                f"the fresh run gave no probe answer (rc={result.returncode})\n"
                f"--- fresh stdout ---\n{result.stdout}\n--- fresh stderr ---\n{result.stderr}"
            )
        return answer

    def assert_matches_fresh(self, *, what: str = "") -> Any:
        """Probe the live program and a fresh one; they must agree. Returns the answer."""
        hot = self.probe()
        fresh = self.fresh_probe()
        if hot != fresh:
            raise self.fail(
                f"oracle mismatch{' (' + what + ')' if what else ''}:\n"
                + "".join(f"  {line}\n" for line in json_diff(hot, fresh))
                + f"  hot:   {json.dumps(hot, sort_keys=True)}\n"
                f"  fresh: {json.dumps(fresh, sort_keys=True)}"
            )
        return hot

    # -- edits ----------------------------------------------------------------

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> str:
        if self._together is not None and rel in self._together:
            return self._together[rel]
        return self.path(rel).read_text(encoding="utf-8")

    def edit(self, rel: str, text: str) -> None:
        """Overwrite ``rel`` in place (open, truncate, write): the usual editor save."""
        self.edit_many({rel: text})

    def edit_many(self, files: Mapping[str, str]) -> None:
        """Write several files back to back (one batch when within the debounce)."""
        self.mark()
        self.history.append(f"edit:{','.join(files)}")
        if self._together is not None:
            self._together.update({rel: code(text) for rel, text in files.items()})
            return
        write_files(self.root, files)

    def replace(self, rel: str, old: str, new: str, *, count: int = 1) -> None:
        """Edit ``rel`` replacing ``old`` by ``new`` (which must occur)."""
        text = self.read(rel)
        if old not in text:
            raise OracleError(f"{old!r} not in {rel}:\n{text}")
        self.mark()
        self.history.append(f"replace:{rel}")
        if self._together is not None:
            self._together[rel] = text.replace(old, new, count)
            return
        self.path(rel).write_text(text.replace(old, new, count), encoding="utf-8")

    def save_by_rename(self, rel: str, text: str) -> None:
        """Write a temporary sibling, then ``os.replace`` it over ``rel`` (vim, PyCharm)."""
        self.mark()
        self.history.append(f"save-by-rename:{rel}")
        target = self.path(rel)
        tmp = target.with_name(target.name + ".hotmod-tmp~")
        tmp.write_text(code(text), encoding="utf-8")
        os.replace(tmp, target)

    def sed(self, rel: str, expression: str) -> None:
        """``sed -i -e expression rel`` (GNU sed also saves by rename)."""
        self.mark()
        self.history.append(f"sed:{rel}")
        subprocess.run(["sed", "-i", "-e", expression, rel], cwd=self.root, check=True)

    def delete(self, *rels: str) -> None:
        self.mark()
        self.history.append(f"delete:{','.join(rels)}")
        for rel in rels:
            self.path(rel).unlink()

    def rename(self, old: str, new: str) -> None:
        self.mark()
        self.history.append(f"rename:{old}->{new}")
        os.rename(self.path(old), self.path(new))


class HotProgramFactory(Protocol):
    """The ``hot_program`` fixture: write a project and start it under hotmod."""

    def __call__(
        self,
        files: Mapping[str, str],
        *,
        entry: Sequence[str] = ("main.py",),
        hotmod_args: Sequence[str] = (),
        debounce_ms: int | None = None,
        main: str | None = DEFAULT_MAIN,
        start: bool = True,
    ) -> HotProgram: ...
