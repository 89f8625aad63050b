"""Body patches: new code swapped into live functions, no module code run.

For a module whose edit touched only function bodies (and signatures),
:func:`body_patches` matches each new code object to the live functions
running the old one; :func:`apply_body_patch` swaps ``__code__`` (and new
defaults and annotations), registering the undo with the batch's
:class:`~hotmod._commit.Transaction`. Functions keep their identity, so
aliases, callbacks and instances see the new code at once.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import _compat
from .undo import Transaction

logger = logging.getLogger(__name__)

CodeKey = tuple[str, int]  # (co_qualname, occurrence)

# Objects that can hold a module's functions: walked to find them all.
_HOLDERS = (
    types.FunctionType, type, staticmethod, classmethod, property, functools.partial,
    functools.cached_property,
)


def code_index(code: types.CodeType) -> tuple[dict[CodeKey, types.CodeType], dict[int, CodeKey]]:
    """Nested code objects of a module by (qualname, occurrence), and keys by ``id``."""
    by_key: dict[CodeKey, types.CodeType] = {}
    by_id: dict[int, CodeKey] = {}
    seen: dict[str, int] = {}
    for nested in _compat.iter_code_tree(code):
        if nested is code:
            continue
        occurrence = seen.get(nested.co_qualname, 0)
        seen[nested.co_qualname] = occurrence + 1
        key = (nested.co_qualname, occurrence)
        by_key[key] = nested
        by_id[id(nested)] = key
    return by_key, by_id


def _children(obj: object) -> Iterator[object]:
    """Objects reachable from a function, descriptor or class that may hold functions."""
    if isinstance(obj, types.FunctionType):
        wrapped = obj.__dict__.get("__wrapped__")
        if wrapped is not None:
            yield wrapped
        for cell in obj.__closure__ or ():
            filled, value = _compat.cell_value(cell)
            if filled and isinstance(value, types.FunctionType | type):
                yield value
    elif isinstance(obj, staticmethod | classmethod):
        yield obj.__func__
    elif isinstance(obj, property):
        yield from (f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
    elif isinstance(obj, functools.partial | functools.cached_property):
        yield obj.func
    elif isinstance(obj, type):
        yield from obj.__dict__.values()
    else:
        wrapped = getattr(obj, "__wrapped__", None) if callable(obj) else None
        if wrapped is not None:  # lru_cache and other C wrappers
            yield wrapped


def own_functions(
    namespace: dict[str, Any], module: str
) -> Iterator[tuple[str, types.FunctionType, object | None]]:
    """Every function of this module reachable from its namespace.

    Yields ``(top-level name, function, cache)`` where ``cache`` is an
    ``lru_cache``-style wrapper in front of the function (to clear), if any.
    Only functions whose globals are ``namespace`` count: an imported function
    belongs to its own module.
    """
    seen: set[int] = set()
    for top, value in list(namespace.items()):
        stack: list[tuple[object, object | None]] = [(value, None)]
        while stack:
            obj, cache = stack.pop()
            if id(obj) in seen:
                continue
            if isinstance(obj, type) and obj.__module__ != module:
                continue
            if not (isinstance(obj, _HOLDERS) or hasattr(obj, "cache_clear")):
                continue
            seen.add(id(obj))
            if isinstance(obj, types.FunctionType) and obj.__globals__ is namespace:
                yield top, obj, cache
            next_cache = obj if hasattr(obj, "cache_clear") else cache
            stack.extend((child, next_cache) for child in _children(obj))


@dataclass(frozen=True)
class SignatureValues:
    """Evaluated default values and annotations of a function's new signature."""

    defaults: tuple[Any, ...] | None
    kwdefaults: dict[str, Any] | None
    annotations: dict[str, Any]


@dataclass
class BodyPatch:
    """Swap one live function's code (and signature values, if they changed)."""

    func: types.FunctionType
    code: types.CodeType
    top: str  # the top-level name it hangs from
    cache: object | None
    signature: SignatureValues | None = None


SignatureProbe = Callable[[types.CodeType, types.CodeType], SignatureValues | None]


