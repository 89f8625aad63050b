"""Class-body patches: a plain class whose body changed shape, patched in place.

When methods or class attributes are added or removed (and the class statement
itself is unchanged), the new class body runs alone against the live module
globals; :func:`apply_class_patch` then sets and deletes attributes on the
live class, through the batch's undo log. Methods whose decorators changed are
rebuilt; nested classes merge into the live ones, recursively.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from .undo import UndoLog

# Class attributes that are bookkeeping of the class object, not of its body.
_CLASS_OWN = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__"})
# type.__new__ wraps these implicitly; a body run outside type() must do the same.
_IMPLICIT_CLASSMETHODS = frozenset({"__init_subclass__", "__class_getitem__"})
_IMPLICIT_STATICMETHODS = frozenset({"__new__"})


@dataclass
class ClassPatch:
    """A plain class whose body changed: its new body ran into ``namespace``.

    ``redecorated`` are methods whose decorators changed: they are rebuilt
    through the new decorators even though a function stays a function.
    ``nested`` are nested classes merged into the live ones (identity kept).
    """

    cls: type
    namespace: dict[str, Any]
    redecorated: frozenset[str] = frozenset()
    nested: dict[str, ClassPatch] = field(default_factory=dict)

    def changed(self) -> set[str]:
        """Attributes added, removed or no longer equal (existing methods excluded)."""
        live = self.cls.__dict__
        names = (set(self.namespace) | set(live)) - _CLASS_OWN - {"__classcell__"}
        return {
            n for n in names - self.nested.keys()
            if n in self.redecorated
            or not _same_slot(live.get(n, _MISSING), self.namespace.get(n, _MISSING))
        }

    def all_changed(self) -> set[str]:
        """Qualified names (``C.m``, ``C.Inner.m``) of what changed, nested classes included."""
        found = {f"{self.cls.__name__}.{n}" for n in self.changed()}
        for patch in self.nested.values():
            found |= {f"{self.cls.__name__}.{n}" for n in patch.all_changed()}
        return found

    def values_changed(self) -> bool:
        """Whether a changed attribute is a value (not a method): class users see it."""
        if any(not callable(self.namespace.get(n)) for n in self.changed()):
            return True
        return any(p.values_changed() for p in self.nested.values())


_MISSING: Any = object()


def _decorators(node: ast.ClassDef) -> dict[str, list[str]]:
    return {
        item.name: [ast.dump(d) for d in item.decorator_list]
        for item in node.body
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _nested_defs(node: ast.ClassDef | None) -> dict[str, ast.ClassDef]:
    if node is None:
        return {}
    return {item.name: item for item in node.body if isinstance(item, ast.ClassDef)}


def run_class_body(
    cls: type,
    body: types.CodeType,
    globals_: dict[str, Any],
    *,
    old_node: ast.ClassDef | None = None,
    new_node: ast.ClassDef | None = None,
) -> ClassPatch:
    """Run a top-level class's new body against the live module globals.

    Functions made this way read the live globals; nothing live changes yet.
    """
    namespace: dict[str, Any] = {}
    exec(body, globals_, namespace)
    namespace.setdefault("__doc__", None)
    for name in _IMPLICIT_CLASSMETHODS & namespace.keys():
        if isinstance(namespace[name], types.FunctionType):
            namespace[name] = classmethod(namespace[name])
    for name in _IMPLICIT_STATICMETHODS & namespace.keys():
        if isinstance(namespace[name], types.FunctionType):
            namespace[name] = staticmethod(namespace[name])
    return _class_patch(cls, namespace, old_node, new_node)


def _class_patch(
    cls: type,
    namespace: dict[str, Any],
    old_node: ast.ClassDef | None,
    new_node: ast.ClassDef | None,
) -> ClassPatch:
    redecorated: set[str] = set()
    if old_node is not None and new_node is not None:
        before, after = _decorators(old_node), _decorators(new_node)
        redecorated = {n for n in before.keys() & after.keys() if before[n] != after[n]}
    patch = ClassPatch(cls, namespace, frozenset(redecorated))
    old_defs, new_defs = _nested_defs(old_node), _nested_defs(new_node)
    made: dict[type, type] = {}  # new nested class -> the live one it merges into
    for name, value in namespace.items():
        live = cls.__dict__.get(name)
        if not (type(value) is type and type(live) is type and value is not live):
            continue
        assert isinstance(value, type)
        assert isinstance(live, type)
        if value.__qualname__ != live.__qualname__:
            continue  # an alias of another class, not this nested class statement
        bases = tuple(made.get(b, b) for b in value.__bases__)
        if bases != live.__bases__ or value.__dict__.get("__slots__") != live.__dict__.get(
            "__slots__"
        ):
            continue  # a new layout: the new class replaces the old one
        made[value] = live
        inner = {k: v for k, v in value.__dict__.items() if k not in ("__dict__", "__weakref__")}
        patch.nested[name] = _class_patch(live, inner, old_defs.get(name), new_defs.get(name))
    return patch


def apply_class_patch(patch: ClassPatch, undo: UndoLog) -> None:
    """Set and delete attributes of the live class to match its new body.

    Methods present before and after are left to the body patches (they keep
    their identity); new ones get the live class in their ``__class__`` cell.
    Nested classes are merged the same way, recursively.
    """
    cls, namespace = patch.cls, patch.namespace
    cell = namespace.get("__classcell__")
    if isinstance(cell, types.CellType):
        _compat.set_cell(cell, cls)  # zero-argument super() in the new methods
    for value in namespace.values():
        for func in _descriptor_functions(value):
            class_cell = _compat.class_cell(func)
            if class_cell is not None and class_cell is not cell:
                _compat.set_cell(class_cell, cls)  # a nested class's new methods
    for name in patch.changed():
        value = namespace.get(name, _MISSING)
        if value is _MISSING:
            undo.delattr(cls, name)
            continue
        undo.setattr(cls, name, value)
        set_name = getattr(type(value), "__set_name__", None)
        if set_name is not None:
            set_name(value, cls, name)  # cached_property and other descriptors
    for nested in patch.nested.values():
        apply_class_patch(nested, undo)


def _descriptor_functions(value: object) -> list[types.FunctionType]:
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if type(f) is types.FunctionType]
    return [value] if type(value) is types.FunctionType else []


def _same_slot(old: Any, new: Any) -> bool:
    """Whether a class attribute needs no setattr: equal, or a method patched in place."""
    if old is _MISSING or new is _MISSING:
        return old is new
    if isinstance(old, types.FunctionType) and isinstance(new, types.FunctionType):
        return True  # the body patch swaps its code
    if isinstance(old, staticmethod | classmethod) and type(old) is type(new):
        return isinstance(old.__func__, types.FunctionType) and isinstance(
            new.__func__, types.FunctionType
        )
    if isinstance(old, property) and type(old) is type(new):
        return all(
            (getattr(old, p) is None) == (getattr(new, p) is None)
            for p in ("fget", "fset", "fdel")
        )
    if type(old) is not type(new) or isinstance(old, types.FunctionType | type):
        return False
    try:
        return bool(old == new)
    except Exception:  # objects that cannot be compared: treat as changed
        return False


class FieldDefault:
    """Gives an instance made before a dataclass field existed that field's default.

    A non-data descriptor: instances made by the new ``__init__`` have the
    field in their ``__dict__``, which wins; an old instance gets
    ``default_factory()`` stored on first access.
    """

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self.name = name
        self.factory = factory

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.factory()
        obj.__dict__[self.name] = value
        return value
