"""Plan: from a batch of changed paths to what must be patched and re-executed.

Every changed file is read and compiled first (G1: one syntax error anywhere
and nothing is applied). Each module's new syntax tree is compared with the
live version's: when only function bodies differ, the edit is a code swap
(no module code runs); anything else re-executes the module. The stager then
decides which importers must follow.
"""

from __future__ import annotations

import ast
import bisect
import logging
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import _compat
from .._errors import ReloadError
from .classpatch import ClassPatch, run_class_body
from .graph import MAIN, ModuleGraph
from .patch import (
    BodyPatch,
    ClassLines,
    SignatureValues,
    body_patches,
    derive_code_index,
    moved_classes,
)
from .quick import quick_change, statement_shifts, statement_spans
from .scan import ModuleInfo, scan

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
    is_package: bool = False
    _info: ModuleInfo | None = None
    quick: bool = False  # built from the changed statements alone (see quick.py)
    base_info: ModuleInfo | None = None  # the live version's facts, reused where shared
    statements: frozenset[str] | None = None  # quick path: the top-level names re-parsed
    moved: frozenset[str] = frozenset()  # quick path: code constants that only moved
    stale_lines: bool = False  # quick path: the module code's line table is the old one
    no_base: bool = False  # the live version's text is unknown: planned from its code

    @property
    def info(self) -> ModuleInfo:
        """What the new source imports and uses at import time (scanned once)."""
        if self._info is None:
            assert self.tree is not None, "a deleted module has no source to scan"
            self._info = scan(
                self.tree, self.module, is_package=self.is_package, previous=self.base_info
            )
        return self._info


