"""Point a Starlette/FastAPI app built while staging at the live program.

An app rebuilt by a re-executed module holds what the staged code gave it:
staged endpoint and dependency functions, staged classes (middleware,
exception types, models), framework closures around them (Starlette's
``request_response`` keeps the endpoint in a cell, sync ones inside a
``functools.partial``). ``Batch.live`` remaps containers but does not walk
framework objects, so :class:`Relinker` does, at commit: it visits the app
and every object whose class comes from Starlette or FastAPI (attributes,
slots, containers, dict keys, closure cells of their functions, partials,
bound methods) and replaces staged functions and classes by the live ones
in place. Afterwards a later body edit of an endpoint reaches the served app.

FastAPI's ``ModelField`` objects (parameters, bodies, response models) hold
a Pydantic ``TypeAdapter`` built while staging, from staged models or from
live models whose schema was about to change: they are collected and, once
the live models are rebuilt (:mod:`hotmod._web.pydantic`), rebuilt too.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .pydantic import LiveModels, live_type

if TYPE_CHECKING:
    from .._engine.undo import UndoLog

Live = Callable[[Any], Any]
FRAMEWORK_ROOTS = frozenset({"starlette", "fastapi"})
_MISSING: Any = object()
# Container elements walked per app; beyond it values are left as made (large data).
_BUDGET = 200_000
# Attributes never walked: caches rebuilt on demand; and the lifespan, which the
# new app runs at commit, before the live modules are rebound: it keeps the
# staged functions, which read the new version's globals.
_SKIP = frozenset({
    "__weakref__", "middleware_stack", "openapi_schema", "lifespan_context", "on_startup",
    "on_shutdown",
})


def from_framework(cls: type) -> bool:
    """Whether ``cls`` (or a class it derives from) comes from Starlette or FastAPI."""
    return any(c.__module__.partition(".")[0] in FRAMEWORK_ROOTS for c in cls.__mro__[:-1])


def is_model_field(obj: object) -> bool:
    """FastAPI's ``ModelField`` (a dataclass around a Pydantic ``TypeAdapter``)."""
    cls = type(obj)
    return cls.__name__ == "ModelField" and cls.__module__.startswith("fastapi.")


def attributes(obj: object) -> Iterator[tuple[str, Any]]:
    """An object's attributes: its ``__dict__`` and its slots."""
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        yield from list(state.items())
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            value = getattr(obj, name, _MISSING)
            if value is not _MISSING:
                yield name, value


class Relinker:
    """One walk over an app (see the module docstring); attributes are set through ``undo``."""

    def __init__(self, live: Live, undo: UndoLog) -> None:
        self.live = live
        self.undo = undo
        self.fields: list[Any] = []  # FastAPI ModelFields found
        self._done: dict[int, Any] = {}
        self._budget = _BUDGET
        self._rebuilt = 0  # fields before this index had their adapters rebuilt
        self._keep: list[object] = []  # ids in _done stay unique during the walk

    def relink(self, obj: Any) -> Any:
        """``obj`` pointed at the live program (updated in place where it can be)."""
        key = id(obj)
        if key in self._done:
            return self._done[key]
        self._done[key] = obj  # provisional: cycles end here
        self._keep.append(obj)
        result = self._relink(obj)
        self._done[key] = result
        return result

    def _relink(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is types.FunctionType:
            mapped = self.live(obj)
            if type(mapped) is types.FunctionType and framework_code(mapped):
                self._cells(mapped)
            return mapped
        if kind is types.MethodType:
            func, owner = self.relink(obj.__func__), self.relink(obj.__self__)
            if func is obj.__func__ and owner is obj.__self__:
                return obj
            return types.MethodType(func, owner)
        if kind is functools.partial:
            func = self.relink(obj.func)
            args = tuple(self.relink(a) for a in obj.args)
            keywords = {k: self.relink(v) for k, v in obj.keywords.items()}
            same_args = all(a is b for a, b in zip(args, obj.args, strict=True))
            if func is obj.func and same_args and all(
                keywords[k] is v for k, v in obj.keywords.items()
            ):
                return obj
            return functools.partial(func, *args, **keywords)
        if kind in (list, dict, tuple, set, frozenset):
            return self._container(obj)
        if isinstance(obj, type):
            return self.live(obj)
        if isinstance(obj, types.ModuleType):
            return obj
        if from_framework(kind):
            if is_model_field(obj):
                self.fields.append(obj)
                return obj
            for name, value in attributes(obj):
                if name in _SKIP:
                    continue
                new = self.relink(value)
                if new is not value:
                    self.undo.setattr(obj, name, new)
            return obj
        return self.live(obj)  # an instance of a class that keeps its live identity

    def _container(self, obj: Any) -> Any:
        self._budget -= len(obj)
        if self._budget < 0:
            return obj
        if type(obj) is list:
            for i, item in enumerate(obj):
                new = self.relink(item)
                if new is not item:
                    obj[i] = new
            return obj
        if type(obj) is dict:
            items = [(self.relink(k), self.relink(v)) for k, v in obj.items()]
            if any(k is not old for (k, _), old in zip(items, obj, strict=True)):
                obj.clear()  # a key was a staged class or function (exception handlers)
                obj.update(items)
            else:
                for key, value in items:
                    if obj[key] is not value:
                        obj[key] = value
            return obj
        items = [self.relink(item) for item in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return type(obj)(items)

    def _cells(self, func: types.FunctionType) -> None:
        """A framework closure (``request_response``'s handler): its cells, relinked."""
        for cell in func.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            new = self.relink(value)
            if new is not value:
                cell.cell_contents = new

    def rebuild_fields(self, models: LiveModels, namespaces: dict[str, dict[str, Any]]) -> None:
        """Point the ModelFields found since the last call at live classes and rebuild
        their adapters.

        Models they name that were made while staging (FastAPI's body models)
        are rebuilt first. Every adapter is rebuilt when a model was; else
        only those whose annotation named a staged class.
        """
        fields, self._rebuilt = self.fields[self._rebuilt:], len(self.fields)
        changed = []
        for field in fields:
            info = getattr(field, "field_info", None)
            annotation = getattr(info, "annotation", None)
            new = live_type(annotation, self.live, models.add)
            if new is not annotation:
                self.undo.setattr(info, "annotation", new)
                changed.append(field)
        models.rebuild(namespaces)
        for field in fields if models.rebuilt else changed:
            self._rebuild_adapter(field)

    def _rebuild_adapter(self, field: Any) -> None:
        post_init = getattr(field, "__post_init__", None)
        state = getattr(field, "__dict__", None)
        if post_init is None or not isinstance(state, dict):
            return
        before = dict(state)
        self.undo.on_rollback(functools.partial(_restore_dict, state, before))
        post_init()  # FastAPI's ModelField makes its TypeAdapter here


def _restore_dict(state: dict[str, Any], before: dict[str, Any]) -> None:
    state.clear()
    state.update(before)


def framework_code(func: types.FunctionType) -> bool:
    """Whether ``func`` is Starlette's or FastAPI's own code (a closure it made)."""
    module = func.__globals__.get("__name__")
    return isinstance(module, str) and module.partition(".")[0] in FRAMEWORK_ROOTS


def cell_values(func: types.FunctionType) -> list[Any]:
    """What a function's closure cells hold (empty cells left out)."""
    values = []
    for cell in func.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:
            continue
    return values
