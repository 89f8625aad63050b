"""The module graph: which project modules exist, where, and who imports whom.

Recorded at import time by an import hook that :meth:`ModuleGraph.install`
puts on ``sys.meta_path`` (never as a side effect of importing hotmod). Only
files under the project roots are tracked; the standard library and installed
packages are stable and cost nothing.

For each project module the graph keeps the source text and the module code
object of the version that is live: the code objects of the live functions are
the constants of that code object, which is how new code is matched to them.
"""

from __future__ import annotations

import collections
import importlib.util
import itertools
import logging
import os
import sys
import threading
import types
from collections.abc import Iterable, Sequence
from importlib.machinery import PathFinder
from pathlib import Path
from typing import TYPE_CHECKING

from .._project import ProjectFiles
from .record import Loaded, ModuleRecord, _is_package, _mtime_ns, bytecode_imports

if TYPE_CHECKING:
    from .hook import ProjectFinder
    from .scan import ModuleInfo

logger = logging.getLogger(__name__)

MAIN = "__main__"


class ModuleGraph:
    """Project modules by name and by path, with their import edges."""

    def __init__(self, roots: Sequence[Path], *, exclude: Sequence[str] = ()) -> None:
        self.roots = tuple(r.resolve() for r in roots)
        self._resolved_prefixes = tuple(os.path.join(str(r), "") for r in self.roots)
        given = tuple(os.path.join(os.path.abspath(r), "") for r in roots)
        self._root_prefixes = tuple(dict.fromkeys(self._resolved_prefixes + given))
        # The same rule the watcher applies: a module is tracked iff its file is watched.
        self.files = ProjectFiles([p.rstrip(os.sep) for p in self._root_prefixes], exclude=exclude)
        self._records: dict[str, ModuleRecord] = {}
        self._by_path: dict[Path, str] = {}
        # Modules loaded (outside staging) whose records are not made yet: see loaded().
        self._pending: collections.deque[Loaded] = collections.deque()
        self._lock = threading.RLock()
        self._finder: ProjectFinder | None = None
        # While a batch is staged: the compiled new code the loader must use.
        # While a batch is staged (by one thread: staging_thread), the code the
        # loader must use and the records of what the staged code imports.
        # Imports made meanwhile by the program's other threads are ordinary.
        self.staged_code: dict[str, tuple[str, types.CodeType]] = {}
        self.staged_records: dict[str, ModuleRecord] | None = None
        self.staging_thread: int | None = None
        self._local = threading.local()  # per thread: the project modules executing
        self._orders = itertools.count(1)  # next(): atomic, no lock per module
        self._importers: dict[str, set[str]] = {}  # module -> project modules importing it
        self._unindexed: list[ModuleRecord] = []
        self._module_dirs: set[str] = set()  # folders that hold (or held) project modules
        self.cold: set[str] = set()  # records whose scan is pending (see warm())
        # (importer, module, changed names) -> (the importer's facts, whether its
        # import-time code calls one of them): see Stager._calls_at_import.
        self.uses_cache: dict[tuple[str, str, frozenset[str]], tuple[ModuleInfo, bool]] = {}
        self._project_dirs: dict[str, bool] = {}  # folder -> is_project_file's answer

    # -- project membership ----------------------------------------------------------
    def is_project_file(self, path: Path | str) -> bool:
        """Under a root, in no ignored folder or virtualenv, matching no exclude.

        Asked for every module the program imports, so the answer is cached
        per folder: a module pays a split and a dict lookup (the rule itself
        is :class:`hotmod._project.ProjectFiles`, shared with the watcher;
        only ``exclude`` globs, which can name files, are tried per file).
        """
        text = os.fspath(path)
        folder = text.rpartition(os.sep)[0]
        known = self._project_dirs.get(folder)
        if known is None:
            if not os.path.isabs(text):  # relative to the current folder, which may change
                return self.files.allowed(os.path.abspath(text))
            known = self._project_dirs[folder] = self.files.allowed_folder(
                os.path.normpath(folder)
            )
        if known and self.files.has_excludes:
            return self.files.allowed(os.path.normpath(text))
        return known

    def _under_root(self, folder: str) -> bool:
        prefix = os.path.join(folder, "")
        return any(prefix.startswith(root) for root in self._resolved_prefixes)

    def canonical(self, path: str) -> Path:
        """The resolved path of a project file, without a system call when possible."""
        if os.path.isabs(path) and os.sep + "." not in path and os.sep * 2 not in path:
            text = path  # already absolute and normal (the import system's origins)
        else:
            text = os.path.abspath(path)
        for prefix in self._resolved_prefixes:
            if text.startswith(prefix):
                return Path(text)  # already under a resolved root
        return Path(text).resolve()

    @property
    def records(self) -> dict[str, ModuleRecord]:
        """Project modules by name (modules loaded since the last look are entered first)."""
        if self._pending:
            self._enter_loaded()
        return self._records

    @property
    def by_path(self) -> dict[Path, str]:
        """Module names by resolved file path."""
        if self._pending:
            self._enter_loaded()
        return self._by_path

    # -- the import hook -------------------------------------------------------------
    def install(self) -> None:
        """Put the project finder on ``sys.meta_path``, just before ``PathFinder``."""
        if self._finder is not None:
            return
        from .hook import ProjectFinder  # the loader needs this module's records

        finder = ProjectFinder(self)
        index = next(
            (i for i, f in enumerate(sys.meta_path) if f is PathFinder), len(sys.meta_path)
        )
        sys.meta_path.insert(index, finder)
        self._finder = finder
        self.adopt_loaded()

    def uninstall(self) -> None:
        if self._finder is not None:
            sys.meta_path.remove(self._finder)
            self._finder = None

    def adopt_loaded(self) -> None:
        """Record project modules imported before the hook was installed."""
        records = self.records
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if name in records or not isinstance(path, str) or not path.endswith(".py"):
                continue
            if not self.is_project_file(path):  # the strings first: most are not ours
                continue
            file = Path(path)
            try:
                source = file.read_text(encoding="utf-8")
                code = compile(source, str(file), "exec", dont_inherit=True)
            except (OSError, SyntaxError, UnicodeDecodeError):
                continue
            # Functions of an adopted module were compiled elsewhere: patching
            # matches them by qualified name instead of code identity.
            record = ModuleRecord(
                name, file.resolve(), source, code, hasattr(module, "__path__"),
                mtime_ns=_mtime_ns(file),
            )
            self.add(record)

    # -- records -----------------------------------------------------------------------
    def next_order(self) -> int:
        """The next load order (see :attr:`ModuleRecord.order`)."""
        return next(self._orders)

    def add(self, record: ModuleRecord) -> None:
        with self._lock:
            if self._pending:
                self._enter_loaded()  # loaded earlier: entered first, as they came
            self._add(record)

    def _add(self, record: ModuleRecord) -> None:
        with self._lock:
            if not record.order:
                record.order = next(self._orders)
            previous = self._records.get(record.name)
            if previous is not None and previous.indexed:
                self._unindex(previous)
            self._records[record.name] = record
            self._by_path[record.path] = record.name
            folder = os.path.dirname(str(record.path))
            while folder not in self._module_dirs and self._under_root(folder):
                self._module_dirs.add(folder)
                folder = os.path.dirname(folder)
            # Scanning imports is deferred (see index()): start-up pays nothing for it.
            self._unindexed.append(record)

    def index(self) -> None:
        """Scan the imports of records added since the last call and index them.

        Called before any query of the import edges, and early by the watch
        thread, so the program's own start-up does not pay for it.
        """
        with self._lock:
            if self._pending:
                self._enter_loaded()
            pending, self._unindexed = self._unindexed, []
            for record in sorted(pending, key=lambda r: r.order):  # dependencies first
                if record.indexed or self.records.get(record.name) is not record:
                    continue
                record.imports |= bytecode_imports(record.code, record.package)
                for dep in record.imports:
                    self._importers.setdefault(dep, set()).add(record.name)
                ranks = [self.records[d].rank for d in record.imports if d in self.records]
                record.rank = 1 + max(ranks, default=0)
                record.indexed = True

    def warm_large(self, lines: int = 2_000) -> None:
        """Parse the trees of large modules ahead of their first edit (watch thread).

        A body edit of a large module then re-parses only what it touched
        (see quick.py); smaller modules parse on demand, cheaply.
        """
        for record in list(self.records.values()):
            if record._tree is None and record.source.count("\n") >= lines:
                _ = record.tree

    def warm(self) -> None:
        """Scan the records a quick reload left unscanned, off the critical path.

        Called by the watch thread after a batch is reported, so the next
        edit of a large module finds its facts ready.
        """
        while self.cold:
            record = self.records.get(self.cold.pop())
            if record is not None:
                _ = record.info

    def changed_on_disk(self) -> set[Path]:
        """Files of project modules modified since the version that runs was read.

        Asked when the watcher arms, often while the program still imports:
        modules loaded but not entered yet are checked from their load
        entries, without making their records.
        """
        with self._lock:
            files = [(str(r.path), r.mtime_ns) for r in self._records.values()]
            files += [(entry.path, entry.mtime_ns) for entry in list(self._pending)]
        changed: set[Path] = set()
        for path, mtime_ns in files:
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                changed.add(self.canonical(path))  # deleted
                continue
            if mtime_ns and mtime != mtime_ns:
                changed.add(self.canonical(path))
        return changed

    def _unindex(self, record: ModuleRecord) -> None:
        for dep in record.imports:
            users = self._importers.get(dep)
            if users is not None:
                users.discard(record.name)

    def remove(self, name: str) -> ModuleRecord | None:
        with self._lock:
            record = self.records.pop(name, None)
            if record is not None:
                if record.indexed:
                    self._unindex(record)
                if self.by_path.get(record.path) == name:
                    del self.by_path[record.path]
            return record

    def module_for(self, path: Path) -> str | None:
        return self.by_path.get(path)

    def holds_modules(self, path: str) -> bool:
        """Whether ``path`` is a folder that held project modules (cheap: a set lookup)."""
        if self._pending:
            self._enter_loaded()
        return path in self._module_dirs

    def modules_under(self, folder: Path) -> set[str]:
        """Modules whose files are below ``folder`` (asked only when a folder vanished)."""
        return {name for path, name in list(self.by_path.items()) if path.is_relative_to(folder)}

    def importers(self, name: str) -> set[str]:
        """Project modules whose import-time code imports ``name`` (directly)."""
        if self._unindexed or self._pending:
            self.index()
        return {m for m in self._importers.get(name, ()) if m != name and m in self.records}

    def importers_closure(self, name: str) -> set[str]:
        """Every project module that imports ``name``, directly or not."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            for importer in self.importers(frontier.pop()):
                if importer not in found:
                    found.add(importer)
                    frontier.append(importer)
        return found

    def cycle_of(self, name: str) -> list[str]:
        """The import cycle ``name`` is part of (just ``[name]`` if none).

        Every member of a cycle through ``name`` imports it transitively, so
        the search stays within ``name``'s importers.
        """
        above = self.importers_closure(name)
        if not above:
            return [name]
        return next(g for g in self.order(above | {name}) if name in g)

    def dependencies(self, name: str) -> set[str]:
        if self._unindexed or self._pending:
            self.index()
        record = self.records.get(name)
        if record is None:
            return set()
        return {m for m in record.imports if m in self.records and m != name}

    def order(self, names: Iterable[str]) -> list[list[str]]:
        """Strongly connected groups of ``names``, dependencies first (Tarjan)."""
        wanted = set(names)
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        groups: list[list[str]] = []

        def visit(node: str) -> None:  # recursion depth is bounded by the import depth
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for dep in sorted(self.dependencies(node) & wanted):
                if dep not in index:
                    visit(dep)
                    low[node] = min(low[node], low[dep])
                elif dep in on_stack:
                    low[node] = min(low[node], index[dep])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group))

        for node in sorted(wanted):
            if node not in index:
                visit(node)
        return groups

    def staging_here(self) -> bool:
        """Whether the calling thread is the one staging a batch."""
        return self.staging_thread == threading.get_ident()

    @property
    def _executing(self) -> list[str]:
        stack: list[str] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def executing_module(self) -> str | None:
        """The innermost project module running its top level in this thread, if any.

        Allocates nothing: the file-dependency hook asks it on every ``open``
        (through ``__dict__``: a ``getattr`` default would raise and catch an
        AttributeError in each thread that never imported, ten times the cost).
        """
        stack: list[str] | None = self._local.__dict__.get("stack")
        return stack[-1] if stack else None

    # -- called by the loader -----------------------------------------------------------
    def loaded(self, entry: Loaded) -> None:
        """A module the program loaded (outside staging) ran its top level.

        Start-up loads every project module through here, so this only queues
        the facts (strings, the code object, numbers: no record, no ``Path``, no
        lock); the records are made by the first look at the graph (see
        :meth:`_enter_loaded`), which normally comes once start-up is over.
        """
        self._pending.append(entry)

    def _enter_loaded(self) -> None:
        """Make and enter the records of the modules queued by :meth:`loaded`, in order."""
        with self._lock:
            pending = self._pending
            while pending:
                entry = pending.popleft()
                source = entry.source
                record = ModuleRecord(
                    entry.name, self.canonical(entry.path),
                    None if source is None else importlib.util.decode_source(source),
                    entry.code, _is_package(entry.name, entry.path),
                    mtime_ns=entry.mtime_ns or _mtime_ns(Path(entry.path)), order=entry.order,
                )
                # As _loaded: an importer that was already entered learns the edge.
                parent = self._records.get(entry.importer) if entry.importer else None
                if parent is not None:
                    parent.imports.add(entry.name)
                self._add(record)

    def _loaded(self, record: ModuleRecord) -> None:
        if self._executing:
            importer = self._executing[-1]
            staged = self.staged_records if self.staging_here() else None
            parent = (staged or {}).get(importer) or self.records.get(importer)
            if parent is not None:
                parent.imports.add(record.name)
        if self.staged_records is not None and self.staging_here():
            self.staged_records[record.name] = record
        else:
            self.add(record)