@dataclass
class Plan:
    changes: dict[str, SourceChange] = field(default_factory=dict)
    patches: dict[str, list[BodyPatch]] = field(default_factory=dict)
    class_patches: dict[str, list[ClassPatch]] = field(default_factory=dict)
    mutated: dict[str, set[str]] = field(default_factory=dict)  # names behind body patches
    reexec: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    restart: str | None = None
    ignored: list[Path] = field(default_factory=list)
    # Modules whose edit may be patched in place -> the top-level classes whose
    # bodies changed shape; resolved (user code runs) by resolve_patches.
    candidates: dict[str, list[str]] = field(default_factory=dict)
    # Changed code that no live function runs (qualnames), by module.
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    # Classes whose bodies only moved to other lines (3.13), by module.
    class_lines: dict[str, list[ClassLines]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (
            self.patches or self.reexec or self.removed or self.restart or self.candidates
        )

    @property
    def moved_only(self) -> bool:
        """Every patch only moves a function to other lines (comment or blank lines
        added or removed above it): nothing behaves differently."""
        if not self.patches or self.reexec or self.removed or self.restart or self.candidates:
            return False
        if self.class_patches or any(self.unmatched.values()):
            return False
        return all(p.moved for patches in self.patches.values() for p in patches)


_SIGNATURE_PARTS = ("body", "returns")
_ARGUMENT_PARTS = ("defaults", "kw_defaults")


def skeleton(tree: ast.AST) -> str:
    """The module without function bodies, default values and annotations.

    Equal skeletons mean every difference can be patched into live functions
    (code, defaults, annotations) without running any module code.
    """
    saved: list[tuple[ast.AST, str, object]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            saved.extend((node, part, getattr(node, part)) for part in _SIGNATURE_PARTS)
            saved.extend((node.args, part, getattr(node.args, part)) for part in _ARGUMENT_PARTS)
            for arg in _all_args(node.args):
                saved.append((arg, "annotation", arg.annotation))
    for owner, part, _ in saved:
        setattr(owner, part, [] if part in ("body", *_ARGUMENT_PARTS) else None)
    try:
        return ast.dump(tree)
    finally:
        for owner, part, value in saved:
            setattr(owner, part, value)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    found = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    found.extend(a for a in (args.vararg, args.kwarg) if a is not None)
    return found


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
    *,
    declined: set[str],
) -> Plan:
    """Compile and classify a batch. Raises :class:`ReloadError` on a syntax error.

    ``declined`` are the modules that asked to be restarted on any change.
    """
    plan = Plan()
    for path in sorted(set(paths)):
        if path.suffix in NATIVE_SUFFIXES:
            if _native_loaded(path):
                plan.restart = f"extension module {path.name} changed"
            continue
        module = graph.module_for(path)
        if module is None:
            gone = graph.modules_under(path) if not path.exists() else set()
            for name in gone:  # a folder moved or deleted: its modules went with it
                plan.removed.add(name)
                record = graph.records[name]
                plan.changes[name] = SourceChange(name, record.path, None, None, None)
            if not gone:
                plan.ignored.append(path)  # not imported (yet): nothing runs it
            continue
        record = graph.records[module]
        source = _read(path)
        if source is None:
            plan.removed.add(module)
            plan.changes[module] = SourceChange(module, path, None, None, None)
            continue
        known = record.source
        if record.source_lost:
            # Changed before its text was read (loaded from a .pyc, never looked
            # at since): compare code objects instead. Only function bodies
            # changed -> patch them; anything else -> run it again.
            tree, code = compile_source(source, path, module)
            plan.changes[module] = SourceChange(
                module, path, source, tree, code, is_package=record.is_package,
                no_base=True,
            )
            if not _compat.same_shape(record.code, code):
                plan.reexec.add(module)
            continue
        if source == known:
            continue
        fast = None
        if record._tree is not None:  # the old tree is at hand: try the changed lines alone
            fast = quick_change(record.source, record._tree, record.code, source, path)
        if fast is not None:
            derive_code_index(fast.code, record.code, fast.code_names)
            plan.changes[module] = SourceChange(
                module, path, source, fast.tree, fast.code, is_package=record.is_package,
                quick=True, base_info=record._info, statements=frozenset(fast.statements),
                moved=frozenset(fast.moved), stale_lines=fast.stale_lines or record.stale_lines,
            )
            continue
        tree, code = compile_source(source, path, module)
        plan.changes[module] = SourceChange(
            module, path, source, tree, code, is_package=record.is_package
        )

    for module, change in plan.changes.items():
        if change.tree is None or change.code is None:
            continue
        record = graph.records[module]
        if module in declined:
            plan.restart = plan.restart or f"{module} declined hot reload (hot.decline())"
            continue
        if module in plan.reexec:
            continue  # decided above (its running version's text is unknown)
        live = sys.modules.get(module)
        if change.no_base:
            plan.candidates[module] = []  # same shape: function bodies only (see above)
            continue
        reshaped = None if live is None else reshaped_classes(record.tree, change.tree)
        if reshaped is None or (reshaped and module == MAIN):
            if module == MAIN:
                plan.restart = plan.restart or (
                    f"the top level of the entry script {change.path.name} changed"
                )
            plan.reexec.add(module)
            continue
        plan.candidates[module] = reshaped
    return plan


def resolve_patches(plan: Plan, graph: ModuleGraph) -> None:
    """Turn the plan's patch candidates into body and class patches, or re-executions.

    This runs user code (new class bodies, new default values and annotations),
    so it belongs to staging, not to planning: nothing live changes here.
    Raises :class:`ReloadError` when that code raises.
    """
    for module, reshaped in sorted(plan.candidates.items()):
        change = plan.changes[module]
        record = graph.records[module]
        live = sys.modules.get(module)
        assert change.tree is not None
        assert change.code is not None
        if live is None:
            plan.reexec.add(module)
            continue
        namespace = live.__dict__
        try:
            if change.no_base:
                # Module and class bodies compile the same: no default, annotation
                # or class attribute changed; function bodies did.
                classes: list[ClassPatch] | None = []
                patches, reason, unmatched = body_patches(
                    namespace, module, record.code, change.code
                )
            else:
                signatures = Signatures(
                    record.tree, change.tree, change.code, namespace, change.path
                )
                classes = _class_patches(
                    reshaped, namespace, module, change.code, record.tree, change.tree
                )
                patches, reason, unmatched = body_patches(
                    namespace, module, record.code, change.code, signatures=signatures.changed,
                    reshaped=frozenset(reshaped),
                    only=None if change.statements is None else change.statements | change.moved,
                )
        except ReloadError:
            raise
        except Exception as exc:  # a new class body, default or annotation raised
            raise ReloadError(
                f"{type(exc).__name__}: {exc}", path=change.path, module=module, phase="stage"
            ) from exc
        if classes is None:
            reason = "a class body changed that cannot be patched in place"
        if reason is not None:
            if module == MAIN:
                plan.restart = plan.restart or f"entry script: {reason}"
            logger.debug("%s: re-executing: %s", module, reason)
            plan.reexec.add(module)
            continue
        assert classes is not None
        changed = [p for p in patches if not p.moved]
        mutated = {p.top for p in changed} | set(reshaped)
        scopes = {p.code.co_qualname.split(".<locals>")[0] for p in changed}
        for patch in classes:
            scopes |= patch.all_changed()
            if patch.values_changed():
                scopes.add(patch.cls.__name__)  # a class-level value: whoever builds it sees it
        if module != MAIN and scopes & change.info.reached_scopes:
            plan.reexec.add(module)  # import-time code runs a changed function: run it again
            continue
        plan.unmatched[module] = unmatched
        lines = moved_classes(namespace, record.code, change.code)
        if lines:
            plan.class_lines[module] = lines
        if not patches and not classes and not unmatched:
            continue  # comments, blank lines elsewhere: nothing to apply
        plan.patches[module] = patches
        if classes:
            plan.class_patches[module] = classes
        plan.mutated[module] = mutated
    plan.candidates.clear()


def reshaped_classes(old: ast.Module, new: ast.Module) -> list[str] | None:
    """Top-level classes whose bodies alone changed shape; None for any other change.

    The class statements themselves (name, bases, keywords, decorators) must be
    unchanged and undecorated, and every other statement the same but for
    function bodies: then the new class bodies can run on their own.
    """
    if len(old.body) != len(new.body):
        return None
    changed: list[str] = []
    for before, after in zip(old.body, new.body, strict=True):
        if before is after or skeleton(before) == skeleton(after):
            continue
        if not (isinstance(before, ast.ClassDef) and isinstance(after, ast.ClassDef)):
            return None
        if after.decorator_list or before.decorator_list or getattr(after, "type_params", None):
            return None
        if _class_header(before) != _class_header(after):
            return None
        changed.append(after.name)
    return changed


def _class_header(node: ast.ClassDef) -> str:
    """Name, bases and keywords (metaclass=...) of a class statement."""
    parts = [ast.dump(b) for b in node.bases]
    parts += [f"{k.arg}={ast.dump(k.value)}" for k in node.keywords]
    return f"{node.name}({', '.join(parts)})"


def _class_patches(
    names: list[str],
    namespace: dict[str, object],
    module: str,
    code: types.CodeType,
    old_tree: ast.Module,
    new_tree: ast.Module,
) -> list[ClassPatch] | None:
    """Run the new bodies of the reshaped classes; None if one is not a plain class."""
    old_defs = {n.name: n for n in old_tree.body if isinstance(n, ast.ClassDef)}
    new_defs = {n.name: n for n in new_tree.body if isinstance(n, ast.ClassDef)}
    patches = []
    for name in names:
        cls = namespace.get(name)
        if not isinstance(cls, type) or type(cls) is not type or cls.__module__ != module:
            return None  # a metaclass may give the body another namespace or meaning
        body = next(
            (c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_qualname == name),
            None,
        )
        if body is None or body.co_freevars:
            return None
        patch = run_class_body(
            cls, body, namespace, old_node=old_defs.get(name), new_node=new_defs.get(name)
        )
        if patch.namespace.get("__slots__") != cls.__dict__.get("__slots__"):
            return None  # a new layout: only a new class can have it
        patches.append(patch)
    return patches


class Signatures:
    """New default values and annotations of functions whose signature changed."""

    def __init__(
        self,
        old: ast.Module,
        new: ast.Module,
        code: types.CodeType,
        namespace: dict[str, object],
        path: Path,
    ) -> None:
        self._old = _DefsByLine(old)
        self._new = _DefsByLine(new)
        self._namespace = namespace
        self._path = path
        self._lazy_annotations = bool(code.co_flags & _CO_FUTURE_ANNOTATIONS)

    def changed(self, old: types.CodeType, new: types.CodeType) -> SignatureValues | None:
        statement = self._old.statement(old.co_firstlineno)
        if statement is not None and statement is self._new.statement(new.co_firstlineno):
            return None  # a statement both trees share: the edit did not touch it
        before = self._old.get(old.co_firstlineno)
        after = self._new.get(new.co_firstlineno)
        if before is None or after is None or _signature_dump(before) == _signature_dump(after):
            return None
        scope: dict[str, object] = {}
        owner = self._namespace.get(new.co_qualname.split(".")[0])
        if "." in new.co_qualname and isinstance(owner, type):
            scope = dict(owner.__dict__)  # a method's defaults see the class body's names

        def value(node: ast.expr) -> object:
            expr = ast.Expression(node)
            ast.fix_missing_locations(expr)
            return eval(compile(expr, str(self._path), "eval"), self._namespace, scope)

        args = after.args
        positional = [*args.posonlyargs, *args.args]
        defaults = tuple(value(d) for d in args.defaults) or None
        kwdefaults = {
            a.arg: value(d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
            if d is not None
        } or None
        annotations: dict[str, object] = {}
        for arg in [*positional, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                annotations[arg.arg] = self._annotation(arg.annotation, value)
        if after.returns is not None:
            annotations["return"] = self._annotation(after.returns, value)
        return SignatureValues(defaults, kwdefaults, annotations)

    def _annotation(self, node: ast.expr, value: Callable[[ast.expr], object]) -> object:
        return ast.unparse(node) if self._lazy_annotations else value(node)


_CO_FUTURE_ANNOTATIONS = 0x1000000


class _DefsByLine:
    """Function definitions by the line their code object starts at (first decorator).

    Indexed one top-level statement at a time, on demand: a body edit in a
    large module looks at the statement it touched, not at the whole tree.
    Positions are true ones: a statement a quick change moved (see quick.py)
    has its shift added.
    """

    def __init__(self, tree: ast.Module) -> None:
        self._body = tree.body
        self._shifts = statement_shifts(tree)
        self._starts = [start for start, _ in statement_spans(tree)]
        self._done: set[int] = set()
        self._found: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def statement(self, line: int) -> ast.stmt | None:
        """The top-level statement holding ``line``."""
        index = bisect.bisect_right(self._starts, line) - 1
        return self._body[index] if index >= 0 else None

    def get(self, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        index = bisect.bisect_right(self._starts, line) - 1
        if index >= 0 and index not in self._done:
            self._done.add(index)
            shift = self._shifts[index]
            for node in ast.walk(self._body[index]):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                    self._found[first + shift] = node
        return self._found.get(line)


def _signature_dump(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    annotations = [a.annotation for a in _all_args(node.args)]
    parts = [node.args.defaults, node.args.kw_defaults, annotations, node.returns]
    return repr([ast.dump(p) if isinstance(p, ast.AST) else _dump_list(p) for p in parts])


def _dump_list(items: object) -> str:
    if not isinstance(items, list):
        return repr(items)
    return repr([ast.dump(i) if isinstance(i, ast.AST) else i for i in items])


def _native_loaded(path: Path) -> bool:
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.endswith(NATIVE_SUFFIXES) and Path(file) == path:
            return True
    return False
