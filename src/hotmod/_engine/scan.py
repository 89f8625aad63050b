"""Static facts about a module's source, read from its syntax tree.

The planner needs to know, for a module, which other modules it imports and
which of their names its *import-time* code uses: the module body, class
bodies, decorators, default values and annotations, plus the bodies of any
function that import-time code can reach by name. Function bodies that only
run later read globals at call time and see the new values without any
re-execution, which is what lets a reload stop at an importer that does not
use a changed name (G5).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .quick import statement_shifts

Chain = tuple[str, ...]  # a dotted load such as ("np", "linalg", "norm")

# Methods that run when a class is instantiated or subclassed.
CONSTRUCTION = ("__new__", "__init__", "__post_init__", "__init_subclass__", "__set_name__")


@dataclass(frozen=True)
class Binding:
    """A local name bound by an import statement."""

    module: str  # absolute module name
    attr: str | None  # ``from module import attr``; None when the name is the module itself


@dataclass
class Refs:
    """Names a piece of code loads (bare names and attribute chains), and which it calls.

    "Called" covers calls, decorators and base classes: the places where the
    *behaviour* of a function or class runs, not just its identity is taken.
    """

    names: set[str] = field(default_factory=set)
    chains: set[Chain] = field(default_factory=set)
    called: set[str] = field(default_factory=set)
    called_chains: set[Chain] = field(default_factory=set)

    def update(self, other: Refs) -> None:
        self.names |= other.names
        self.chains |= other.chains
        self.called |= other.called
        self.called_chains |= other.called_chains


@dataclass
class ModuleInfo:
    """What :func:`scan` learns from one module's syntax tree."""

    bindings: dict[str, Binding]
    star: tuple[str, ...]  # modules imported with ``from m import *``
    imports: frozenset[str]  # modules imported by import-time code (absolute)
    lazy_imports: frozenset[str]  # modules imported only inside function bodies
    reached: Refs  # loads by import-time code, closed over reachable local functions
    reached_scopes: frozenset[str]  # functions and methods ("f", "C.m") import-time code runs
    toplevel: Refs = field(default_factory=Refs)  # loads by the top level itself only
    parts: dict[int, _Part] = field(default_factory=dict, repr=False)  # per statement

    def uses(
        self, module: str, rebound: set[str], mutated: set[str], *, toplevel_only: bool = False
    ) -> bool:
        """Whether import-time code of this module depends on changes to ``module``.

        ``rebound`` names of ``module`` now refer to other objects; ``mutated``
        names keep their identity but their behaviour changed. A from-import of a
        rebound name holds the stale object; a mutated one matters only if
        import-time code calls or reads it. ``toplevel_only`` ignores what the
        functions called at the top level read (the entry script: its main loop
        reads globals afresh on every call).
        """
        changed = rebound | mutated
        if not changed:
            return False
        reached = self.toplevel if toplevel_only else self.reached
        if "__getattr__" in changed and self._reads_any(module, reached):
            return True  # PEP 562: any attribute may come from the new __getattr__
        aliases: dict[str, str] = {}  # local name -> the module (or package) it denotes
        for local, binding in self.bindings.items():
            if binding.attr is not None and binding.module == module:
                if binding.attr in rebound:
                    return True
                if binding.attr in mutated and (
                    local in reached.called
                    or any(chain[0] == local for chain in reached.called_chains)
                ):
                    return True  # ``X()`` or ``X.make()``: the changed code runs
            path = binding.module if binding.attr is None else f"{binding.module}.{binding.attr}"
            if path == module or module.startswith(path + "."):
                aliases[local] = path
        for local in aliases:
            if local in reached.names:
                return True  # the module object itself escapes: cannot tell which names
        for chains, names in ((reached.chains, rebound), (reached.called_chains, changed)):
            for chain in chains:
                dotted = aliases.get(chain[0])
                if dotted is None:
                    continue
                # ``import pkg.sub`` binds ``pkg``: walk the chain down to ``module``.
                parts = list(chain[1:])
                while parts and dotted != module:
                    dotted = f"{dotted}.{parts.pop(0)}"
                if dotted == module and parts and parts[0] in names:
                    return True
        if module in self.star:
            public = {n for n in rebound if not n.startswith("_")}
            if public or (mutated & reached.called):
                return True
        return False

    def _reads_any(self, module: str, reached: Refs) -> bool:
        """Whether import-time code reads any attribute of ``module`` (by name or chain)."""
        aliases = set()
        for local, binding in self.bindings.items():
            if binding.module == module and binding.attr is not None:
                return True
            if binding.attr is None and (binding.module == module or module.startswith(
                binding.module + "."
            )):
                aliases.add(local)
        return any(chain[0] in aliases for chain in reached.chains | reached.called_chains)


