"""The exceptions hotmod raises.

Every exception derives from one base, so ``except hotmod.HotmodError`` catches
anything hotmod itself signals::

    HotmodError
    ├── ReloadError          a batch could not be applied (nothing was changed)
    │   └── RollbackError    an undo step failed while rolling a batch back
    ├── RestartRequired      an edit cannot be applied in place: restart the program
    └── UsageError           the command line or an API call was used wrongly

Each exception carries the context a user needs (path, module, line) and is
chained with ``raise ... from`` to the error that caused it.
"""

from __future__ import annotations

from pathlib import Path


class HotmodError(Exception):
    """Base class of every error hotmod raises."""


class ReloadError(HotmodError):
    """A batch of changed files was not applied; the previous version runs on.

    ``path`` and ``lineno`` locate the failure in the user's sources when known;
    ``module`` names the module being compiled, staged or committed.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        module: str | None = None,
        lineno: int | None = None,
        phase: str = "stage",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.module = module
        self.lineno = lineno
        self.phase = phase

    def location(self) -> str:
        """``file:line`` (or the module name) for a one-line report."""
        if self.path is None:
            return self.module or "?"
        return f"{self.path}:{self.lineno}" if self.lineno else str(self.path)


class RollbackError(ReloadError):
    """Undoing a failed batch itself failed; the program may be inconsistent."""


class RestartRequired(HotmodError):
    """The edit cannot be applied in place; ``reason`` says why."""

    def __init__(self, reason: str, *, module: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.module = module


class UsageError(HotmodError):
    """The command line or an API call was used wrongly."""
