"""hotmod: hot module replacement for Python.

Edit a file of a running program and the new code is live in the same
process, all or nothing. ``hotmod run script.py`` from the shell, or embed a
:class:`Reloader`; modules take part with :func:`hot` and :func:`keep`.
"""

from ._engine.reloader import Reloader
from ._errors import HotmodError, ReloadError, RestartRequired, RollbackError, UsageError
from ._events import JsonLinesReporter, Outcome, ReloadResult, Reporter, TerminalReporter
from ._hot import Handle, hot, keep
from ._version import __version__

__all__ = [
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
    "hot",
    "keep",
]
