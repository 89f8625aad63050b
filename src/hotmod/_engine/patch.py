"""Body patches: new code swapped into live functions, no module code run.

For a module whose edit touched only function bodies (and signatures),
:func:`body_patches` matches each new code object to the live functions
running the old one; :func:`apply_body_patch` swaps ``__code__`` (and new
defaults and annotations), registering the undo with the batch's
:class:`~hotmod._engine.undo.UndoLog`. Functions keep their identity, so
aliases, callbacks and instances see the new code at once.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import _compat
from .undo import UndoLog

logger = logging.getLogger(__name__)

CodeKey = tuple[str, int]  # (co_qualname, occurrence)

# Objects that can hold a module's functions: walked to find them all.
_HOLDERS = (
    types.FunctionType, type, staticmethod, classmethod, property, functools.partial,
    functools.cached_property,
)


def code_index(code: types.CodeType) -> tuple[dict[CodeKey, types.CodeType], dict[int, CodeKey]]:
    """Nested code objects of a module by (qualname, occurrence), and keys by ``id``.

    Cached for the last few module code objects: a batch asks for the same
    two (live and new) several times, and the new one is the next batch's
    live one. Treat the result as read-only.
    """
    cached = _INDEX_CACHE.get(id(code))
    if cached is not None and cached[0] is code:
        return cached[1], cached[2]
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
    _INDEX_CACHE[id(code)] = (code, by_key, by_id)  # holds ``code``: its id stays unique
    while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
        del _INDEX_CACHE[next(iter(_INDEX_CACHE))]
    return by_key, by_id


def changed_keys(old: types.CodeType, new: types.CodeType) -> list[CodeKey]:
    """Keys of ``old``'s index whose code object ``new`` does not share (changed or gone).

    One pass per pair, cached: the analyses of a batch all start from it, so
    a quick change (which shares every untouched code object) costs them
    what it changed, not the module's size.
    """
    cached = _CHANGED_CACHE.get((id(old), id(new)))
    if cached is not None and cached[0] is old and cached[1] is new:
        return cached[2]
    old_by_key, _ = code_index(old)
    new_by_key, _ = code_index(new)
    keys = [k for k, c in old_by_key.items() if new_by_key.get(k) is not c]
    _CHANGED_CACHE[(id(old), id(new))] = (old, new, keys)  # holds both: ids stay unique
    while len(_CHANGED_CACHE) > _INDEX_CACHE_SIZE:
        del _CHANGED_CACHE[next(iter(_CHANGED_CACHE))]
    return keys


_CHANGED_CACHE: dict[
    tuple[int, int], tuple[types.CodeType, types.CodeType, list[CodeKey]]
] = {}


def derive_code_index(
    new: types.CodeType, old: types.CodeType, statements: Iterable[str]
) -> None:
    """Index ``new`` from ``old``'s index: only the top-level ``statements`` differ.

    For the quick path (see quick.py): the other code objects are shared, so
    only the swapped statements' code trees are walked.
    """
    old_by_key, _ = code_index(old)
    names = set(statements)
    by_key = {
        k: c for k, c in old_by_key.items() if k[0].split(".", 1)[0] not in names
    }
    seen: dict[str, int] = {}
    for const in new.co_consts:
        if isinstance(const, types.CodeType) and const.co_name in names:
            for nested in _compat.iter_code_tree(const):
                occurrence = seen.get(nested.co_qualname, 0)
                seen[nested.co_qualname] = occurrence + 1
                by_key[(nested.co_qualname, occurrence)] = nested
    by_id = {id(c): k for k, c in by_key.items()}
    _INDEX_CACHE[id(new)] = (new, by_key, by_id)
    while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
        del _INDEX_CACHE[next(iter(_INDEX_CACHE))]


_INDEX_CACHE_SIZE = 8
_INDEX_CACHE: dict[
    int, tuple[types.CodeType, dict[CodeKey, types.CodeType], dict[int, CodeKey]]
] = {}


def instance_dict(obj: object) -> dict[str, Any] | None:
    """``obj.__dict__`` read without running any of ``obj``'s own code.

    ``object.__getattribute__`` skips ``__getattr__``/``__getattribute__``
    overrides (Werkzeug's ``LocalProxy`` raises ``RuntimeError`` on any
    attribute outside a request); only a plain dict is returned.
    """
    try:
        found = object.__getattribute__(obj, "__dict__")
    except Exception:  # no __dict__ (slots, C objects) or an odd descriptor
        return None
    return found if type(found) is dict else None


def is_cache(obj: object) -> bool:
    """An ``lru_cache``/``cache`` wrapper (results to clear when the code changes)."""
    return type(obj) is LRU_WRAPPER


LRU_WRAPPER = type(functools.lru_cache(maxsize=None)(lambda: None))
_CONTAINERS = (dict, list, tuple, set, frozenset)


def _children(obj: object) -> Iterator[object]:
    """Objects reachable from a function, descriptor or class that may hold functions.

    Only types are consulted and only stored attributes read: inspecting a
    module must never call into user objects (proxies, lazy objects).
    """
    kind = type(obj)
    if kind is types.FunctionType:
        func: types.FunctionType = obj  # type: ignore[assignment]
        wrapped = func.__dict__.get("__wrapped__")
        if wrapped is not None:
            yield wrapped
        for cell in func.__closure__ or ():
            filled, value = _compat.cell_value(cell)
            if filled:
                yield value
    elif issubclass(kind, staticmethod | classmethod):
        yield obj.__func__  # type: ignore[attr-defined]
    elif issubclass(kind, property):
        yield from (f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)  # type: ignore[attr-defined]
    elif issubclass(kind, functools.partial | functools.cached_property):
        yield obj.func  # type: ignore[attr-defined]
    elif issubclass(kind, type):
        yield from list(obj.__dict__.values())
    elif kind in _CONTAINERS:
        if len(obj) <= _WIDE:  # type: ignore[arg-type]
            values: Any = obj.values() if kind is dict else obj  # type: ignore[attr-defined]
            yield from list(values)
    else:
        # lru_cache and other C wrappers keep ``__wrapped__`` in their __dict__;
        # registries, callable objects and command objects (click, Celery)
        # keep the function among their attributes.
        attrs = instance_dict(obj)
        if attrs is not None and len(attrs) <= _WIDE:
            yield from list(attrs.values())


def _may_hold(obj: object, module: str, *, broad: bool = False) -> bool:
    """Whether walking into ``obj`` can find this module's functions (cheap type tests).

    ``broad`` looks into any instance of a class not built in: the second
    pass, made only when a changed function was not found by the first.
    """
    kind = type(obj)
    if kind is types.FunctionType or kind in _CONTAINERS or kind is LRU_WRAPPER:
        return True
    if issubclass(kind, type):
        return bool(obj.__dict__.get("__module__") == module)
    if issubclass(kind, _HOLDERS):
        return True
    if kind is types.ModuleType or kind.__module__ == "builtins":
        return False
    # An instance: worth a look when its class comes from this module (a
    # registry or callable defined here) or it is callable (a decorator's
    # object, such as a click command holding ``callback``).
    if broad:
        return True
    return kind.__module__ == module or "__call__" in _type_dict_chain(kind)


def _type_dict_chain(kind: type) -> set[str]:
    names: set[str] = set()
    for base in kind.__mro__[:-1]:  # object itself is callable-agnostic
        names.update(base.__dict__)
    return names


# Bounds on the walk of a module's namespace: a module holding a large data
# structure must not make every body edit slow.
_WALK_BUDGET = 20_000
_WALK_DEPTH = 6
_WIDE = 1_000  # a container or instance wider than this holds data, not functions


def own_functions(
    namespace: dict[str, Any],
    module: str,
    *,
    broad: bool = False,
    globals_: dict[str, Any] | None = None,
) -> Iterator[tuple[str, types.FunctionType, object | None]]:
    """Every function of this module reachable from its namespace.

    Yields ``(top-level name, function, cache)`` where ``cache`` is an
    ``lru_cache``-style wrapper in front of the function (to clear), if any.
    Only functions whose globals are ``namespace`` count: an imported function
    belongs to its own module. Objects that hold functions (wrappers,
    registries, callable objects, containers) are walked, within a budget.
    """
    module_globals = namespace if globals_ is None else globals_
    seen: set[int] = set()
    budget = _WALK_BUDGET
    for top, value in list(namespace.items()):
        stack: list[tuple[object, object | None, int]] = [(value, None, 0)]
        while stack and budget > 0:
            obj, cache, depth = stack.pop()
            if id(obj) in seen or depth > _WALK_DEPTH:
                continue
            try:
                if not _may_hold(obj, module, broad=broad):
                    continue
            except Exception:  # a metaclass with odd attributes: not ours to inspect
                continue
            seen.add(id(obj))
            budget -= 1
            if type(obj) is types.FunctionType and obj.__globals__ is module_globals:
                yield top, obj, cache
            next_cache = obj if is_cache(obj) else cache
            stack.extend((child, next_cache, depth + 1) for child in _children(obj))


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
    # Only its lines moved (an edit above it added or removed lines): the
    # same behaviour, so no cache to clear and nothing that counts as changed.
    moved: bool = False


SignatureProbe = Callable[[types.CodeType, types.CodeType], SignatureValues | None]


def body_patches(
    namespace: dict[str, Any],
    module: str,
    old: types.CodeType,
    new: types.CodeType,
    *,
    signatures: SignatureProbe | None = None,
    reshaped: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
) -> tuple[list[BodyPatch], str | None, list[str]]:
    """The code swaps that turn the live module's functions into ``new``'s.

    Returns ``(patches, reason, unmatched)``; ``reason`` says why the edit
    cannot be done by swapping code alone (the caller then re-executes the
    module); ``unmatched`` names functions whose code changed but which no
    live function reachable from the module runs (nested functions excepted:
    their live closures are found by :mod:`~hotmod._engine.closures`).
    """
    old_by_key, old_by_id = code_index(old)
    new_by_key, _ = code_index(new)
    old_by_pos = {(c.co_qualname, c.co_firstlineno): k for k, c in old_by_key.items()}
    patches: list[BodyPatch] = []
    found: set[CodeKey] = set()
    patched: set[int] = set()
    changed = changed_keys(old, new)
    for top, func, cache in _passes(namespace, module, old_by_key, new_by_key, changed, only):
        if id(func) in patched:
            continue
        code = func.__code__
        key = old_by_id.get(id(code)) or old_by_pos.get((code.co_qualname, code.co_firstlineno))
        if key is None:
            continue  # made at run time from code hotmod did not compile (exec, lambdas in data)
        found.add(key)
        replacement = new_by_key.get(key)
        if replacement is None:
            if code.co_qualname.split(".")[0] in reshaped:
                continue  # a method removed from a class whose body is patched
            return [], f"{code.co_qualname} has no counterpart in the new source", []
        if replacement is code or replacement is old_by_key.get(key):
            continue  # a statement the edit did not touch (the quick path shares it)
        if _compat.only_moved(code, replacement):
            patches.append(BodyPatch(func, replacement, top, None, moved=True))
            patched.add(id(func))
            continue
        signature = signatures(code, replacement) if signatures is not None else None
        if signature is None and _compat.code_equal(code, replacement):
            continue
        if not _compat.can_swap_code(func, replacement):
            return [], f"{code.co_qualname}: closure variables changed", []
        patches.append(BodyPatch(func, replacement, top, cache, signature))
        patched.add(id(func))
    unmatched = sorted(
        key[0] for key in changed_keys(old, new)
        if key not in found
        and _is_named_function(code := old_by_key[key])
        and "<locals>" not in key[0]
        and key in new_by_key
        and not _compat.code_equal(code, new_by_key[key])
        and not _compat.only_moved(code, new_by_key[key])
    )
    return patches, None, unmatched


def _passes(
    namespace: dict[str, Any],
    module: str,
    old_by_key: dict[CodeKey, types.CodeType],
    new_by_key: dict[CodeKey, types.CodeType],
    changed: list[CodeKey],
    only: frozenset[str] | None,
) -> Iterator[tuple[str, types.FunctionType, object | None]]:
    """The module's functions, in widening walks, each only if a changed one is missing.

    First the names of the statements that changed (``only``, when the quick
    path knows them), then the whole namespace, then a broad walk into every
    instance (registries and command objects defined elsewhere hold
    functions in plain attributes).
    """
    missing = {
        id(code) for key in changed
        if _is_named_function(code := old_by_key[key]) and "<locals>" not in key[0]
        and key in new_by_key and code is not new_by_key[key]
        and not _compat.code_equal(code, new_by_key[key])
    }
    walks: list[tuple[dict[str, Any], bool]] = []
    if only is not None:
        walks.append(({n: namespace[n] for n in only if n in namespace}, False))
    walks += [(namespace, False), (namespace, True)]
    for first, (scope, broad) in enumerate(walks):
        if first and not missing:
            return
        for item in own_functions(scope, module, broad=broad, globals_=namespace):
            missing.discard(id(item[1].__code__))
            yield item


_CO_OPTIMIZED = 0x0001  # functions (not module or class bodies)


def _is_named_function(code: types.CodeType) -> bool:
    """A ``def`` (not a lambda, comprehension or class body)."""
    return bool(code.co_flags & _CO_OPTIMIZED) and not code.co_name.startswith("<")


ClassLines = tuple[type, int]  # a live class and the first line its body moved to


def moved_classes(
    namespace: dict[str, Any], old: types.CodeType, new: types.CodeType
) -> list[ClassLines]:
    """Live classes whose bodies only moved to other lines, and their new first line.

    Python 3.13 keeps a class's first line in ``__firstlineno__`` (which
    ``inspect.getsource`` reads); moving its methods' code does not move it.
    Earlier versions find a class's source by its name: nothing to do there.
    """
    if not _compat.PY313:
        return []
    old_by_key, _ = code_index(old)
    new_by_key, _ = code_index(new)
    moves: list[ClassLines] = []
    for key in changed_keys(old, new):
        before, after = old_by_key[key], new_by_key.get(key)
        if after is None or before.co_flags & _CO_OPTIMIZED or "<" in key[0]:
            continue  # gone, a function, or made at run time (nested in a function)
        if not _compat.only_moved(before, after):
            continue
        top, *inner = key[0].split(".")
        cls: Any = namespace.get(top)
        for part in inner:
            cls = cls.__dict__.get(part) if isinstance(cls, type) else None
        if isinstance(cls, type) and cls.__dict__.get("__firstlineno__") == before.co_firstlineno:
            moves.append((cls, after.co_firstlineno))
    return moves


def move_class_lines(moves: Iterable[ClassLines], undo: UndoLog | None = None) -> None:
    """Give classes that only moved their new first line (undoably, with ``undo``)."""
    for cls, line in moves:
        old = cls.__dict__.get("__firstlineno__")
        cls.__firstlineno__ = line  # type: ignore[attr-defined]
        if undo is not None:
            undo.on_rollback(functools.partial(setattr, cls, "__firstlineno__", old))


def move_functions(patches: Iterable[BodyPatch]) -> None:
    """Give functions that only moved their moved code (not a change: nothing to undo)."""
    for patch in patches:
        if patch.moved:
            patch.func.__code__ = patch.code


def apply_body_patch(patch: BodyPatch, undo: UndoLog) -> None:
    state = _compat.function_state(patch.func)
    patch.func.__code__ = patch.code
    patch.func.__doc__ = _compat.code_docstring(patch.code)
    if patch.signature is not None:
        patch.func.__defaults__ = patch.signature.defaults
        patch.func.__kwdefaults__ = patch.signature.kwdefaults
        patch.func.__annotations__ = dict(patch.signature.annotations)
    undo.on_rollback(lambda: _compat.restore_function(patch.func, state))
    clear = getattr(patch.cache, "cache_clear", None)
    if callable(clear):
        clear()  # results computed by the old code are stale
