"""The Flask adapter: a rebuilt app that serves as a fresh start would.

Flask forbids registering on an app that has served a request ("setup method
can no longer be called") and on a blueprint that was registered once, and
re-running a registration on the same app overwrites endpoints. So hotmod never
registers anything on the live app: a batch that re-executes any module
rebuilds the app, from the staged modules, exactly as start-up built it (the
:class:`~hotmod._web.slot.TargetParticipant` re-executes the app's module),
and the commit swaps the new app in under the gate. What this adapter adds:

``prepare``
    A module that re-executes and registers on a Flask app or blueprint that
    another module defines (``views.py: from app import app; @app.route``)
    would register on the *live* object while staging. The module that owns
    that object is re-executed too (``batch.require``): a new app or
    blueprint is made, and the stager then re-executes every importer that
    registers on it, onto the new one. Which objects are Flask's is decided
    by their classes' module names, never ``isinstance`` on user objects;
    which module registers on which is read from the modules' import-time
    code (:class:`~hotmod._engine.scan.ModuleInfo`): any use of an app, a
    method call on a blueprint (passing a blueprint to ``register_blueprint``
    needs nothing: registering a kept blueprint on the new app replays its
    deferred setup functions).
``adopt``
    The new app was built while staging, so it holds *staged* functions:
    their later body edits would not reach it. Every registry the app and
    its blueprints keep (view functions, error handlers, request hooks,
    context processors, URL value processors and defaults, Jinja filters,
    globals and tests, CLI command callbacks, blueprints' deferred setup
    functions, URL converters) is pointed at the live functions and classes
    with :meth:`~hotmod._engine.batch.Batch.live`. Its Jinja environment
    reads the committed template texts, never the disk (see
    :mod:`hotmod._web.templatesources`): templates change through
    transactions only (:mod:`hotmod._web.templates`).
"""

from __future__ import annotations

import ast
import logging
import sys
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import _compat
from .slot import adopt_graph
from .templates import TemplateParticipant
from .templatesources import TemplateSources, serve_pinned

if TYPE_CHECKING:
    from .._engine.batch import Batch
    from .._engine.participants import Participant
    from .._engine.scan import ModuleInfo
    from .slot import AppSlot

logger = logging.getLogger(__name__)


def flask_kind(obj: object) -> str | None:
    """``"app"`` for a Flask app, ``"blueprint"`` for a blueprint, else None.

    Read from the classes' module names: nothing is imported, no user
    object's ``__instancecheck__`` runs.
    """
    for cls in type(obj).__mro__:
        if cls.__module__.partition(".")[0] != "flask":
            continue
        if cls.__name__ in ("App", "Flask"):
            return "app"
        if cls.__name__ == "Blueprint":
            return "blueprint"
    return None


class FlaskFramework:
    """Flask's part in rebuilding and swapping the served app (see the module docstring)."""

    name = "flask"

    def __init__(self, app: Any) -> None:
        self.sources = TemplateSources()  # shared by every app the slot serves
        serve_pinned(app, self.sources)

    def participants(self, slot: AppSlot) -> list[Participant]:
        """Templates take part in the transaction (claimed, compiled, made live)."""
        return [TemplateParticipant(slot, self.sources)]

    # -- prepare ------------------------------------------------------------------------
    def prepare(self, batch: Batch, slot: AppSlot) -> None:
        graph = batch.graph
        running = set(batch.plan.reexec)
        if running:
            owner = _owner(slot.app, None, graph.records)
            if owner is not None:
                batch.require(owner, f"builds the served Flask app ({slot.target})")
        else:
            running = _reruns(batch)
            if not running:
                return  # body edits only: the live app keeps running, patched
        required = set(batch.plan.reexec)
        may_run = _closure(batch, running | set(batch.plan.changes))
        examined: set[str] = set()
        while True:
            found: list[tuple[str, str, str]] = []
            for module in sorted(may_run - examined):
                examined.add(module)
                for owner, what in _registers_on(module, _info(batch, module), graph.records):
                    if owner not in required and owner != module:
                        found.append((owner, module, what))
            if not found:
                return
            for owner, module, what in found:
                if owner in required:
                    continue
                batch.require(owner, f"{module} registers on its Flask {what}")
                required.add(owner)
            may_run |= _closure(batch, required)

    # -- commit -------------------------------------------------------------------------
    def adopt(self, batch: Batch, app: Any) -> None:
        """Point every registry of the staged-built ``app`` at the live functions.

        Flask's own registries are named (the generic walk, ``adopt_graph``, is
        budgeted and might not reach them in a large app), then the rest of the
        app's object graph (extensions' state) follows.
        """
        _adopt_state(batch, app)  # view_functions, error handlers, hooks, processors
        for view in app.view_functions.values():
            _adopt_class_view(batch, view)
        env = app.__dict__.get("jinja_env")  # made on first use (a template filter)
        if env is not None:
            for registry in (env.filters, env.globals, env.tests):
                batch.live(registry)
        serve_pinned(app, self.sources, batch.undo)
        _adopt_commands(batch, app.cli)
        for blueprint in app.blueprints.values():
            _adopt_state(batch, blueprint)  # deferred setup functions, its own registries
            _adopt_commands(batch, blueprint.cli)
        url_map = app.url_map
        batch.live(url_map.converters)
        for rule in url_map.iter_rules():
            converters = getattr(rule, "_converters", None)  # werkzeug: converter instances
            if type(converters) is dict:
                batch.live(converters)
        adopt_graph(batch, app)

    def start(self, app: Any) -> None:
        pass

    def retire(self, app: Any) -> None:
        pass


