"""Child processes for the benchmarks: the observed program and hotmod's event log.

Every wait has a deadline and fails with :class:`BenchError`; every program runs
in its own session so :meth:`Program.stop` can kill it with everything it started
(a restart loop's children included).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

Event = dict[str, Any]


class BenchError(Exception):
    """A benchmark step did not complete (deadline passed, program died)."""


@dataclass(frozen=True)
class Observation:
    """One line of the program's output: the value it saw and when (``time.time_ns()``)."""

    value: str
    time_ns: int


def child_env() -> dict[str, str]:
    """The environment of a measured program: as on a developer's machine.

    Bytecode caching is on (an inherited PYTHONDONTWRITEBYTECODE would make
    every start compile hotmod and the project from source).
    """
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class Program:
    """A running benchmark program whose stdout lines are observations.

    Usable as a context manager: the process group is killed on exit, whatever
    happened.
    """

    def __init__(self, argv: Sequence[str], *, cwd: Path, log: Path) -> None:
        self.argv = list(argv)
        self.log = log
        self._observations: list[Observation] = []
        self._eof = False
        self._cond = threading.Condition()
        with open(log, "wb") as err:
            self.spawned_ns = time.time_ns()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, name="bench-reader", daemon=True)
        self._reader.start()

    def __enter__(self) -> Program:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            value, _, stamp = raw.decode(errors="replace").strip().rpartition(" ")
            if not value or not stamp.isdigit():
                continue  # not an observation (a stray print)
            with self._cond:
                self._observations.append(Observation(value, int(stamp)))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def exited(self) -> bool:
        """Whether the program's stdout closed (it exited, or is exiting)."""
        with self._cond:
            return self._eof

    def count(self) -> int:
        """How many observations so far (a mark for :meth:`wait_for`)."""
        with self._cond:
            return len(self._observations)

    def since(self, mark: int) -> list[Observation]:
        with self._cond:
            return self._observations[mark:]

    def wait_for(self, value: str | None, *, since: int = 0, timeout: float) -> Observation:
        """The first observation at index ``since`` or later equal to ``value`` (any if None)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for obs in self._observations[since:]:
                    if value is None or obs.value == value:
                        return obs
                since = len(self._observations)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._cond.wait(left)
        why = "exited" if self._eof else f"gave no {value!r} within {timeout:.0f} s"
        raise BenchError(f"{' '.join(self.argv)}: {why}; see {self.log}")

    def stop(self) -> None:
        """Kill the program's whole process group and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # exited since poll()
                os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._reader.join(timeout=5)


class EventLog:
    """Reads hotmod's ``--json-events`` file as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        """Read the lines appended since the last call; return the new events."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        new = [json.loads(line) for line in lines if line.strip()]
        self.events.extend(new)
        return new

    def of(self, kind: str) -> list[Event]:
        self.poll()
        return [e for e in self.events if e.get("event") == kind]

    def wait(self, predicate: Callable[[list[Event]], bool], *, timeout: float, what: str) -> None:
        """Poll (every ms) until ``predicate(all events)`` holds, or fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if predicate(self.events):
                return
            if time.monotonic() > deadline:
                raise BenchError(f"no {what} in {self.path} within {timeout:.0f} s")
            time.sleep(0.001)

    def wait_count(self, kind: str, count: int, *, timeout: float) -> list[Event]:
        """Wait until at least ``count`` events of ``kind`` were written; return them all."""
        self.wait(
            lambda evs: sum(e.get("event") == kind for e in evs) >= count,
            timeout=timeout,
            what=f"{count} {kind!r} events",
        )
        return self.of(kind)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` in ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")
