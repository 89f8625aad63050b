"""The ASGI adapter: Starlette and FastAPI apps under hot reload, as a fresh start serves them.

:class:`AsgiFramework` is the :class:`~hotmod._web.slot.Framework` that
``frameworks.framework_for`` gives an app whose class comes from Starlette
or FastAPI. What it adds to swapping the app:

prepare
    FastAPI derives parameters, bodies and response models from endpoint
    and dependency *signatures* and from Pydantic models, once, when a
    route is made. So a batch that changes what a route was derived from
    rebuilds the app from re-executed modules:

    * an edit that changes the signature or docstring of a function the
      served app calls (endpoint, dependency, a dependency class's
      ``__init__``) re-executes that function's module and the project
      modules holding a router whose routes were made from it, so the
      routes are made again from the new signature (the function keeps its
      identity: the engine would not re-execute them);
    * an edit of a function the app's lifespan runs makes and starts the
      app again;
    * an edit of a Pydantic model class re-executes its module (a model
      cannot be patched in place) and the modules of the models that use
      it (a field of that type, a subclass): their fields are collected
      again, as at start-up;
    * and then the app's module, which builds the new app.
commit (a participant, before the app's)
    The live model classes merged from staged ones are rebuilt on live
    classes (:mod:`hotmod._web.pydantic`); the routers the re-executed
    modules made are pointed at live functions (a later app includes them
    again, and older FastAPI versions copy their routes).
adopt
    The new app is walked and pointed at live functions and classes, and
    FastAPI's model fields get adapters built from the rebuilt models
    (:mod:`hotmod._web.relink`). Its OpenAPI schema is made on first use,
    from the new routes.
start / retire
    The new app's lifespan startup runs before the swap, the old app's
    shutdown after the drain (:mod:`hotmod._web.lifespan`).
"""

from __future__ import annotations

import ast
import functools
import logging
import sys
import types
from collections.abc import Container, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .lifespan import Lifespans
from .pydantic import LiveModels, dependents, future_namespaces, is_model, staged_models
from .relink import Relinker, attributes, cell_values, framework_code, from_framework

if TYPE_CHECKING:
    from .._engine.batch import Batch
    from .._engine.participants import Participant
    from .._engine.undo import UndoLog
    from .slot import AppSlot

logger = logging.getLogger(__name__)


class AsgiFramework:
    """Starlette and FastAPI (see the module docstring)."""

    name = "asgi"

    def __init__(self) -> None:
        self.lifespans: Lifespans | None = None
        # id(batch) -> the models it rebuilt, and the walk that relinked its objects
        self._models: dict[int, LiveModels] = {}
        self._relinkers: dict[int, Relinker] = {}

    def participants(self, slot: AppSlot) -> list[Participant]:
        """What serving ``slot`` needs besides the app's participant (called by ``attach``)."""
        self.lifespans = Lifespans(slot)
        slot.lifespan = self.lifespans.serve
        return [_LiveObjects(self)]

    def prepare(self, batch: Batch, slot: AppSlot) -> None:
        reasons = rebuild_reasons(batch, slot.app)
        for module, reason in sorted(reasons.items()):
            logger.debug("hotmod: re-executing %s: %s", module, reason)
            batch.require(module, reason)
        if reasons:
            batch.require(slot.target.module, f"builds the served app ({slot.target})")

    def adopt(self, batch: Batch, app: Any) -> None:
        models = self._models.get(id(batch)) or LiveModels(batch.live, batch.undo)
        relinker = self._relinkers.get(id(batch)) or Relinker(batch.live, batch.undo)
        relinker.relink(app)
        relinker.rebuild_fields(models, future_namespaces(batch))

    def start(self, app: Any) -> None:
        if self.lifespans is not None:
            self.lifespans.start(app)

    def retire(self, app: Any) -> None:
        if self.lifespans is not None:
            self.lifespans.retire(app)


