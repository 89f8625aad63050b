"""Run a program as ``__main__`` under the reloader, as ``python`` would.

Same ``sys.argv``, ``sys.path[0]``, ``__name__``, stdio, signals and exit
code as ``python script.py`` / ``python -m module``. A reload that needs a
restart re-executes the whole process with the same arguments (the same
stdin, stdout and stderr stay connected), the environment it started with
and none of the descriptors the program opened (a server's listening socket).

When the program ends with an uncaught exception (or its entry script does not
compile), its traceback is printed as python prints it; then, unless
``exit_on_error``, hotmod waits for a change of a watched file and starts the
program again in a fresh process: the typo that killed it can be fixed
without going back to the shell. ``SystemExit`` is a deliberate exit and
exits with its code; Ctrl-C exits as python does.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NoReturn

from .._engine.graph import MAIN
from .._engine.reloader import Reloader
from .._errors import UsageError
from .._events import Outcome, ReloadResult, Started
from .arming import Arming
from .report import Exited, RunReporter
from .target import Target, main_module
from .tracebacks import format_program_error, location, print_program_error

logger = logging.getLogger(__name__)

# python's exit code after an uncaught exception.
EXIT_ERROR: Final = 1
# A change of one of these files under the watched folders restarts a program
# that exited with an error (the kinds of file the reloader watches).
RESTART_SUFFIXES: Final = (".py", ".so", ".pyd")
# Printed (stderr) once hotmod watches for the change that will restart the program.
WAITING: Final = "[hotmod] program exited with an error; waiting for a change"
# The wait for a change has no deadline (a person is editing): it is sliced so
# that it never sits in one uninterruptible call.
_WAIT_SLICE_MS: Final = 1000


class Env(enum.StrEnum):
    """Environment variables hotmod passes to the restarted process."""

    RESTARTS = "HOTMOD_RESTARTS"
    CWD = "HOTMOD_ORIGINAL_CWD"


class _Startup:
    """What the process had when hotmod started it, so that a restart is a fresh start.

    A program that started a server leaves things an ``exec`` would carry
    over: Werkzeug's ``app.run()`` makes its listening socket inheritable and
    puts its descriptor in ``WERKZEUG_SERVER_FD``; the new process would then
    find the port taken ("Address already in use"). The restarted process
    gets the environment and the inheritable descriptors hotmod started with,
    nothing the program opened or set since.
    """

    environ: dict[str, str] | None = None
    fds: dict[int, tuple[int, int]] = {}  # inheritable descriptor -> what it is open on

    @classmethod
    def remember(cls) -> None:
        cls.environ = dict(os.environ)
        cls.fds = _inheritable_fds()

    @classmethod
    def restore(cls) -> dict[str, str]:
        """Close-on-exec every descriptor opened since; the environment to exec with."""
        for fd, identity in _inheritable_fds().items():
            # Compared by what it is open on: a number the program reused is not ours.
            if cls.fds.get(fd) != identity:
                with contextlib.suppress(OSError):
                    os.set_inheritable(fd, False)
        env = dict(os.environ if cls.environ is None else cls.environ)
        for name in Env:
            if name in os.environ:
                env[name] = os.environ[name]
        return env


def _inheritable_fds() -> dict[int, tuple[int, int]]:
    """Descriptors above stderr that an exec would pass on, with their (device, inode)."""
    try:
        numbers = [int(name) for name in os.listdir("/dev/fd")]
    except OSError:  # no /dev/fd: nothing known, nothing changed
        return {}
    found = {}
    for fd in numbers:
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            if fd > 2 and os.get_inheritable(fd):
                info = os.fstat(fd)
                found[fd] = (info.st_dev, info.st_ino)
    return found


def restart_process(result: ReloadResult | None = None) -> None:
    """Replace this process with a fresh one running the same command line."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os.environ[Env.RESTARTS] = str(int(os.environ.get(Env.RESTARTS, "0")) + 1)
    os.chdir(os.environ.get(Env.CWD, os.getcwd()))
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], _Startup.restore())


def run(
    target: Target, reloader: Reloader, reporter: RunReporter, *, exit_on_error: bool = False
) -> int:
    """Run ``target`` under ``reloader``; return the exit code (SystemExit propagates).

    After an uncaught exception this returns only with ``exit_on_error``
    (``1``) or when no change can be watched for; otherwise the process is
    replaced by a fresh one at the next change.
    """
    os.environ.setdefault(Env.CWD, os.getcwd())
    _Startup.remember()
    signals = _Signals.save()
    reloader.install()
    try:
        main = main_module(target)
    except UsageError:
        raise
    except BaseException as exc:  # the program's: a SyntaxError, its package failing
        return _program_failed(exc, reloader, reporter, signals, exit_on_error=exit_on_error)
    sys.modules[MAIN] = main.module
    reloader.track_main(main.module, main.path, main.source, main.code)
    restarts = int(os.environ.get(Env.RESTARTS, "0"))
    argv = list(sys.argv)
    # The watchers arm in their own threads once the program's imports pause
    # (see arming.py); "started" is reported once they are armed, so an edit
    # made after that event is always seen, and one made before is applied then.
    arming = Arming(reloader, lambda: reporter.started(Started(argv=argv, restarts=restarts)))
    arming.start()
    try:
        exec(main.code, main.module.__dict__)
    except BaseException as exc:
        arming.cancel()  # the program is gone: what watches now is _program_failed's business
        return _program_failed(exc, reloader, reporter, signals, exit_on_error=exit_on_error)
    # Its threads may run on (a server started in one): they are watched from now.
    arming.main_returned()
    return 0


