"""File dependencies: non-Python files a module reads at import time (DESIGN §3).

A module that reads a file under the project roots while its top level runs
(a template, a JSON/TOML/YAML config, a CSV) depends on that file: when the
file changes, the module re-executes, in the same transaction as the Python
files saved with it, and its importers follow as for any re-executed module.

Recording
    An audit hook on the ``"open"`` event (``sys.addaudithook``) sees every
    file the process opens. A read counts when a project module executes its
    top level *in the opening thread* (the graph's per-thread stack; the read
    goes to the innermost one), the file is under a root, outside the folders
    the graph ignores, and not Python (the import system's own reads of
    ``.py``/``.pyc`` files are not dependencies). The event comes before the
    file is actually opened, so a file that does not exist yet
    (``local_settings.json``) is a dependency too: creating it re-executes the
    module, as a fresh start would read it. The entry script is not tracked:
    its top level runs for the program's whole life.
Writes
    A file the program opens for writing (a log, a cache, a saved state) is
    data, not source: it never becomes a dependency, and a dependency the
    program writes, replaces (``os.replace(tmp, path)``, an atomic save) or
    removes stops being one, so the program's own writes never trigger a
    reload.
Re-executions
    A staged re-execution records what the new version reads apart from the
    live record; the commit replaces the module's dependencies with those (a
    module that stops reading a file stops depending on it), with an undo. An
    abandoned batch forgets them.

Cost
    Audit hooks cannot be removed: the hook is added once, by the first
    :meth:`FileDependencies.install` (never by importing hotmod), and returns
    at once whenever no tracker is active (after ``uninstall``). While one is
    active, an ``open`` made outside any module's top level (the program at
    run time) costs one thread-local lookup; paths are looked at only for
    reads made during an import, and for writes once some file is a
    dependency. ``benchmarks/filedeps_cost.py`` measures it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._errors import RestartRequired
from .participants import BaseParticipant

if TYPE_CHECKING:
    from .batch import Batch
    from .graph import ModuleGraph
    from .undo import UndoLog

logger = logging.getLogger(__name__)

# Flags of an open that may change the file (os.open's, or those io.open derives
# from its mode): the file is the program's data, not a dependency.
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# The import system's own reads (sources, bytecode) and modules: never dependencies.
_MODULE_SUFFIXES: Final = (".py", ".pyc", ".pyo", ".pyw", ".pyi", ".so", ".pyd")

# Events of the program replacing or removing a file: (src, dst, ...) and (path, ...).
_REPLACING: Final = frozenset({"os.rename", "os.remove"})

# What one module read: canonical path -> the spellings it was opened by.
Reads = dict[Path, set[str]]

_active: FileDependencies | None = None  # the tracker the audit hook feeds, if any
_hooked = False  # whether _audit was added (once per process: hooks cannot be removed)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """The process-wide audit hook: returns at once unless a tracker is active."""
    tracker = _active
    if tracker is None:
        return
    if event == "open":
        tracker._opened(args[0], args[2])  # (path, mode, flags): flags say read or write
    elif event in _REPLACING and (tracker._names or tracker._staging):
        tracker._replaced(args)


class FileDependencies(BaseParticipant):
    """Re-executes the modules that read a changed non-Python file at import time.

    ``install()`` starts recording (the Reloader calls it from its own
    ``install``); ``uninstall()`` stops. ``interesting(path)`` tells the watcher
    which non-Python paths matter.
    """

    name = "file-dependencies"
    order = 10  # core participants use 0-99

    def __init__(self, graph: ModuleGraph) -> None:
        self._graph = graph
        # Re-entrant: a finalizer run by the collector while this thread holds
        # the lock may remove a file, and the hook then runs again in here.
        self._lock = threading.RLock()
        self._reads: dict[str, set[Path]] = {}  # module -> files it read at import time
        self._readers: dict[Path, set[str]] = {}  # file -> modules that read it
        self._spellings: dict[Path, set[str]] = {}  # file -> path strings that name it
        # Every path string naming a dependency -> its canonical path. The
        # watcher asks ``in`` on it for each changed path of another suffix, so
        # a log rewritten many times a second costs one lookup per change.
        self._names: dict[str, Path] = {}
        #: ``interesting(path)``: whether the changed file ``path`` is a dependency.
        #: The dict's own ``__contains__``: no Python frame per change.
        self.interesting: Callable[[str], bool] = self._names.__contains__
        self._staging: dict[str, Reads] | None = None  # reads of the batch being staged
        self._mtimes: dict[Path, int] = {}  # when first read (0: missing), see changed_on_disk
        self._error: BaseException | None = None  # first failure inside the hook

    # -- lifecycle ------------------------------------------------------------------------
    def install(self) -> None:
        """Start recording (adds the process-wide audit hook the first time)."""
        global _active, _hooked
        if not _hooked:
            sys.addaudithook(_audit)
            _hooked = True
        _active = self

    def uninstall(self) -> None:
        """Stop recording; the audit hook stays, inert (hooks cannot be removed)."""
        global _active
        if _active is self:
            _active = None

    # -- queries --------------------------------------------------------------------------
    def watched(self) -> frozenset[str]:
        """Every path string that names a dependency (for the watcher's filter)."""
        return frozenset(self._names)

    def changed_on_disk(self) -> set[Path]:
        """Dependencies modified since first read: edits made before the watcher was armed.

        Asked once, when the watcher starts (later edits are its business).
        """
        with self._lock:
            known = {p: m for p, m in self._mtimes.items() if p in self._readers}
        return {p for p, mtime in known.items() if _mtime_ns(str(p)) != mtime}

    def readers(self, path: str | os.PathLike[str]) -> set[str]:
        """The modules that read ``path`` at import time."""
        canonical = self._names.get(os.fspath(path))
        if canonical is None:
            return set()
        with self._lock:
            return set(self._readers.get(canonical, ()))

    def reads(self, module: str) -> set[Path]:
        """The files ``module`` read at import time."""
        with self._lock:
            return set(self._reads.get(module, ()))

    # -- recording (called from the audit hook, in whichever thread opens) ---------------
    def _opened(self, path: object, flags: int) -> None:
        # Never raise: an exception would fail the program's own open().
        try:
            if flags & _WRITE_FLAGS:
                if self._names or self._staging:
                    self._written(path)
                return
            module = self._graph.executing_module()
            if module is None:
                return  # run time, not an import: the common case stops here
            self._read(module, path)
        except Exception as exc:
            if self._error is None:
                self._error = exc  # logged by the next prepare, outside the hook

    def _read(self, module: str, path: object) -> None:
        text = _path_text(path)
        if text is None or text.endswith(_MODULE_SUFFIXES):
            return
        text = os.path.abspath(text)
        graph = self._graph
        canonical = self._names.get(text)  # read before: skip the system calls
        if canonical is not None:
            spellings = {text}
        elif graph.files.allowed(text) and not os.path.isdir(text):
            # (a folder opened with os.open, e.g. by shutil.rmtree, is no dependency)
            real = os.path.realpath(text)  # the watcher reports resolved paths
            canonical = Path(real)
            spellings = {text, real}
            self._mtimes.setdefault(canonical, _mtime_ns(real))
        else:
            return
        with self._lock:
            if self._staging is not None and graph.staging_here():
                self._staging.setdefault(module, {}).setdefault(canonical, set()).update(
                    spellings
                )
            else:
                self._link(module, canonical, spellings)

    def _replaced(self, args: tuple[Any, ...]) -> None:
        # os.replace(tmp, config) is how programs save atomically: the program's data.
        try:
            for path in args[:2]:
                if isinstance(path, str | bytes | os.PathLike):
                    self._written(path)
        except Exception as exc:
            if self._error is None:
                self._error = exc

    def _written(self, path: object) -> None:
        text = _path_text(path)
        if text is None:
            return
        names = self._names
        if text not in names:
            if not os.path.isabs(text):
                text = os.path.abspath(text)
            if text not in names and not self._staging:
                return  # not a dependency: the common case, no lock taken
        with self._lock:
            modules: set[str] = set()
            canonical = self._names.get(text)
            if canonical is not None:
                modules = self._readers.pop(canonical, set())
                for module in modules:
                    self._reads.get(module, set()).discard(canonical)
                for name in self._spellings.pop(canonical, ()):
                    self._names.pop(name, None)
            for module, reads in (self._staging or {}).items():  # read by a staged version
                for staged, spellings in list(reads.items()):
                    if staged == canonical or text in spellings:
                        del reads[staged]
                        modules.add(module)
        if modules:
            logger.debug("%s is written by the program: no dependency of %s", text, modules)

    # -- the live record (callers hold the lock) --------------------------------------------
    def _link(self, module: str, canonical: Path, spellings: Iterable[str]) -> None:
        self._reads.setdefault(module, set()).add(canonical)
        self._readers.setdefault(canonical, set()).add(module)
        names = self._spellings.setdefault(canonical, set())
        for name in spellings:
            names.add(name)
            self._names[name] = canonical

    def _replace(self, module: str, reads: Reads) -> None:
        """``module``'s dependencies become ``reads`` (it was re-executed or removed)."""
        for canonical in self._reads.pop(module, set()):
            readers = self._readers.get(canonical)
            if readers is not None:
                readers.discard(module)
                if readers:
                    continue
                del self._readers[canonical]
            for name in self._spellings.pop(canonical, ()):
                self._names.pop(name, None)
        for canonical, spellings in reads.items():
            self._link(module, canonical, spellings)

    def _snapshot(self, module: str) -> Reads:
        return {p: set(self._spellings.get(p, ())) for p in self._reads.get(module, ())}

    # -- the participant steps ------------------------------------------------------------
    def prepare(self, batch: Batch) -> None:
        """Claim changed dependencies and re-execute the modules that read them."""
        error, self._error = self._error, None
        if error is not None:
            logger.warning("hotmod: tracking files read at import time failed: %r", error)
        needed: list[tuple[Path, list[str]]] = []
        with self._lock:
            self._staging = {}
            for path in batch.unclaimed:
                canonical = self._names.get(str(path))
                if canonical is None:
                    continue
                modules = sorted(m for m in self._readers.get(canonical, ()) if
                                 m in batch.graph.records)
                if modules:
                    needed.append((path, modules))
        for path, modules in needed:
            batch.claim(path, self.name)
            for module in modules:
                handle = batch.hot.handles.get(module)
                if handle is not None and handle.declined:
                    raise RestartRequired(
                        f"{module} declined hot reload (hot.decline()) and reads {path.name}"
                    )
                batch.require(module, f"reads {path.name}")

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        """Re-executed modules depend on what their new versions read; removed ones on nothing."""
        with self._lock:
            staged, self._staging = self._staging or {}, None
            modules = set(batch.staged.modules) | set(batch.staged.new) | batch.plan.removed
            before = {m: self._snapshot(m) for m in modules}
            for module in modules:
                self._replace(module, {} if module in batch.plan.removed else
                              staged.get(module, {}))
        undo.on_rollback(lambda: self._restore(before))

    def abandon(self, batch: Batch) -> None:
        """What the staged versions read is forgotten: the live versions still run."""
        with self._lock:
            self._staging = None

    def _restore(self, before: dict[str, Reads]) -> None:
        with self._lock:
            for module, reads in before.items():
                self._replace(module, reads)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0  # missing: creating it is a change


def _path_text(path: object) -> str | None:
    """The path an ``open`` event names, as text (None for a file descriptor)."""
    if type(path) is str:
        return path
    if isinstance(path, int):
        return None
    return os.fsdecode(path)  # type: ignore[arg-type]  # bytes or os.PathLike
