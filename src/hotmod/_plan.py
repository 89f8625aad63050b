"""Plan: from a batch of changed paths to what must be patched and re-executed.

Every changed file is read and compiled first (G1: one syntax error anywhere
and nothing is applied). Each module's new syntax tree is compared with the
live version's: when only function bodies differ, the edit is a code swap
(no module code runs); anything else re-executes the module. The stager then
decides which importers must follow.
"""

from __future__ import annotations

import ast
import logging
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ReloadError
from ._graph import MAIN, ModuleGraph
from ._patch import BodyPatch, body_patches

logger = logging.getLogger(__name__)

NATIVE_SUFFIXES = (".so", ".pyd")


@dataclass
class SourceChange:
    """One changed module: its new source, tree and code (all None if deleted)."""

    module: str
    path: Path
    source: str | None
    tree: ast.Module | None
    code: types.CodeType | None


@dataclass
class Plan:
    changes: dict[str, SourceChange] = field(default_factory=dict)
    patches: dict[str, list[BodyPatch]] = field(default_factory=dict)
    mutated: dict[str, set[str]] = field(default_factory=dict)  # names behind body patches
    reexec: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    restart: str | None = None
    ignored: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.patches or self.reexec or self.removed or self.restart)


def skeleton(tree: ast.Module) -> str:
    """The module with every function body left out: equal skeletons mean body-only edits."""
    saved: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[ast.stmt]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            saved.append((node, node.body))
    for node, _ in saved:
        node.body = []
    try:
        return ast.dump(tree)
    finally:
        for node, body in saved:
            node.body = body


def compile_source(source: str, path: Path, module: str) -> tuple[ast.Module, types.CodeType]:
    """Parse and compile ``source``; a syntax error becomes a located ReloadError."""
    try:
        tree = ast.parse(source, str(path))
        code = compile(tree, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        lineno = exc.lineno if isinstance(exc, SyntaxError) else None
        raise ReloadError(
            f"cannot compile {path.name}: {exc}", path=path, module=module, lineno=lineno,
            phase="compile",
        ) from exc
    return tree, code


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    from importlib.util import decode_source

    return decode_source(data)


def make_plan(
    paths: Iterable[Path],
    graph: ModuleGraph,
    namespaces: dict[str, dict[str, object]],
    *,
    declined: set[str],
) -> Plan:
    """Compile and classify a batch. Raises :class:`ReloadError` on a syntax error.

    ``namespaces`` are the live module dicts by name; ``declined`` the modules
    that asked to be restarted on any change.
    """
    plan = Plan()
    for path in sorted(set(paths)):
        if path.suffix in NATIVE_SUFFIXES:
            if _native_loaded(path):
                plan.restart = f"extension module {path.name} changed"
            continue
        module = graph.module_for(path)
        if module is None:
            plan.ignored.append(path)  # not imported (yet): nothing runs it
            continue
        record = graph.records[module]
        source = _read(path)
        if source is None:
            plan.removed.add(module)
            plan.changes[module] = SourceChange(module, path, None, None, None)
            continue
        if source == record.source:
            continue
        tree, code = compile_source(source, path, module)
        plan.changes[module] = SourceChange(module, path, source, tree, code)

    for module, change in plan.changes.items():
        if change.tree is None or change.code is None:
            continue
        record = graph.records[module]
        if module in declined:
            plan.restart = plan.restart or f"{module} declined hot reload (hot.decline())"
            continue
        same_shape = skeleton(record.tree) == skeleton(change.tree)
        if not same_shape:
            if module == MAIN:
                plan.restart = plan.restart or (
                    f"the top level of the entry script {change.path.name} changed"
                )
            plan.reexec.add(module)
            continue
        namespace = namespaces.get(module)
        if namespace is None:
            continue
        patches, reason = body_patches(namespace, module, record.code, change.code)
        if reason is not None:
            if module == MAIN:
                plan.restart = plan.restart or f"entry script: {reason}"
            logger.debug("%s: re-executing: %s", module, reason)
            plan.reexec.add(module)
            continue
        mutated = {p.top for p in patches}
        if module != MAIN and mutated & _reached(change.tree, module, record.is_package):
            plan.reexec.add(module)  # import-time code runs a changed function: run it again
            continue
        plan.patches[module] = patches
        plan.mutated[module] = mutated
    return plan


def _reached(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    from ._scan import scan

    return scan(tree, module, is_package=is_package).reached.called


def _native_loaded(path: Path) -> bool:
    import sys

    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.endswith(NATIVE_SUFFIXES) and Path(file) == path:
            return True
    return False
