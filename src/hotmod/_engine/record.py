"""One project module's record: its file, the source and code of its live version.

:class:`ModuleRecord` is what the :class:`~hotmod._engine.graph.ModuleGraph`
keeps per module; :class:`Loaded` is what the import hook queues for it at
load time (the record itself is made at the graph's first look, after
start-up); :func:`bytecode_imports` reads a module's imports from its code.
"""

from __future__ import annotations

import importlib.util
import os
import types
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .._compat import code_imports

if TYPE_CHECKING:
    import ast

    from .scan import ModuleInfo

# ``ast`` and the scanner (.scan) are imported where records are first parsed or
# scanned, after start-up: the program's process does not load them for hotmod.


@dataclass
class ModuleRecord:
    """One live project module: its file, source and code, and its imports."""

    name: str
    path: Path
    # The source text of the live version; None until first needed when the
    # module was loaded from a valid .pyc (read then, off the start-up path,
    # if the file has not changed since: see ``source``).
    _text: str | None
    code: types.CodeType
    is_package: bool
    imports: set[str] = field(default_factory=set)  # project-or-not module names, absolute
    mtime_ns: int = 0  # of the file when this version was read: catches edits before watching
    indexed: bool = False  # imports scanned and entered in the importers index
    order: int = 0  # when it started executing: a cycle re-executes in the order it first ran
    rank: int = 0  # 1 + the highest rank of its project dependencies: a topological key
    _tree: ast.Module | None = None
    _info: ModuleInfo | None = None
    # Older, equal code of nested functions that live closures may still run
    # (see closures.py); keyed by code key.
    nested_history: dict[tuple[str, int], list[weakref.ref[types.CodeType]]] = field(
        default_factory=dict
    )
    # True when the file changed on disk before its source was read: the text
    # of the running version is unknown, so its next change re-executes it.
    source_lost: bool = False
    # True when ``code`` came from a quick change that moved statements: its
    # constants are exact, its own line table is not (see quick.py); it is
    # compiled in full before the module body runs again.
    stale_lines: bool = False

    @property
    def source(self) -> str:
        if self._text is None:
            try:
                stat = os.stat(self.path)
                data = self.path.read_bytes()
            except OSError:
                data, stat = b"", None
            if stat is None or (self.mtime_ns and stat.st_mtime_ns != self.mtime_ns):
                self.source_lost = True
            self._text = importlib.util.decode_source(data)
        return self._text

    @source.setter
    def source(self, text: str) -> None:
        self._text = text
        self.source_lost = False

    @property
    def tree(self) -> ast.Module:
        if self._tree is None:
            import ast

            self._tree = ast.parse(self.source, str(self.path))
        return self._tree

    @property
    def info(self) -> ModuleInfo:
        if self._info is None:
            from .scan import scan

            self._info = scan(self.tree, self.name, is_package=self.is_package)
        return self._info

    @property
    def package(self) -> str:
        from .scan import package_of

        return package_of(self.name, is_package=self.is_package)


def bytecode_imports(code: types.CodeType, package: str) -> set[str]:
    """Modules imported by the module-level code (cheap: no parsing).

    ``from a import b`` adds both ``a`` and ``a.b``: ``b`` may be a submodule.
    Class bodies are scanned too; function bodies import at call time and
    always see the live module.
    """
    from .scan import resolve

    found: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for name, level, fromlist in code_imports(current):
            base = resolve(package, name or None, level)
            found.add(base)
            if fromlist is not None:
                found.update(f"{base}.{n}" for n in fromlist if n != "*")
        stack.extend(
            c for c in current.co_consts
            # class bodies run at import time; functions (CO_NEWLOCALS) do not
            if isinstance(c, types.CodeType) and not c.co_flags & 0x02
        )
    found.discard("")
    return found


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0




class Loaded(NamedTuple):
    """What the loader saw of one module it loaded: the makings of its record.

    ``source``: the file's bytes when they were read (no valid ``.pyc``);
    ``importer``: the project module whose top level imported it, if any.
    """

    name: str
    path: str
    source: bytes | None
    code: types.CodeType
    mtime_ns: int
    order: int
    importer: str | None


def _is_package(name: str, path: str) -> bool:
    """``SourceFileLoader.is_package``, from the strings: an ``__init__`` file not named so."""
    stem = path.rpartition(os.sep)[2].rpartition(".")[0]
    return stem == "__init__" and name.rpartition(".")[2] != "__init__"
