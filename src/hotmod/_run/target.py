"""What ``hotmod run`` runs, and the ``__main__`` module it runs in, as python makes them.

A target is a script, a folder holding ``__main__.py`` (python runs those too)
or ``-m module``. :func:`locate_script` finds the file before anything else
happens, failing with python's own messages; :func:`main_module` prepares
``sys.argv``, ``sys.path[0]`` and a fresh ``__main__`` module with the same
attributes python gives it, and compiles the code to run in it.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .._engine.graph import MAIN
from .._errors import UsageError

# python's exit codes for a target it cannot run: a file it cannot open is a
# usage error (2); a folder without ``__main__.py`` is an ordinary failure (1).
EXIT_CANNOT_OPEN = 2
EXIT_NO_MAIN_IN_FOLDER = 1

MAIN_FILE = "__main__.py"


@dataclass
class Target:
    """What to run: a script path (or a folder) or a module name, and its arguments."""

    script: str | None = None
    module: str | None = None
    args: list[str] = field(default_factory=list)


class TargetNotFound(UsageError):
    """The script or folder cannot be run; the message and ``exit_code`` are python's."""

    def __init__(self, message: str, *, exit_code: int = EXIT_CANNOT_OPEN) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Script and MainModule are named tuples: defined at every start, in the program's
# process, where a frozen dataclass costs several times as much to define.
class Script(NamedTuple):
    """A located script: the file to run and the folder python puts first on ``sys.path``."""

    file: Path  # absolute and resolved
    path0: str
    in_folder: bool  # a folder's ``__main__.py``, run as python runs a folder


class MainModule(NamedTuple):
    """A fresh ``__main__`` module, its file and source, and the code to run in it."""

    module: types.ModuleType
    path: Path
    source: str
    code: types.CodeType


def locate_script(script: str) -> Script:
    """Find what ``python script`` would run; :class:`TargetNotFound` as python words it."""
    # python names the path it was given, made absolute (not normalised).
    shown = os.path.join(os.getcwd(), script)
    if os.path.isdir(script):
        main = os.path.join(script, MAIN_FILE)
        if not os.path.isfile(main):
            raise TargetNotFound(
                f"can't find '__main__' module in {shown!r}", exit_code=EXIT_NO_MAIN_IN_FOLDER
            )
        return Script(Path(main).resolve(), path0=shown, in_folder=True)
    try:
        with open(script, "rb"):
            pass
    except OSError as exc:
        raise TargetNotFound(
            f"can't open file {shown!r}: [Errno {exc.errno}] {exc.strerror}"
        ) from exc
    file = Path(script).resolve()
    return Script(file, path0=str(file.parent), in_folder=False)


def default_roots(target: Target) -> list[Path]:
    """The script's folder (a folder target itself), or the current folder for ``-m``."""
    if target.script is not None:
        return [locate_script(target.script).file.parent]
    return [Path.cwd()]


def main_module(target: Target) -> MainModule:
    """Prepare ``sys.argv``/``sys.path[0]`` and a fresh ``__main__`` module with its code.

    Raises :class:`~hotmod.UsageError` when there is nothing to run; any other
    exception (a :class:`SyntaxError` in the script, an error in the package
    ``-m`` imports first) is the program's, to be reported as python would.
    """
    module = types.ModuleType(MAIN)
    module.__dict__["__builtins__"] = builtins
    # python's __main__ starts with an empty __annotations__ dict.
    module.__annotations__ = {}
    if target.script is not None:
        script = locate_script(target.script)
        path = script.file
        sys.argv = [target.script, *target.args]
        sys.path[0] = script.path0
        if script.in_folder:
            # python runs a folder by importing __main__ from it: a module spec.
            spec = importlib.util.spec_from_file_location(MAIN, path)
            assert spec is not None  # a .py path always has one
            module.__spec__ = spec
            module.__loader__ = spec.loader
            module.__package__ = ""
            module.__dict__["__cached__"] = spec.cached
        else:
            module.__spec__ = None
            module.__loader__ = importlib.machinery.SourceFileLoader(MAIN, str(path))
            module.__package__ = None
            module.__dict__["__cached__"] = None
        module.__file__ = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:  # gone since it was located
            raise TargetNotFound(
                f"can't open file {str(path)!r}: [Errno {exc.errno}] {exc.strerror}"
            ) from exc
        # From bytes, as python does: the coding cookie is honoured, and a
        # source that cannot be decoded is python's own SyntaxError.
        code = compile(data, str(path), "exec", dont_inherit=True)
        source = importlib.util.decode_source(data)
        return MainModule(module, path, source, code)
    assert target.module is not None
    sys.path[0] = os.getcwd()
    name = _main_name(target.module)
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.loader is None:
        raise UsageError(f"no module named {target.module!r}")
    get_source = getattr(spec.loader, "get_source", None)
    found = get_source(name) if callable(get_source) else None
    if not isinstance(found, str):
        raise UsageError(f"{name!r} has no Python source to run")
    path = Path(spec.origin).resolve()
    sys.argv = [str(path), *target.args]
    module.__file__ = str(path)
    module.__spec__ = spec
    module.__package__ = name.rpartition(".")[0]
    module.__loader__ = spec.loader
    module.__dict__["__cached__"] = spec.cached
    code = compile(found, str(path), "exec", dont_inherit=True)
    return MainModule(module, path, found, code)


def _main_name(name: str) -> str:
    """``name``, or ``name.__main__`` for a package; imports the parent packages.

    A missing module (or parent) is a usage error; anything else the packages
    raise while being imported is the program's error and propagates.
    """
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            name = f"{name}.__main__"
            importlib.util.find_spec(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise UsageError(f"no module named {missing!r}") from exc
        raise
    return name