def top_level_use(tree: ast.Module, info: ModuleInfo, module: str, names: set[str]) -> (
    tuple[str, int] | None
):
    """The first top-level line (function bodies excluded) using one of ``names`` of ``module``.

    For messages ("line 12 uses LIMIT"); ``(name, line)`` or None.
    """
    locals_: dict[str, str] = {}  # local name -> the module attribute it denotes
    aliases: set[str] = set()
    for local, binding in info.bindings.items():
        if binding.module == module and binding.attr in names:
            locals_[local] = binding.attr
        elif binding.attr is None and (binding.module == module or module.startswith(
            binding.module + "."
        )):
            aliases.add(local)
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            # The body runs later, reading globals afresh; decorators, defaults
            # and annotations run now.
            for part in [*getattr(node, "decorator_list", ()), node.args, getattr(
                node, "returns", None
            )]:
                if part is not None:
                    visit(part)
            return
        if isinstance(node, ast.Name) and node.id in locals_:
            found.append((node.lineno, locals_[node.id]))
        elif isinstance(node, ast.Attribute) and node.attr in names:
            chain = _chain(node)
            if chain is not None and chain[0] in aliases:
                found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                if (alias.asname or alias.name) in locals_:
                    found.append((node.lineno, locals_[alias.asname or alias.name]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt, shift in zip(tree.body, statement_shifts(tree), strict=True):
        first = len(found)
        visit(stmt)
        found[first:] = [(line + shift, name) for line, name in found[first:]]  # true lines
    if not found:
        return None
    line, name = min(found)
    return name, line


def _top_level_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run at the top level, through if/try/with/for blocks.

    ``if sys.version_info >= ...: def helper(): ...`` defines a top-level
    function as surely as a plain ``def`` does.
    """
    found: list[ast.stmt] = []
    for stmt in body:
        found.append(stmt)
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for fieldname in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(stmt, fieldname, None)
            if not isinstance(block, list):
                continue
            for item in block:
                if isinstance(item, ast.stmt):
                    found.extend(_top_level_statements([item]))
                else:  # an except handler or a match case holds statements
                    inner = getattr(item, "body", None)
                    if isinstance(inner, list):
                        found.extend(_top_level_statements(inner))
    return found


def package_of(name: str, *, is_package: bool) -> str:
    """The package relative imports in module ``name`` resolve against."""
    return name if is_package else name.rpartition(".")[0]


def resolve(package: str, module: str | None, level: int) -> str:
    """Absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if level == 0:
        return module or ""
    parts = package.split(".") if package else []
    base = ".".join(parts[: len(parts) - (level - 1)]) if level > 1 else package
    return f"{base}.{module}" if module and base else (module or base)


class _Loads(ast.NodeVisitor):
    """Collects loads, skipping the bodies of nested functions and lambdas."""

    def __init__(self, *, skip_bodies: bool) -> None:
        self.refs = Refs()
        self.skip_bodies = skip_bodies

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.refs.names.add(node.id)

    def _callee(self, node: ast.expr) -> None:
        """Record ``node`` as something whose behaviour runs (call, decorator, base)."""
        if isinstance(node, ast.Name):
            self.refs.called.add(node.id)
        elif isinstance(node, ast.Attribute):
            chain = _chain(node)
            if chain is not None:
                self.refs.called_chains.add(chain)
        elif isinstance(node, ast.Call):
            self._callee(node.func)  # ``deco(arg)`` as a decorator: both run

    def visit_Call(self, node: ast.Call) -> None:
        self._callee(node.func)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            self._callee(base)  # creating a subclass runs the base's hooks
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            chain.append(current.attr)
            current = current.value
        if isinstance(current, ast.Name):
            chain.append(current.id)
            self.refs.chains.add(tuple(reversed(chain)))
        else:
            self.visit(current)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for deco in getattr(node, "decorator_list", []):
            self._callee(deco)
            self.visit(deco)
        self.visit(node.args)  # defaults and annotations run at definition time
        returns = getattr(node, "returns", None)
        if returns is not None:
            self.visit(returns)
        if not self.skip_bodies:
            body = node.body if isinstance(node.body, list) else [node.body]
            for stmt in body:
                self.visit(stmt)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function


def _chain(node: ast.Attribute) -> Chain | None:
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    return tuple(reversed(parts))


def _loads(nodes: list[ast.stmt] | list[ast.expr], *, skip_bodies: bool) -> Refs:
    visitor = _Loads(skip_bodies=skip_bodies)
    for node in nodes:
        visitor.visit(node)
    return visitor.refs


@dataclass
class _Part:
    """What one top-level statement contributes to its module's :class:`ModuleInfo`.

    Kept per statement so that a quick reload (which swaps a few statements
    and shares the others) rescans only the statements it swapped.
    """

    stmt: ast.stmt  # kept alive: parts are looked up by the statement's id
    bindings: list[tuple[str, Binding]]
    star: list[str]
    imports: set[str]
    lazy: set[str]
    toplevel: Refs
    scopes: dict[str, Refs]
    classes: dict[str, str]


def _scan_part(stmt: ast.stmt, package: str) -> _Part:
    part = _Part(stmt, [], [], set(), set(), _loads([stmt], skip_bodies=True), {}, {})

    def record_import(node: ast.Import | ast.ImportFrom, *, at_import_time: bool) -> None:
        target = part.imports if at_import_time else part.lazy
        if isinstance(node, ast.Import):
            for alias in node.names:
                target.add(alias.name)
                if at_import_time:
                    if alias.asname:
                        part.bindings.append((alias.asname, Binding(alias.name, None)))
                    else:  # ``import pkg.sub`` binds ``pkg``
                        top = alias.name.split(".")[0]
                        part.bindings.append((top, Binding(top, None)))
            return
        base = resolve(package, node.module, node.level)
        target.add(base)
        for alias in node.names:
            if alias.name == "*":
                if at_import_time:
                    part.star.append(base)
                continue
            target.add(f"{base}.{alias.name}")  # may be a submodule; the graph checks
            if at_import_time:
                part.bindings.append((alias.asname or alias.name, Binding(base, alias.name)))

    def walk_import_time(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                record_import(stmt, at_import_time=True)
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        record_import(node, at_import_time=False)
            elif isinstance(stmt, ast.ClassDef):
                walk_import_time(stmt.body)
            else:
                for child in ast.iter_child_nodes(stmt):
                    if isinstance(child, ast.stmt):
                        walk_import_time([child])
                # if/try/with/for bodies hold statements in lists
                for fieldname in ("body", "orelse", "finalbody", "handlers", "cases"):
                    block = getattr(stmt, fieldname, None)
                    if isinstance(block, list):
                        walk_import_time([s for s in block if isinstance(s, ast.stmt)])
                        for handler in block:
                            inner = getattr(handler, "body", None)
                            if not isinstance(handler, ast.stmt) and isinstance(inner, list):
                                walk_import_time(inner)

    walk_import_time([stmt])
    scopes = part.scopes
    for inner in _top_level_statements([stmt]):
        if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
            refs = _loads(inner.body, skip_bodies=False)
            if inner.name in scopes:  # defined in both branches of an if: either may run
                refs.update(scopes[inner.name])
            scopes[inner.name] = refs
        elif isinstance(inner, ast.ClassDef):
            # Using a class (calling it, subclassing it) runs its construction
            # hooks, not every method: each method is a scope of its own.
            scopes[inner.name] = Refs(called={f"{inner.name}.{m}" for m in CONSTRUCTION})
            for item in inner.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    scope = f"{inner.name}.{item.name}"
                    scopes[scope] = _loads(item.body, skip_bodies=False)
                    part.classes[scope] = inner.name
    return part


def scan(
    tree: ast.Module, name: str, *, is_package: bool, previous: ModuleInfo | None = None
) -> ModuleInfo:
    """Read imports, bindings and import-time loads of module ``name`` from ``tree``.

    ``previous`` is the info of an earlier tree of the same module: statements
    both trees share (the same objects, as the quick path leaves them) are not
    scanned again.
    """
    package = package_of(name, is_package=is_package)
    cache = previous.parts if previous is not None else {}
    parts: dict[int, _Part] = {}
    for stmt in tree.body:
        known = cache.get(id(stmt))
        parts[id(stmt)] = (
            known if known is not None and known.stmt is stmt else _scan_part(stmt, package)
        )
    bindings: dict[str, Binding] = {}
    star: list[str] = []
    imports: set[str] = set()
    lazy: set[str] = set()
    scopes: dict[str, Refs] = {}
    classes: dict[str, str] = {}  # method scope -> its class
    toplevel = Refs()
    for part in parts.values():  # in statement order: a later binding wins
        bindings.update(part.bindings)
        star.extend(part.star)
        imports |= part.imports
        lazy |= part.lazy
        toplevel.update(part.toplevel)
        for scope, refs in part.scopes.items():
            if scope in scopes:  # defined twice at the top level: either may run
                merged = Refs()
                merged.update(scopes[scope])
                merged.update(refs)
                refs = merged
            scopes[scope] = refs
        classes.update(part.classes)

    reached = Refs()
    reached.update(toplevel)
    frontier = set(toplevel.called) | {".".join(c[:2]) for c in toplevel.called_chains}
    seen: set[str] = set()
    while frontier:
        local = frontier.pop()
        if local in seen or local not in scopes:
            continue
        seen.add(local)
        refs = scopes[local]
        reached.update(refs)
        frontier |= refs.called
        owner = classes.get(local)
        for chain in refs.called_chains:
            if owner is not None and chain[0] in ("self", "cls", owner) and len(chain) > 1:
                frontier.add(f"{owner}.{chain[1]}")  # self.helper() from a reached method
            elif len(chain) > 1:
                frontier.add(f"{chain[0]}.{chain[1]}")

    return ModuleInfo(
        bindings=bindings,
        star=tuple(star),
        imports=frozenset(imports),
        lazy_imports=frozenset(lazy - imports),
        reached=reached,
        reached_scopes=frozenset(seen),
        toplevel=toplevel,
        parts=parts,
    )
