"""The undo chain: every mutation of live state registers how to undo it.

A :class:`UndoLog` collects undo steps while a batch is committed. On
failure they run in reverse order; every step runs even if an earlier one
fails, the first undo failure is kept and raised once as
:class:`~hotmod._errors.RollbackError` (the pattern of pluggy's teardown loop).
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, MutableMapping
from typing import Any

from .._errors import RollbackError

logger = logging.getLogger(__name__)

_MISSING: Any = object()


class UndoLog:
    """An ordered log of undo steps for one batch."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._undo)

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Register ``undo`` to run if the batch is rolled back."""
        self._undo.append(undo)

    def setitem(self, mapping: MutableMapping[str, Any], key: str, value: Any) -> None:
        """``mapping[key] = value``, undoably."""
        old = mapping.get(key, _MISSING)
        mapping[key] = value
        self._undo.append(lambda: _restore_item(mapping, key, old))

    def delitem(self, mapping: MutableMapping[str, Any], key: str) -> None:
        """``del mapping[key]`` if present, undoably."""
        old = mapping.pop(key, _MISSING)
        if old is not _MISSING:
            self._undo.append(lambda: _restore_item(mapping, key, old))

    def setattr(self, obj: object, name: str, value: Any, *, raw: bool = False) -> None:
        """``setattr(obj, name, value)``, undoably (restores or deletes).

        ``raw`` (classes only) goes around the metaclass's ``__setattr__``
        (``EnumType`` refuses to rebind member names).
        """
        old = _current(obj, name)
        if raw:
            type.__setattr__(obj, name, value)
        else:
            setattr(obj, name, value)
        self._undo.append(lambda: _restore_attr(obj, name, old, raw=raw))

    def delattr(self, obj: object, name: str, *, raw: bool = False) -> None:
        """``delattr(obj, name)`` if it is set, undoably (``raw`` as for :meth:`setattr`)."""
        old = _current(obj, name)
        if old is _MISSING:
            return
        if raw:
            type.__delattr__(obj, name)
        else:
            delattr(obj, name)
        self._undo.append(lambda: _restore_attr(obj, name, old, raw=raw))

    def rollback(self) -> None:
        """Run every undo step in reverse; raise the first failure once, at the end."""
        first: BaseException | None = None
        while self._undo:
            step = self._undo.pop()
            try:
                step()
            except BaseException as exc:  # keep unwinding: every step must get its chance
                logger.exception("undo step failed")
                if first is None:
                    first = exc
        if first is not None:
            raise RollbackError(f"rollback incomplete: {first!r}", phase="rollback") from first

    def discard(self) -> None:
        """Forget the undo steps: the batch is committed."""
        self._undo.clear()


def _restore_item(mapping: MutableMapping[str, Any], key: str, old: Any) -> None:
    if old is _MISSING:
        mapping.pop(key, None)
    else:
        mapping[key] = old


def _current(obj: object, name: str) -> Any:
    """What ``obj`` holds under ``name`` itself: its own ``__dict__`` entry (a class's
    or a module's, not an inherited one), else the attribute (slots, properties)."""
    if isinstance(obj, type | types.ModuleType):
        return obj.__dict__.get(name, _MISSING)
    descriptor = inspect.getattr_static(type(obj), name, None)
    if getattr(type(obj), "__dictoffset__", 0) and not hasattr(type(descriptor), "__set__"):
        return obj.__dict__.get(name, _MISSING)  # a plain instance attribute
    return getattr(obj, name, _MISSING)  # slots, properties


def _restore_attr(obj: object, name: str, old: Any, *, raw: bool = False) -> None:
    if old is _MISSING:
        if _current(obj, name) is not _MISSING:
            (type.__delattr__ if raw else delattr)(obj, name)
    else:
        (type.__setattr__ if raw else setattr)(obj, name, old)
