"""Every CPython-internals trick hotmod relies on, in one place (3.11 to 3.13).

* code objects carry ``co_qualname`` (3.11+), which is how new code is matched
  to live functions;
* ``function.__code__`` may only be replaced by a code object with the same
  number of free variables, so callers check :func:`can_swap_code` first;
* zero-argument ``super()`` reads the ``__class__`` cell of the function's
  closure, which must point at the live class (:func:`class_cell`);
* ``types.FunctionType`` gained ``kwdefaults`` in 3.13 and functions gained
  ``__type_params__`` in 3.12: :func:`clone_function` copies whatever exists.
"""

from __future__ import annotations

import collections
import dis
import itertools
import operator
import sys
import types
from collections.abc import Iterator, Sequence
from typing import Any

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)

# Attributes of a function that describe it and may be copied or patched.
_FUNCTION_META = ("__doc__", "__qualname__", "__module__", "__annotations__", "__kwdefaults__")
_FUNCTION_META_312 = ("__type_params__",) if PY312 else ()


def iter_code_tree(code: types.CodeType) -> Iterator[types.CodeType]:
    """Yield ``code`` and every code object nested in its constants, depth first."""
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        nested = [c for c in current.co_consts if isinstance(c, types.CodeType)]
        stack.extend(reversed(nested))


def moved_code(code: types.CodeType, delta: int) -> types.CodeType | None:
    """``code`` as if its source started ``delta`` lines later, nested code too.

    A code object's line table is relative to ``co_firstlineno`` (3.11+), so
    moving a function moves that one number: the result equals what compiling
    the moved text gives. A 3.13 class body also stores its first line as a
    constant (``__firstlineno__``); that constant moves too, or, when the body
    uses the same number for something else, None: compile the text instead.
    """
    consts = list(code.co_consts)
    for i, const in enumerate(consts):
        if isinstance(const, types.CodeType):
            moved = moved_code(const, delta)
            if moved is None:
                return None
            consts[i] = moved
    if PY313 and "__firstlineno__" in code.co_names and not code.co_flags & _CO_OPTIMIZED:
        index = _firstlineno_const(code)
        if index is None:
            return None
        consts[index] = code.co_firstlineno + delta
    moved = code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=tuple(consts))
    _MOVED[id(moved)] = (code, moved)  # holds both: the ids stay theirs
    while len(_MOVED) > _MOVED_SIZE:
        del _MOVED[next(iter(_MOVED))]
    return moved


# Code objects moved_code made lately: only_moved answers for them without
# moving again (a batch asks once per function; a large module has hundreds).
_MOVED_SIZE = 8192
_MOVED: dict[int, tuple[types.CodeType, types.CodeType]] = {}


def _firstlineno_const(code: types.CodeType) -> int | None:
    """The constant a 3.13 class body stores as ``__firstlineno__``, if used for that alone."""
    loads: list[int] = []
    found = None
    previous = None
    for instruction in dis.get_instructions(code):
        if instruction.opname == "LOAD_CONST":
            loads.append(instruction.arg or 0)
        if (
            instruction.opname == "STORE_NAME" and instruction.argval == "__firstlineno__"
            and previous is not None and previous.opname == "LOAD_CONST"
        ):
            found = previous.arg
        previous = instruction
    if found is None or loads.count(found) != 1 or code.co_consts[found] != code.co_firstlineno:
        return None
    return found


def only_moved(old: types.CodeType, new: types.CodeType) -> bool:
    """``new`` is ``old`` moved to other lines, nothing else changed."""
    made = _MOVED.get(id(new))
    if made is not None and made[1] is new and made[0] is old:
        return True
    delta = new.co_firstlineno - old.co_firstlineno
    return delta != 0 and moved_code(old, delta) == new


def can_swap_code(func: types.FunctionType, code: types.CodeType) -> bool:
    """True when ``func.__code__ = code`` is allowed and keeps the closure meaningful."""
    return func.__code__.co_freevars == code.co_freevars


def code_equal(a: types.CodeType, b: types.CodeType) -> bool:
    """Equality of behaviour *and* line numbers (code ``==`` compares both on 3.11+)."""
    return a is b or a == b


_CO_OPTIMIZED = 0x0001  # a function's code (module and class bodies lack it)


def same_shape(old: types.CodeType, new: types.CodeType) -> bool:
    """Module (or class body) code that differs from ``old`` only inside functions.

    The top level's own bytecode, names and constants are the same, class
    bodies recursively so; function code objects may differ, but keep their
    names and free variables. Then an edit changed function bodies only (no
    default value, annotation, decorator or class attribute), as a syntax-tree
    diff would say.
    """
    if (old.co_code, old.co_names, old.co_varnames, old.co_freevars) != (
        new.co_code, new.co_names, new.co_varnames, new.co_freevars
    ) or len(old.co_consts) != len(new.co_consts):
        return False
    for a, b in zip(old.co_consts, new.co_consts, strict=True):
        if isinstance(a, types.CodeType) and isinstance(b, types.CodeType):
            if a.co_qualname != b.co_qualname or a.co_freevars != b.co_freevars:
                return False
            if a.co_name.startswith("<") and a.co_name != "<lambda>" and a != b:
                return False  # a comprehension (3.11) runs at import time
            if not a.co_flags & _CO_OPTIMIZED and not same_shape(a, b):
                return False  # a class body: its attributes are top-level code
        elif type(a) is not type(b) or a != b:  # a code object against a constant too
            return False
    return True


