"""When ``hotmod run`` arms its watchers: once the program's imports pause.

Arming takes the interpreter lock for a while: the watch threads import their
modules, and watchfiles' native watcher holds the lock while it walks the
project and adds a watch per folder (about 6 ms for 1,000 modules here). Done
while the program imports, all of it adds to the program's start-up. Most
programs import first and then wait (a server for requests, a tool for
input), so :class:`Arming` waits for the first pause in the growth of
``sys.modules`` (no new module within one ``step``), or ``latest`` seconds at
most, and only then starts the reloader's watchers.

Nothing edited meanwhile is lost: the graph keeps the modification time of
each module as it was loaded, and the watcher, once armed, applies whatever
changed since (``ModuleGraph.changed_on_disk``) before anything else. The
``started`` event still comes after arming: an edit made after it is always
seen.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .._engine.reloader import Reloader

# How often the number of loaded modules is looked at: each look takes the
# interpreter lock once, from a program that is busy importing.
STEP_S: Final = 0.02
# Armed by then whatever the program does (a program importing for longer only
# pays the arming then, as it did before the wait existed).
LATEST_S: Final = 2.0


class Arming:
    """Starts ``reloader``'s watchers (``on_ready`` once armed) at the first pause in imports.

    :meth:`start` begins waiting in a daemon thread; :meth:`cancel` makes sure
    the watchers are never started once it returns (the caller then stops
    the reloader, which stops them if they were).
    """

    def __init__(
        self,
        reloader: Reloader,
        on_ready: Callable[[], None],
        *,
        step_s: float = STEP_S,
        latest_s: float = LATEST_S,
    ) -> None:
        self._reloader = reloader
        self._on_ready = on_ready
        self._step_s = step_s
        self._latest_s = latest_s
        self._lock = threading.Lock()
        self._cancelled = False
        self._started = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotmod-arm", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def main_returned(self) -> None:
        """The program's main code returned: arm now if its other threads run on.

        Its start-up is over. No thread can be started once the interpreter
        shuts down (Python 3.12 and later refuse), and the watch thread starts
        threads of its own: while other (non-daemon) threads of the program
        live, this returns once the watchers are armed; otherwise the process
        is ending and nothing is started any more.
        """
        current = threading.current_thread()
        if any(t is not current and not t.daemon for t in threading.enumerate()):
            self._start(wait=True)
        self.cancel()

    def cancel(self) -> None:
        """Never start the watchers from now on (a start under way completes first)."""
        with self._lock:
            self._cancelled = True
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the watchers were started, or will never be."""
        self._thread.join(timeout)

    def _run(self) -> None:
        deadline = time.monotonic() + self._latest_s
        seen = len(sys.modules)
        while not self._wake.wait(self._step_s):
            now = len(sys.modules)
            if now == seen or time.monotonic() >= deadline:
                break
            seen = now
        self._start()

    def _start(self, *, wait: bool = False) -> None:
        with self._lock:
            if not self._cancelled and not self._started:
                self._started = True
                self._reloader.start(wait=wait, on_ready=self._on_ready)