class _LiveObjects:
    """At commit, before the app's participant: what re-executed modules made, made live.

    The live Pydantic models merged from staged ones are rebuilt; routers (and
    other framework objects) the staged modules hold are pointed at live
    functions and classes: the core rebinds them as they are, and a later app
    includes them again (an old FastAPI copies their routes).
    """

    name = "asgi-live-objects"
    order = 150  # after the core's, before the app's (200), which uses the rebuilt models

    def __init__(self, framework: AsgiFramework) -> None:
        self.framework = framework

    def prepare(self, batch: Batch) -> None:
        pass

    def stage(self, batch: Batch) -> None:
        pass

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        models = LiveModels(batch.live, undo)
        for staged, live in staged_models(batch):
            models.add(live, force=live is not staged)
        namespaces = future_namespaces(batch)
        models.rebuild(namespaces)
        if models.rebuilt:
            # Models that embed a rebuilt one but did not run again (prepare asks
            # for them; an importer re-executed only while staging is found here).
            ran = {*batch.staged.modules, *batch.staged.new}
            others = [
                module for name in batch.graph.records
                if name not in ran and (module := sys.modules.get(name)) is not None
            ]
            for classes in dependents(set(models.rebuilt), others).values():
                for cls in classes:
                    models.add(cls, force=True)
            models.rebuild(namespaces)
        relinker = Relinker(batch.live, undo)
        for module in {**batch.staged.new, **batch.staged.modules}.values():
            for value in list(module.__dict__.values()):
                if not isinstance(value, type) and from_framework(type(value)):
                    relinker.relink(value)
        relinker.rebuild_fields(models, namespaces)
        self.framework._models[id(batch)] = models
        self.framework._relinkers[id(batch)] = relinker

    def committed(self, batch: Batch) -> None:
        self.abandon(batch)

    def abandon(self, batch: Batch) -> None:
        self.framework._models.pop(id(batch), None)
        self.framework._relinkers.pop(id(batch), None)


# -- what a batch must re-execute ----------------------------------------------------------
def rebuild_reasons(batch: Batch, app: Any) -> dict[str, str]:
    """Modules to re-execute so that what the framework derived is derived again (module -> why).

    Reads the plan, the syntax trees and live objects; runs no user code.
    """
    plan, graph = batch.plan, batch.graph
    reasons: dict[str, str] = {}
    reexec = set(plan.reexec)
    for module, reshaped in plan.candidates.items():
        live = sys.modules.get(module)
        if live is not None and any(is_model(live.__dict__.get(n)) for n in reshaped):
            reexec.add(module)
            reasons[module] = "a Pydantic model changed (models are rebuilt, not patched)"
    affected = {
        value for name in reexec if (live := sys.modules.get(name)) is not None
        for value in list(live.__dict__.values())
        if is_model(value) and value.__module__ == name
    }
    if affected:
        others = [
            other for name in graph.records
            if name not in reexec and (other := sys.modules.get(name)) is not None
        ]
        for name, classes in dependents(affected, others).items():
            used = ", ".join(sorted(c.__qualname__ for c in classes))
            reasons[name] = f"its models ({used}) use a model that is rebuilt"
    starts = lifespan_functions(app, graph.records)
    changed = function_changes(batch, bodies=starts)
    if not changed:
        return reasons
    # Walked only when a signature changed: a body edit stays cheap (G5).
    called = app_callables(app) if any(any(f.values()) for f in changed.values()) else set()
    resigned: set[tuple[str, str]] = set()
    for module, functions in sorted(changed.items()):
        for qualname, signature in sorted(functions.items()):
            if signature and (module, qualname) in called:
                reasons[module] = (
                    f"the signature of {qualname} changed: the app derives its routes from it"
                )
                resigned.add((module, qualname))
            elif qualname in starts.get(module, ()):
                reasons.setdefault(module, f"{qualname} changed: the new app starts with it")
    if resigned:
        for name in router_modules(graph.records, resigned):
            reasons.setdefault(name, "holds routes made from a signature that changed")
    return reasons


