"""The import hook: a meta path finder that loads project modules with our loader.

:class:`ProjectFinder` sits just before ``PathFinder`` on ``sys.meta_path`` and
does the same lookup; for a project file it hands the spec a
:class:`ProjectLoader`, which records the module's code (and its source, when
read anyway) in the :class:`~hotmod._engine.graph.ModuleGraph`, and during
staging executes the code the planner compiled instead of reading the file.
"""

from __future__ import annotations

import importlib.util
import os
import types
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from typing import Any

from .graph import ModuleGraph
from .record import Loaded, ModuleRecord, _mtime_ns


class ProjectLoader(SourceFileLoader):
    """Loads a project module and records its source and code in the graph.

    Paid once per project module at start-up, so it does the least it can:
    outside staging it hands the graph a :class:`~hotmod._engine.graph.Loaded`
    tuple, and the record is made later, off the start-up path.
    """

    # Per load, set as the import system calls in: class defaults, no per-instance cost.
    _source: bytes | None = None  # the file's bytes, when read (no valid .pyc)
    _mtime_ns = 0  # from the stat the loader makes anyway (path_stats)
    _code: types.CodeType | None = None
    _order = 0
    _record: ModuleRecord | None = None  # staging only: made at once

    def __init__(self, fullname: str, path: str, graph: ModuleGraph) -> None:
        super().__init__(fullname, path)
        self._graph = graph

    def get_data(self, path: str) -> bytes:
        data = super().get_data(path)
        if path == self.path:
            self._source = data  # read anyway (no valid .pyc): keep the text
        return data

    def path_stats(self, path: str) -> Mapping[str, Any]:
        stat = os.stat(path)  # the stat the loader makes anyway: keep its mtime
        if path == self.path:
            self._mtime_ns = stat.st_mtime_ns
        return {"mtime": stat.st_mtime, "size": stat.st_size}

    def get_code(self, fullname: str) -> types.CodeType:
        graph = self._graph
        # Load order is the order modules *start* executing (exec_module asks
        # for the code first): a cycle entered at ``a`` (which imports ``b``,
        # which imports ``a``) runs again from ``a``.
        self._order = graph.next_order()
        self._source = None
        self._mtime_ns = 0
        if graph.staging_thread is not None and graph.staging_here():
            return self._staged_code(fullname)
        code = super().get_code(fullname)  # may use a valid .pyc
        if code is None:  # pragma: no cover - a source loader always has code
            raise ImportError(f"no code for {fullname}", name=fullname)
        self._code = code
        return code

    def _staged_code(self, fullname: str) -> types.CodeType:
        """In the staging thread: the planner's code if it has some; a record at once."""
        graph = self._graph
        staged = graph.staged_code.get(fullname)
        source: str | None
        mtime_ns = 0
        if staged is not None:
            source, code = staged  # what the planner compiled: never re-read, never a .pyc
        else:
            code_or_none = super().get_code(fullname)
            if code_or_none is None:  # pragma: no cover - a source loader always has code
                raise ImportError(f"no code for {fullname}", name=fullname)
            code = code_or_none
            # From a .pyc the text is not needed yet: the record reads it later,
            # checking the file is still this version.
            source = None if self._source is None else importlib.util.decode_source(self._source)
            self._source = None
            mtime_ns = self._mtime_ns
        path = graph.canonical(self.path)
        self._record = ModuleRecord(
            fullname, path, source, code, self.is_package(fullname),
            mtime_ns=mtime_ns or _mtime_ns(path), order=self._order,
        )
        return code

    def exec_module(self, module: types.ModuleType) -> None:
        graph = self._graph
        stack = graph._executing
        stack.append(module.__name__)
        try:
            super().exec_module(module)
        finally:
            stack.pop()
        record, self._record = self._record, None
        if record is not None:
            graph._loaded(record)
            return
        code, self._code = self._code, None
        if code is not None:
            graph.loaded(Loaded(
                module.__name__, self.path, self._source, code, self._mtime_ns, self._order,
                stack[-1] if stack else None,
            ))
            self._source = None


class ProjectFinder:
    """A meta path finder placed just before ``PathFinder``: same lookup, our loader."""

    def __init__(self, graph: ModuleGraph) -> None:
        self._graph = graph

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> ModuleSpec | None:
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not SourceFileLoader:
            return spec
        origin = spec.origin
        if origin is None or not self._graph.is_project_file(origin):
            return spec
        spec.loader = ProjectLoader(fullname, origin, self._graph)
        return spec

    def invalidate_caches(self) -> None:
        PathFinder.invalidate_caches()