def code_fingerprint(code: types.CodeType) -> tuple[Any, ...]:
    """What a function does, without where it is: line shifts leave this unchanged."""
    consts = tuple(
        code_fingerprint(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c))
        for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars)


def class_cell(func: types.FunctionType) -> types.CellType | None:
    """The ``__class__`` cell zero-argument ``super()`` uses, if the function has one."""
    if func.__closure__ is None:
        return None
    try:
        index = func.__code__.co_freevars.index("__class__")
    except ValueError:
        return None
    return func.__closure__[index]


def clone_function(func: types.FunctionType, globals_: dict[str, Any]) -> types.FunctionType:
    """A copy of ``func`` that reads ``globals_`` (``__globals__`` is read-only).

    The closure cells are shared with ``func`` on purpose: the clone replaces
    ``func`` everywhere hotmod can see, and a shared cell keeps decorators'
    state in one place.
    """
    new = types.FunctionType(
        func.__code__, globals_, func.__name__, func.__defaults__, func.__closure__
    )
    for attr in _FUNCTION_META + _FUNCTION_META_312:
        setattr(new, attr, getattr(func, attr))
    new.__dict__.update(func.__dict__)
    return new


def function_state(func: types.FunctionType) -> tuple[Any, ...]:
    """Everything :func:`restore_function` needs to undo a patch of ``func``."""
    extra = tuple(getattr(func, a) for a in _FUNCTION_META_312)
    return (
        func.__code__,
        func.__defaults__,
        func.__kwdefaults__,
        func.__doc__,
        dict(func.__annotations__),
        dict(func.__dict__),
        extra,
    )


def restore_function(
    func: types.FunctionType,
    state: tuple[Any, ...],
    cells: Sequence[tuple[types.CellType, tuple[bool, Any]]] = (),
) -> None:
    """Undo a patch of ``func`` (``state`` from :func:`function_state`), and of
    its closure cells (``(cell, cell_value(cell))`` pairs taken before)."""
    for cell, (filled, value) in cells:
        if filled:
            set_cell(cell, value)
    code, defaults, kwdefaults, doc, annotations, fdict, extra = state
    func.__code__ = code
    func.__defaults__ = defaults
    func.__kwdefaults__ = kwdefaults
    func.__doc__ = doc
    func.__annotations__ = annotations
    func.__dict__.clear()
    func.__dict__.update(fdict)
    for attr, value in zip(_FUNCTION_META_312, extra, strict=True):
        setattr(func, attr, value)


def update_function(target: types.FunctionType, source: types.FunctionType) -> None:
    """Make ``target`` behave like ``source``, keeping ``target``'s identity and globals.

    The caller has checked :func:`can_swap_code`; cell contents are the caller's job.
    """
    target.__code__ = source.__code__
    target.__defaults__ = source.__defaults__
    target.__kwdefaults__ = source.__kwdefaults__
    target.__doc__ = source.__doc__
    target.__annotations__ = source.__annotations__
    for attr in _FUNCTION_META_312:
        setattr(target, attr, getattr(source, attr))


def replace_dict(target: dict[str, Any], items: dict[str, Any]) -> None:
    """Make ``target`` hold exactly ``items``, in their order, in one uninterrupted step.

    A module's namespace is rebuilt in the new version's key order (what a
    fresh start would have). ``clear`` then ``update`` from Python would let
    another thread run between the two and see an empty module; driven from
    C (``deque`` consuming ``starmap`` over C callables) no bytecode runs in
    between, so the eval loop never switches threads. Old values stay
    referenced by the caller, so no ``__del__`` runs meanwhile either.
    """
    steps: list[tuple[Any, ...]] = [(target.clear,), (target.update, items)]
    collections.deque(itertools.starmap(operator.call, steps), maxlen=0)


def set_cell(cell: types.CellType, value: Any) -> None:
    cell.cell_contents = value


def cell_value(cell: types.CellType) -> tuple[bool, Any]:
    """``(True, value)`` for a filled cell, ``(False, None)`` for an empty one."""
    try:
        return True, cell.cell_contents
    except ValueError:
        return False, None


def code_docstring(code: types.CodeType) -> str | None:
    """The docstring a function made from ``code`` gets (first constant on 3.11 to 3.13)."""
    first = code.co_consts[0] if code.co_consts else None
    return first if isinstance(first, str) else None


_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_LOAD_CONST = dis.opmap["LOAD_CONST"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_CACHE = dis.opmap.get("CACHE", 0)


def code_imports(code: types.CodeType) -> Iterator[tuple[str, int, tuple[str, ...] | None]]:
    """``(name, level, fromlist)`` of every ``import`` statement in ``code`` itself.

    Reads the wordcode directly (3.11 to 3.13: two bytes per unit, inline
    ``CACHE`` units, ``LOAD_CONST level; LOAD_CONST fromlist; IMPORT_NAME``):
    ``dis.get_instructions`` costs ten times as much, at every import.
    """
    raw = code.co_code
    if _IMPORT_NAME not in raw[::2]:
        return
    consts, names = code.co_consts, code.co_names
    previous: list[object] = [None, None]
    extended = 0
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | extended
        if op == _EXTENDED_ARG:
            extended = arg << 8
            continue
        extended = 0
        if op == _CACHE:
            continue
        if op == _LOAD_CONST:
            previous = [previous[1], consts[arg]]
            continue
        if op == _IMPORT_NAME:
            level, fromlist = previous
            if isinstance(level, int):
                yield names[arg], level, fromlist if isinstance(fromlist, tuple) else None
        previous = [None, None]