def function_changes(
    batch: Batch, *, bodies: Mapping[str, set[str]]
) -> dict[str, dict[str, bool]]:
    """Functions changed by the batch's edits: module -> qualname -> whether what
    FastAPI reads of it (parameters, annotations, defaults, return annotation,
    docstring) changed. Any other change counts only for the functions named
    in ``bodies`` (module -> qualnames): a body is compared only where it
    matters. Statements the edit left alone are skipped.

    Modules that re-execute count too: their functions keep their identity,
    so routers made elsewhere from them are not made again by themselves.
    """
    found: dict[str, dict[str, bool]] = {}
    for module in batch.plan.changes:
        change = batch.plan.changes.get(module)
        record = batch.graph.records.get(module)
        if change is None or change.tree is None or record is None:
            continue
        old = dict(_functions(record.tree))
        watched = bodies.get(module, set())
        for qualname, node in _functions(change.tree):
            before = old.get(qualname)
            if before is None or before is node:
                continue
            if _signature(before) != _signature(node):
                found.setdefault(module, {})[qualname] = True
            elif qualname in watched and ast.dump(before) != ast.dump(node):
                found.setdefault(module, {})[qualname] = False
    return found


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualname, node) for top-level functions and methods of top-level classes."""
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
        for item in members:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + item.name, item


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    parts = (node.args, node.returns, ast.get_docstring(node))
    return repr([ast.dump(p) if isinstance(p, ast.AST) else p for p in parts])


def app_callables(app: Any) -> set[tuple[str, str]]:
    """The functions a served app (or a router) calls: endpoints, dependencies, middleware...

    As (module, qualname): by name, not identity, because a router made by
    staged code holds the staged functions of its batch, which stand for the
    live ones of the same name. A read-only walk over the app's framework
    objects; a class found there contributes its ``__init__`` and ``__call__``
    (FastAPI reads their signatures).
    """
    found: set[tuple[str, str]] = set()
    seen: set[int] = set()
    stack: list[Any] = [app]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kind = type(obj)
        if kind is types.FunctionType:
            found.add((obj.__module__, obj.__qualname__))
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is not None:
                stack.append(wrapped)
            if framework_code(obj):
                stack.extend(cell_values(obj))
        elif kind is types.MethodType:
            stack.append(obj.__func__)
        elif kind is functools.partial:
            stack.extend([obj.func, *obj.args, *obj.keywords.values()])
        elif kind in (list, tuple, set, frozenset):
            stack.extend(obj)
        elif kind is dict:
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, type):
            stack.extend(v for k, v in vars(obj).items() if k in ("__init__", "__call__"))
        elif from_framework(kind):
            stack.extend(v for _, v in attributes(obj))
        elif callable(obj) and not isinstance(obj, types.ModuleType):
            stack.append(kind)  # a callable instance used as a dependency
    return found


def lifespan_functions(app: Any, project: Container[str]) -> dict[str, set[str]]:
    """The project functions the app's lifespan runs (module -> qualnames).

    By name, not identity: the app may hold the staged function of an earlier
    batch, which stands for the live one of the same name.
    """
    stack: list[Any] = []
    for owner in (app, getattr(app, "router", None)):
        for name in ("lifespan_context", "on_startup", "on_shutdown"):
            stack.append(getattr(owner, name, None))
    seen: set[int] = set()
    found: dict[str, set[str]] = {}
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if type(obj) is types.FunctionType:
            module = obj.__globals__.get("__name__")
            if isinstance(module, str) and module in project:
                found.setdefault(module, set()).add(obj.__qualname__)
            stack.extend(cell_values(obj))
            stack.append(obj.__dict__.get("__wrapped__"))
        elif type(obj) in (list, tuple):
            stack.extend(obj)
        elif type(obj) is functools.partial:
            stack.extend([obj.func, *obj.args])
    return found


def router_modules(modules: Iterable[str], functions: set[tuple[str, str]]) -> list[str]:
    """Project modules holding a router (or an app) with routes made from ``functions``."""
    found = []
    for name in modules:
        module = sys.modules.get(name)
        if module is None:
            continue
        for value in list(module.__dict__.values()):
            if isinstance(value, type) or not from_framework(type(value)):
                continue
            if hasattr(value, "routes") and app_callables(value) & functions:
                found.append(name)
                break
    return found
