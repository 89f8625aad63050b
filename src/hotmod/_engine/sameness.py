"""When a staged object counts as the same as the live one (no change to report).

Used by the reconciler's change analysis: functions that behave the same
(code, line numbers aside, and defaults), descriptors of one kind over such
functions, values of one type that compare equal.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable
from typing import Any

from .. import _compat


def same_function(a: Any, b: Any) -> bool:
    """Functions that behave the same: code (line numbers aside) and defaults."""
    return (
        isinstance(a, types.FunctionType)
        and isinstance(b, types.FunctionType)
        and _compat.code_fingerprint(a.__code__) == _compat.code_fingerprint(b.__code__)
        and equal(a.__defaults__, b.__defaults__)
        and equal(a.__kwdefaults__, b.__kwdefaults__)
    )


def same_descriptor(a: Any, b: Any, same: Callable[[Any, Any], bool]) -> bool:
    """Descriptors (or nested classes) of one kind whose functions are ``same``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, type):
        return a is b
    if isinstance(a, property):
        parts = [(getattr(a, p), getattr(b, p)) for p in ("fget", "fset", "fdel")]
    else:
        parts = [(a.__func__, b.__func__)]
    return all((x is None) == (y is None) and (x is None or same(x, y)) for x, y in parts)


def is_layout_descriptor(value: object) -> bool:
    """``__slots__`` members and ``__dict__`` getsets belong to one class layout."""
    return isinstance(value, types.MemberDescriptorType | types.GetSetDescriptorType)


def is_submodule(module: types.ModuleType, attr: str) -> bool:
    value = module.__dict__.get(attr)
    return isinstance(value, types.ModuleType) and value.__name__ == f"{module.__name__}.{attr}"


def equal(a: object, b: object) -> bool:
    """Same type and ``==``; anything that cannot be compared counts as different."""
    if type(a) is not type(b):
        return False
    if isinstance(a, types.FunctionType | type | types.ModuleType):
        return a is b
    try:
        return bool(a == b)
    except Exception:  # numpy arrays, objects with odd __eq__: treat as changed
        return False


def is_enum(cls: type) -> bool:
    return isinstance(cls, enum.EnumMeta)


def enum_signature(cls: type) -> list[tuple[str, Any]]:
    return [(name, member.value) for name, member in cls.__members__.items()]  # type: ignore[attr-defined]
