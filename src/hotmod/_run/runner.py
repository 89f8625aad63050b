"""Run a program as ``__main__`` under the reloader, as ``python`` would.

Same ``sys.argv``, ``sys.path[0]``, ``__name__``, stdio, signals and exit
code as ``python script.py`` / ``python -m module``. A reload that needs a
restart re-executes the whole process with the same arguments (the same
stdin, stdout and stderr stay connected).
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import importlib.util
import logging
import os
import signal
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from .._engine.graph import MAIN
from .._engine.reloader import Reloader
from .._errors import UsageError
from .._events import Fanout, ReloadResult, Reporter, Started

logger = logging.getLogger(__name__)


class Env(enum.StrEnum):
    """Environment variables hotmod passes to the restarted process."""

    RESTARTS = "HOTMOD_RESTARTS"
    CWD = "HOTMOD_ORIGINAL_CWD"


@dataclass
class Target:
    """What to run: a script path or a module name, and its arguments."""

    script: str | None = None
    module: str | None = None
    args: list[str] = field(default_factory=list)


def default_roots(target: Target) -> list[Path]:
    """The script's folder, or the current folder for ``-m``."""
    if target.script is not None:
        return [Path(target.script).resolve().parent]
    return [Path.cwd()]


def _main_module(target: Target) -> tuple[types.ModuleType, Path, str, types.CodeType]:
    """Prepare ``sys.argv``/``sys.path`` and a fresh ``__main__`` module with its code."""
    module = types.ModuleType(MAIN)
    module.__dict__["__builtins__"] = builtins
    if target.script is not None:
        path = Path(target.script).resolve()
        if not path.is_file():
            raise UsageError(f"can't open file {target.script!r}: no such file")
        sys.argv = [target.script, *target.args]
        sys.path[0] = str(path.parent)
        module.__file__ = str(path)
        module.__spec__ = None
        module.__package__ = None
        source = path.read_text(encoding="utf-8")
    else:
        assert target.module is not None
        sys.path[0] = os.getcwd()
        name = target.module
        try:
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.submodule_search_locations is not None:
                name = f"{name}.__main__"
                spec = importlib.util.find_spec(name)
        except ImportError as exc:
            raise UsageError(f"error finding module specification for {name!r}: {exc}") from exc
        if spec is None or spec.origin is None or spec.loader is None:
            raise UsageError(f"no module named {target.module!r}")
        get_source = getattr(spec.loader, "get_source", None)
        found = get_source(name) if callable(get_source) else None
        if not isinstance(found, str):
            raise UsageError(f"{name!r} has no Python source to run")
        source = found
        path = Path(spec.origin).resolve()
        sys.argv = [str(path), *target.args]
        module.__file__ = str(path)
        module.__spec__ = spec
        module.__package__ = name.rpartition(".")[0]
        module.__loader__ = spec.loader
    code = compile(source, str(path), "exec", dont_inherit=True)
    return module, path, source, code


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
    module, path, source, code = _main_module(target)
    sys.modules[MAIN] = module
    reloader.track_main(module, path, source, code)
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
