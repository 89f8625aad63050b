"""Run a program as ``__main__`` under the reloader, as ``python`` would.

Same ``sys.argv``, ``sys.path[0]``, ``__name__``, stdio, signals and exit
code as ``python script.py`` / ``python -m module``. A reload that needs a
restart re-executes the whole process with the same arguments (the same
stdin, stdout and stderr stay connected).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from .._engine.graph import MAIN
from .._engine.reloader import Reloader
from .._events import Fanout, ReloadResult, Reporter, Started
from .target import Target, main_module

logger = logging.getLogger(__name__)


class Env(enum.StrEnum):
    """Environment variables hotmod passes to the restarted process."""

    RESTARTS = "HOTMOD_RESTARTS"
    CWD = "HOTMOD_ORIGINAL_CWD"


def restart_process(result: ReloadResult | None = None) -> None:
    """Replace this process with a fresh one running the same command line."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os.environ[Env.RESTARTS] = str(int(os.environ.get(Env.RESTARTS, "0")) + 1)
    os.chdir(os.environ.get(Env.CWD, os.getcwd()))
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def run(target: Target, reloader: Reloader, reporter: Fanout | Reporter) -> int:
    """Run ``target`` under ``reloader``; return the exit code (SystemExit propagates)."""
    os.environ.setdefault(Env.CWD, os.getcwd())
    reloader.install()
    main = main_module(target)
    module, path, code = main.module, main.path, main.code
    sys.modules[MAIN] = module
    reloader.track_main(module, path, main.source, code)
    restarts = int(os.environ.get(Env.RESTARTS, "0"))
    argv = list(sys.argv)
    # The watcher arms in its own thread while the program starts; "started" is
    # reported once it is armed, so an edit made after that event is always seen.
    reloader.start(
        wait=False, on_ready=lambda: reporter.started(Started(argv=argv, restarts=restarts))
    )
    try:
        exec(code, module.__dict__)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _print_user_traceback(exc, path)
        _exit_like_python_on_sigint()
    except BaseException as exc:
        _print_user_traceback(exc, path)
        return 1
    return 0


def _print_user_traceback(exc: BaseException, main_path: Path) -> None:
    """Print ``exc`` as python would: from the script's frame down."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != str(main_path):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


def _exit_like_python_on_sigint() -> None:
    """Python exits by SIGINT after an uncaught KeyboardInterrupt (shells see 130)."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
