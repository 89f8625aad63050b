"""The runner's own event: the program exited with an error.

The engine's reporters (:mod:`hotmod._events`) know ``started`` and
``reload``. ``hotmod run`` adds ``exited``, written when the program ends with
an uncaught exception (or its entry script does not compile), whether hotmod
then waits for a change or exits (``--exit-on-error``). Reporters that have an
``exited(event)`` method receive it; the others are left alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._events import Fanout, JsonLinesReporter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exited:
    """The program ended with an uncaught exception; ``waiting``: hotmod waits for a change."""

    returncode: int
    error_type: str
    message: str
    path: str | None = None  # where it was raised (a SyntaxError: the bad file)
    line: int | None = None
    traceback: str = ""
    waiting: bool = True
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "exited",
            "pid": self.pid,
            "returncode": self.returncode,
            "waiting": self.waiting,
            "error": {
                "type": self.error_type,
                "message": self.message,
                "path": self.path,
                "line": self.line,
                "traceback": self.traceback,
            },
        }


@runtime_checkable
class ExitReporter(Protocol):
    """A reporter that also takes the runner's ``exited`` events."""

    def exited(self, event: Exited) -> None: ...


class RunJsonLinesReporter(JsonLinesReporter):
    """:class:`~hotmod.JsonLinesReporter` that also writes ``exited`` events."""

    def exited(self, event: Exited) -> None:
        self._append(event.to_json())


class RunReporter(Fanout):
    """The CLI's fan-out: every event to every reporter, ``exited`` to those that take it."""

    def exited(self, event: Exited) -> None:
        for r in self.reporters:
            if not isinstance(r, ExitReporter):
                continue
            try:
                r.exited(event)
            except Exception:  # a reporter must never stop the runner
                logger.exception("reporter %r failed", r)
