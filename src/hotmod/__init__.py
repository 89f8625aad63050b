"""hotmod: hot module replacement for Python.

Edit a file of a running program and the new code is live in the same
process, all or nothing. ``hotmod run script.py`` from the shell, or embed a
:class:`Reloader`; modules take part with :func:`hot` and :func:`keep`.
"""

from ._engine.reloader import Reloader
from ._errors import HotmodError, ReloadError, RestartRequired, RollbackError, UsageError
from ._events import JsonLinesReporter, Outcome, ReloadResult, Reporter, TerminalReporter
from ._gate import Gate, _Reading
from ._gate import default_gate as _default_gate
from ._hot import Handle, hot, keep
from ._version import __version__


def gate() -> _Reading:
    """``with hotmod.gate():`` (or ``async with``) around one unit of work.

    A commit waits for units in flight to finish and holds new ones for the
    swap, so the unit runs entirely on one version of the code (G4). For
    programs that embed a :class:`Reloader`; web apps get the same from
    ``hotmod.wsgi.GateMiddleware`` / ``hotmod.asgi.GateMiddleware``.
    """
    return _default_gate().reading()

__all__ = [
    "Gate",
    "Handle",
    "HotmodError",
    "JsonLinesReporter",
    "Outcome",
    "ReloadError",
    "ReloadResult",
    "Reloader",
    "Reporter",
    "RestartRequired",
    "RollbackError",
    "TerminalReporter",
    "UsageError",
    "__version__",
    "gate",
    "hot",
    "keep",
]
