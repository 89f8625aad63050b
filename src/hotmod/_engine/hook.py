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

from .graph import ModuleGraph, ModuleRecord, _mtime_ns


class ProjectLoader(SourceFileLoader):
    """Loads a project module and records its source and code in the graph."""

    def __init__(self, fullname: str, path: str, graph: ModuleGraph) -> None:
        super().__init__(fullname, path)
        self._graph = graph
        self._record: ModuleRecord | None = None
        self._source: bytes | None = None
        self._mtime_ns = 0

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
        staged = graph.staged_code.get(fullname) if graph.staging_here() else None
        source: str | None
        mtime_ns = 0
        if staged is not None:
            source, code = staged  # what the planner compiled: never re-read, never a .pyc
        else:
            code_or_none = super().get_code(fullname)  # may use a valid .pyc
            if code_or_none is None:  # pragma: no cover - a source loader always has code
                raise ImportError(f"no code for {fullname}", name=fullname)
            code = code_or_none
            # From a .pyc the text is not needed yet: the record reads it later,
            # off the start-up path, checking the file is still this version.
            source = None if self._source is None else importlib.util.decode_source(self._source)
            self._source = None
            mtime_ns = self._mtime_ns
        path = self._graph.canonical(self.path)
        self._record = ModuleRecord(
            fullname, path, source, code, self.is_package(fullname),
            mtime_ns=mtime_ns or _mtime_ns(path),
            # Load order is the order modules *start* executing (exec_module asks
            # for the code first): a cycle entered at ``a`` (which imports ``b``,
            # which imports ``a``) runs again from ``a``.
            order=graph.next_order(),
        )
        return code

    def exec_module(self, module: types.ModuleType) -> None:
        graph = self._graph
        graph._executing.append(module.__name__)
        try:
            super().exec_module(module)
        finally:
            graph._executing.pop()
        if self._record is not None:
            graph._loaded(self._record)
            self._record = None


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
        if spec is None or spec.origin is None or type(spec.loader) is not SourceFileLoader:
            return spec
        if not self._graph.is_project_file(spec.origin):
            return spec
        spec.loader = ProjectLoader(fullname, spec.origin, self._graph)
        return spec

    def invalidate_caches(self) -> None:
        PathFinder.invalidate_caches()