def _program_failed(
    exc: BaseException,
    reloader: Reloader,
    reporter: RunReporter,
    signals: _Signals,
    *,
    exit_on_error: bool,
) -> int:
    if isinstance(exc, SystemExit):
        raise exc  # a deliberate exit: python exits with its code, so do we
    print_program_error(exc)
    if isinstance(exc, KeyboardInterrupt):
        _exit_like_python_on_sigint()
    if exit_on_error:
        reporter.exited(_exited(exc, waiting=False))
        return EXIT_ERROR
    try:
        return _wait_then_restart(exc, reloader, reporter, signals)
    except KeyboardInterrupt:
        # Ctrl-C while waiting: the program is gone, its threads are not ours to wait for.
        _exit_like_python_on_sigint(join_threads=False)


def _wait_then_restart(
    exc: BaseException, reloader: Reloader, reporter: RunReporter, signals: _Signals
) -> int:
    """Wait for a change of a watched file, then restart; ``1`` if nothing can be watched."""
    from .._watch.watcher import Watcher

    # The program's signal handlers would act on a program that no longer runs.
    signals.restore()
    try:
        watcher = Watcher(
            reloader.roots, debounce_ms=reloader.debounce_ms, exclude=reloader.exclude,
            suffixes=RESTART_SUFFIXES,
        )
    except Exception as watch_error:
        print(f"[hotmod] cannot watch for a change ({watch_error}); exiting", file=sys.stderr)
        reporter.exited(_exited(exc, waiting=False))
        return EXIT_ERROR
    with watcher:
        # Armed before the reloader stops watching: no change falls between the two.
        reloader.stop()
        print(WAITING, file=sys.stderr, flush=True)
        reporter.exited(_exited(exc, waiting=True))
        batch = None
        try:
            while batch is None:
                batch = watcher.poll_once(_WAIT_SLICE_MS)
        except (RuntimeError, OSError) as watch_error:  # the native watcher gave up
            print(f"[hotmod] watching failed ({watch_error}); exiting", file=sys.stderr)
            return EXIT_ERROR
    result = ReloadResult(
        Outcome.RESTART, paths=tuple(sorted(batch)), version=reloader.version,
        reason=f"{_some_paths(batch)} changed after the program exited with an error",
    )
    reporter.reloaded(result)
    restart_process(result)
    return EXIT_ERROR  # not reached: the process was replaced


def _exited(exc: BaseException, *, waiting: bool) -> Exited:
    path, line = location(exc)
    try:
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    except Exception:  # a broken __str__: python prints this placeholder too
        message = "<exception str() failed>"
    return Exited(
        returncode=EXIT_ERROR, error_type=type(exc).__name__, message=message, path=path,
        line=line, traceback=format_program_error(exc), waiting=waiting,
    )


def _some_paths(paths: set[Path], *, most: int = 3) -> str:
    """``a.py, b.py and 2 more``: relative to the current folder where possible."""
    cwd = Path.cwd()
    shown = sorted(str(p.relative_to(cwd)) if p.is_relative_to(cwd) else str(p) for p in paths)
    more = len(shown) - most
    return ", ".join(shown[:most]) + (f" and {more} more" if more > 0 else "")


_Handler = Callable[[int, types.FrameType | None], Any] | int | signal.Handlers | None


class _Signals:
    """The SIGINT and SIGTERM handlers hotmod started with, to restore once the program died.

    (python's own: ``KeyboardInterrupt`` on Ctrl-C, death on SIGTERM; or
    whatever the parent process left ignored.)
    """

    def __init__(self, handlers: dict[signal.Signals, _Handler]) -> None:
        self._handlers = handlers

    @classmethod
    def save(cls) -> _Signals:
        if threading.current_thread() is not threading.main_thread():
            return cls({})  # handlers can only be set from the main thread
        return cls({s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)})

    def restore(self) -> None:
        for number, handler in self._handlers.items():
            if handler is not None:  # None: set from C, cannot be put back from Python
                signal.signal(number, handler)


def _exit_like_python_on_sigint(*, join_threads: bool = True) -> NoReturn:
    """Python exits by SIGINT after an uncaught KeyboardInterrupt (shells see 130).

    Like python it first waits for the program's non-daemon threads, unless
    ``join_threads`` is false (Ctrl-C while hotmod waits for a change).
    """
    if join_threads:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(128 + signal.SIGINT)  # not reached: SIGINT's default action ends the process
