"""``hotmod graph``: the project's import graph from the sources, without running them."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

from .._engine.graph import MAIN
from .._engine.scan import scan
from .._errors import UsageError
from .._project import ProjectFiles
from .target import Target, default_roots, locate_script


def _find(name: str, roots: list[Path]) -> tuple[Path, bool] | None:
    parts = name.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        if (base / "__init__.py").is_file():
            return base / "__init__.py", True
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), False
    return None


def static_graph(target: Target) -> dict[str, Any]:
    """``{"root": ..., "modules": {name: {"path", "imports", "lazy_imports"}}}``.

    Only modules found under the project root are included; edges to them only.
    A module that cannot be read or parsed has no edges and an ``"error"``:
    ``"path:line: SyntaxError: message"``.
    """
    roots = default_roots(target)
    rule = ProjectFiles([str(r.resolve()) for r in roots])
    if target.script is not None:
        start: tuple[str, Path, bool] = (MAIN, locate_script(target.script).file, False)
    else:
        assert target.module is not None
        found = _find(target.module, roots)
        if found is None:
            spec = importlib.util.find_spec(target.module)
            if spec is None or spec.origin is None:
                raise UsageError(f"no module named {target.module!r}")
            found = (Path(spec.origin), spec.submodule_search_locations is not None)
        start = (target.module, found[0], found[1])
    modules: dict[str, Any] = {}
    todo = [start]
    while todo:
        name, path, is_package = todo.pop()
        if name in modules:
            continue
        try:
            # From bytes, as python reads sources: a coding declaration is honoured.
            tree = ast.parse(path.read_bytes(), str(path))
        except (OSError, SyntaxError, ValueError) as exc:
            modules[name] = {"path": str(path), "imports": [], "lazy_imports": [],
                             "error": _describe(exc, path)}
            continue
        info = scan(tree, name if name != MAIN else "", is_package=is_package)
        edges: dict[str, list[str]] = {"imports": [], "lazy_imports": []}
        for kind, names in (("imports", info.imports), ("lazy_imports", info.lazy_imports)):
            for dep in sorted(names):
                hit = _find(dep, roots)
                if hit is None or not rule.allowed(str(hit[0])):
                    continue
                if dep not in edges[kind]:
                    edges[kind].append(dep)
                todo.append((dep, hit[0], hit[1]))
        modules[name] = {"path": str(path), **edges}
    return {"root": [str(r) for r in roots], "modules": modules}


def _describe(exc: Exception, path: Path) -> str:
    """``path:line: Type: message``, the line only where the error has one."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or path}:{exc.lineno}" if exc.lineno else str(path)
        return f"{where}: {type(exc).__name__}: {exc.msg}"
    if isinstance(exc, OSError):
        return f"{path}: {type(exc).__name__}: {exc.strerror or exc}"
    return f"{path}: {type(exc).__name__}: {exc}"
