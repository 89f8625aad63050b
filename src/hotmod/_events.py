"""Report: what each reload did, for people (terminal) and for programs (JSON lines).

The engine produces one :class:`ReloadResult` per batch; the runner adds
``started`` and ``restart`` events. Reporters implement :class:`Reporter`.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from ._errors import ReloadError

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """How a batch ended."""

    APPLIED = "applied"  # the new code is live
    UNCHANGED = "unchanged"  # nothing that matters changed (comments, unrelated files)
    FAILED = "failed"  # compile, stage or commit failed; rolled back, old version runs
    RESTART = "restart"  # cannot be applied in place; the program restarts


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one transaction (one batch of changed files)."""

    outcome: Outcome
    paths: tuple[Path, ...] = ()
    patched: tuple[str, ...] = ()  # modules whose functions/classes were patched in place
    reexecuted: tuple[str, ...] = ()  # modules whose new source ran top to bottom
    removed: tuple[str, ...] = ()  # modules dropped (file deleted)
    claimed: tuple[Path, ...] = ()  # other files a participant applied (templates...)
    functions: int = 0  # function objects whose code was replaced
    version: int = 0  # the engine's version after this batch
    duration_ms: float = 0.0
    error: ReloadError | None = None
    traceback: str | None = None
    reason: str | None = None  # why a restart was needed
    notes: tuple[str, ...] = ()  # things the user should know (e.g. old instances kept)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "event": "reload",
            "outcome": self.outcome.value,
            "paths": [str(p) for p in self.paths],
            "patched": list(self.patched),
            "reexecuted": list(self.reexecuted),
            "removed": list(self.removed),
            "claimed": [str(p) for p in self.claimed],
            "functions": self.functions,
            "version": self.version,
            "duration_ms": round(self.duration_ms, 3),
            "notes": list(self.notes),
        }
        if self.error is not None:
            data["error"] = {
                "message": str(self.error),
                "type": type(self.error.__cause__ or self.error).__name__,
                "path": str(self.error.path) if self.error.path else None,
                "line": self.error.lineno,
                "module": self.error.module,
                "phase": self.error.phase,
                "traceback": self.traceback,
            }
        if self.reason is not None:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class Started:
    """The program started (or restarted) under hotmod."""

    argv: Sequence[str]
    restarts: int = 0
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "started",
            "pid": self.pid,
            "argv": list(self.argv),
            "restarts": self.restarts,
        }


class Reporter(Protocol):
    """Receives every event; must not raise (errors are logged and ignored)."""

    def started(self, event: Started) -> None: ...

    def reloaded(self, result: ReloadResult) -> None: ...


def _modules_phrase(result: ReloadResult) -> str:
    parts = []
    if result.patched:
        parts.append(f"patched {', '.join(result.patched)} ({result.functions} functions)")
    if result.reexecuted:
        parts.append(f"re-executed {', '.join(result.reexecuted)}")
    if result.removed:
        parts.append(f"removed {', '.join(result.removed)}")
    if result.claimed:
        parts.append(f"reloaded {', '.join(p.name for p in result.claimed)}")
    return "; ".join(parts) or "no code changed"


class TerminalReporter:
    """One or two lines per reload on a stream (stderr by default).

    ``verbosity``: 0 reports failures and restarts only, 1 every reload, 2 adds
    the changed paths and the failure's traceback.
    """

    def __init__(self, stream: IO[str] | None = None, *, verbosity: int = 1) -> None:
        self._stream = stream
        self.verbosity = verbosity

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):  # closed stream at shutdown: nothing to report to
            pass

    def started(self, event: Started) -> None:
        if self.verbosity >= 1 and event.restarts:
            self._write(f"[hotmod] restarted (restart #{event.restarts})")

    def reloaded(self, result: ReloadResult) -> None:
        took = f"{result.duration_ms:.1f} ms"
        if result.outcome is Outcome.APPLIED:
            if self.verbosity >= 1:
                self._write(f"[hotmod] v{result.version}: {_modules_phrase(result)} in {took}")
                for note in result.notes:
                    self._write(f"[hotmod]   note: {note}")
        elif result.outcome is Outcome.UNCHANGED:
            if self.verbosity >= 2:
                self._write(f"[hotmod] no code change in {', '.join(map(str, result.paths))}")
        elif result.outcome is Outcome.RESTART:
            self._write(f"[hotmod] restarting: {result.reason}")
        else:
            err = result.error
            where = err.location() if err else "?"
            cause = err.__cause__ if err else None
            what = f"{type(cause).__name__}: {cause}" if cause else str(err)
            self._write(f"[hotmod] reload failed at {where}: {what}")
            if result.traceback and self.verbosity >= 1:
                self._write(result.traceback.rstrip())
            self._write("[hotmod] rolled back; still running the previous version")
        if self.verbosity >= 2 and result.paths:
            self._write(f"[hotmod]   paths: {', '.join(map(str, result.paths))}")


class JsonLinesReporter:
    """Appends one JSON object per event to a file (thread-safe, flushed per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _append(self, data: dict[str, Any]) -> None:
        import json  # at the first event (written from the watch thread), not at start-up

        data["time"] = time.time()
        line = json.dumps(data, sort_keys=True) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def started(self, event: Started) -> None:
        self._append(event.to_json())

    def reloaded(self, result: ReloadResult) -> None:
        self._append(result.to_json())


class Fanout:
    """Sends every event to several reporters; one failing never stops the others."""

    def __init__(self, reporters: Sequence[Reporter]) -> None:
        self.reporters = list(reporters)

    def started(self, event: Started) -> None:
        for r in self.reporters:
            try:
                r.started(event)
            except Exception:  # a reporter must never stop the reloader (G6)
                logger.exception("reporter %r failed", r)

    def reloaded(self, result: ReloadResult) -> None:
        for r in self.reporters:
            try:
                r.reloaded(result)
            except Exception:
                logger.exception("reporter %r failed", r)