def body_patches(
    namespace: dict[str, Any],
    module: str,
    old: types.CodeType,
    new: types.CodeType,
    *,
    signatures: SignatureProbe | None = None,
    reshaped: frozenset[str] = frozenset(),
) -> tuple[list[BodyPatch], str | None]:
    """The code swaps that turn the live module's functions into ``new``'s.

    Returns ``(patches, reason)``; ``reason`` says why the edit cannot be done
    by swapping code alone (the caller then re-executes the module).
    """
    old_by_key, old_by_id = code_index(old)
    new_by_key, _ = code_index(new)
    old_by_pos = {(c.co_qualname, c.co_firstlineno): k for k, c in old_by_key.items()}
    patches: list[BodyPatch] = []
    for top, func, cache in own_functions(namespace, module):
        code = func.__code__
        key = old_by_id.get(id(code)) or old_by_pos.get((code.co_qualname, code.co_firstlineno))
        if key is None:
            continue  # made at run time from code hotmod did not compile (exec, lambdas in data)
        replacement = new_by_key.get(key)
        if replacement is None:
            if code.co_qualname.split(".")[0] in reshaped:
                continue  # a method removed from a class whose body is patched
            return [], f"{code.co_qualname} has no counterpart in the new source"
        signature = signatures(code, replacement) if signatures is not None else None
        if signature is None and _compat.code_equal(code, replacement):
            continue
        if not _compat.can_swap_code(func, replacement):
            return [], f"{code.co_qualname}: closure variables changed"
        patches.append(BodyPatch(func, replacement, top, cache, signature))
    return patches, None


def apply_body_patch(patch: BodyPatch, tx: Transaction) -> None:
    state = _compat.function_state(patch.func)
    patch.func.__code__ = patch.code
    patch.func.__doc__ = _compat.code_docstring(patch.code)
    if patch.signature is not None:
        patch.func.__defaults__ = patch.signature.defaults
        patch.func.__kwdefaults__ = patch.signature.kwdefaults
        patch.func.__annotations__ = dict(patch.signature.annotations)
    tx.on_rollback(lambda: _compat.restore_function(patch.func, state))
    clear = getattr(patch.cache, "cache_clear", None)
    if callable(clear):
        clear()  # results computed by the old code are stale


# Class attributes that are bookkeeping of the class object, not of its body.
_CLASS_OWN = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__"})
# type.__new__ wraps these implicitly; a body run outside type() must do the same.
_IMPLICIT_CLASSMETHODS = frozenset({"__init_subclass__", "__class_getitem__"})
_IMPLICIT_STATICMETHODS = frozenset({"__new__"})


@dataclass
class ClassPatch:
    """A plain class whose body changed: its new body ran into ``namespace``."""

    cls: type
    namespace: dict[str, Any]

    def changed(self) -> set[str]:
        """Attributes added, removed or no longer equal (existing methods excluded)."""
        live = self.cls.__dict__
        names = (set(self.namespace) | set(live)) - _CLASS_OWN - {"__classcell__"}
        return {
            n for n in names
            if not _same_slot(live.get(n, _MISSING), self.namespace.get(n, _MISSING))
        }


_MISSING: Any = object()


def run_class_body(
    cls: type, body: types.CodeType, globals_: dict[str, Any]
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
    return ClassPatch(cls, namespace)


def apply_class_patch(patch: ClassPatch, tx: Transaction) -> None:
    """Set and delete attributes of the live class to match its new body.

    Methods present before and after are left to the body patches (they keep
    their identity); new ones get the live class in their ``__class__`` cell.
    """
    cls, namespace = patch.cls, patch.namespace
    cell = namespace.get("__classcell__")
    if isinstance(cell, types.CellType):
        _compat.set_cell(cell, cls)  # zero-argument super() in the new methods
    for name in patch.changed():
        value = namespace.get(name, _MISSING)
        if value is _MISSING:
            tx.delattr(cls, name)
            continue
        tx.setattr(cls, name, value)
        set_name = getattr(type(value), "__set_name__", None)
        if set_name is not None:
            set_name(value, cls, name)  # cached_property and other descriptors


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