def _adopt_state(batch: Batch, obj: object) -> None:
    """Staged functions in ``obj``'s attributes (and containers there) become live."""
    state = getattr(obj, "__dict__", None)
    if type(state) is dict:
        batch.live(state)


def _adopt_class_view(batch: Batch, view: Any) -> None:
    """A ``View.as_view`` function: its class, and the instance it may keep, become live."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return
    view.view_class = batch.live(view_class)
    for cell in getattr(view, "__closure__", None) or ():
        filled, value = _compat.cell_value(cell)
        if filled and type(value) is not types.FunctionType:
            # The class (remapped) or the instance kept when init_every_request
            # is False (its class set to the live one, in place).
            mapped = batch.live(value)
            if mapped is not value:
                _compat.set_cell(cell, mapped)


def _adopt_commands(batch: Batch, group: Any) -> None:
    """CLI commands' callbacks (and nested groups') become the live functions."""
    for command in _commands(group):
        callback = getattr(command, "callback", None)
        if callback is not None:
            command.callback = batch.live(callback)


def _commands(group: Any, _seen: set[int] | None = None) -> Iterator[Any]:
    seen = _seen if _seen is not None else set()
    for command in list(getattr(group, "commands", {}).values()):
        if id(command) in seen:
            continue
        seen.add(id(command))
        yield command
        yield from _commands(command, seen)


# -- which modules register on which Flask objects ------------------------------------------


def _info(batch: Batch, module: str) -> ModuleInfo | None:
    change = batch.plan.changes.get(module)
    if change is not None:
        return change.info if change.tree is not None else None
    record = batch.graph.records.get(module)
    return record.info if record is not None else None


def _reruns(batch: Batch) -> set[str]:
    """Modules a body-only batch will re-execute while staging, that register on Flask
    objects of other modules (which must then be rebuilt first).

    The stager re-executes a module whose import-time code calls a function whose
    body changed (``register()`` at its top level), and an importer that calls one
    (``add_routes(app)``); it decides so after ``prepare``. The same question is
    asked here of the modules that register on another module's Flask object only.
    """
    graph = batch.graph
    found: set[str] = set()
    for module in batch.plan.candidates:
        change = batch.plan.changes.get(module)
        record = graph.records.get(module)
        if change is None or change.tree is None or record is None:
            continue
        registers = any(True for _ in _registers_on(module, change.info, graph.records))
        importers = {
            i for i in graph.importers(module)
            if any(True for _ in _registers_on(i, _info(batch, i), graph.records))
        }
        if not registers and not importers:
            continue
        changed = _changed_tops(record.tree if change.statements is None else None, change)
        if registers and changed & {s.split(".")[0] for s in change.info.reached_scopes}:
            found.add(module)
        for importer in importers:
            info = _info(batch, importer)
            if info is not None and info.uses(module, set(), changed):
                found.add(importer)
    return found


def _changed_tops(old: ast.Module | None, change: Any) -> set[str]:
    """Top-level functions and classes whose statements differ in ``change``."""
    if old is None:
        return set(change.statements)  # the quick path re-parsed exactly those
    before = {s.name: ast.dump(s) for s in old.body if isinstance(s, _DEFS)}
    return {
        s.name for s in change.tree.body
        if isinstance(s, _DEFS) and before.get(s.name) != ast.dump(s)
    }


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _closure(batch: Batch, modules: set[str]) -> set[str]:
    """``modules`` and every project module importing them: what may re-execute."""
    found = {m for m in modules if m in batch.graph.records}
    for module in list(found):
        found |= batch.graph.importers_closure(module)
    return found


def _registers_on(
    module: str, info: ModuleInfo | None, records: dict[str, Any]
) -> Iterator[tuple[str, str]]:
    """(owner module, description) of Flask objects ``module`` registers on at import time.

    An app counts when import-time code uses it at all (``@app.route``,
    ``ext.init_app(app)``, ``app.config[...]``); a blueprint when a method of
    it is called (``@bp.route``, ``bp.register_blueprint``), not when it is
    merely passed on (``app.register_blueprint(bp)``).
    """
    if info is None:
        return
    reached = info.reached
    chains = [(chain, True) for chain in reached.called_chains]
    chains += [(chain, False) for chain in reached.chains]
    chains += [((name,), False) for name in reached.names]
    for chain, called in chains:
        binding = info.bindings.get(chain[0])
        if binding is None:
            continue  # a name of its own: re-executed with it
        holder = sys.modules.get(binding.module)
        if holder is None:
            continue
        value: Any = holder if binding.attr is None else getattr(holder, binding.attr, None)
        for position, part in enumerate((*chain[1:], None)):
            kind = flask_kind(value)
            if kind is not None:
                rest = len(chain) - 1 - position  # attributes after the object
                if kind == "app" or (called and rest >= 1):
                    owner = _owner(value, holder.__name__, records)
                    if owner is not None and owner != module:
                        yield owner, f"{kind} {getattr(value, 'name', '?')!r}"
                break
            if not isinstance(value, types.ModuleType) or part is None:
                break
            holder = value
            value = getattr(value, part, None)


def _owner(obj: Any, holder: str | None, records: dict[str, Any]) -> str | None:
    """The project module that made ``obj`` (its ``import_name``, if it holds it)."""
    name = getattr(obj, "import_name", None)
    if isinstance(name, str) and name in records:
        module = sys.modules.get(name)
        if module is not None and any(v is obj for v in vars(module).values()):
            return name
    return holder if holder in records else None
