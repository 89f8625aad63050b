"""The ``hot`` API a module uses to take part in its own reloads (DESIGN §4).

``hot(__name__)`` returns the module's handle; ``keep(name, factory)`` makes a
value once and hands the same object to every later version of the module.
With no reloader installed both are inert: ``keep`` calls the factory, the
handle's hooks are recorded and never run, so code using them runs unchanged
under plain ``python``.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._compat import code_fingerprint

logger = logging.getLogger(__name__)

T = TypeVar("T")
DisposeHook = Callable[[dict[str, Any]], object]
MigrateHook = Callable[[Any], object]


class Handle:
    """One version of one module's participation in hot reload.

    ``data`` is a dict carried from version to version of the module: what the
    old version (or its dispose hooks) stores there, the new version finds.
    """

    def __init__(self, name: str, data: dict[str, Any], *, live: bool) -> None:
        self.name = name
        self.data = data
        self.live = live  # False: no reloader is installed, the hooks never run
        self.accepted = False
        self.declined = False
        self._dispose: list[DisposeHook] = []
        self._migrations: list[tuple[type, MigrateHook]] = []

    def __repr__(self) -> str:
        state = "live" if self.live else "inert"
        return f"<hotmod.Handle {self.name!r} {state}>"

    def dispose(self, hook: DisposeHook) -> DisposeHook:
        """Register ``hook(data)`` to run on this version just before it is replaced.

        Usable as a decorator; returns ``hook`` unchanged.
        """
        self._dispose.append(hook)
        return hook

    def migrate(self, cls: type) -> Callable[[MigrateHook], MigrateHook]:
        """Register ``hook(instance)`` to bring live instances of ``cls`` up to date.

        Use as a decorator next to the class::

            @hot.migrate(Counter)
            def _(counter):
                if not hasattr(counter, "history"):   # new in __init__
                    counter.history = []

        When the version of this module that registers the hook is committed,
        the hook runs once on every live instance of ``cls`` (and of its
        subclasses), before the old version's dispose hooks. A hook that
        raises rolls the whole batch back, instances included. Write hooks so
        that running them twice does no harm: each new version of the module
        registers (and runs) them again. Inert without a reloader.
        """

        def register(hook: MigrateHook) -> MigrateHook:
            self._migrations.append((cls, hook))
            return hook

        return register

    @property
    def migrations(self) -> list[tuple[type, MigrateHook]]:
        """The registered ``(class, hook)`` migrations, in registration order."""
        return list(self._migrations)

    def accept(self) -> None:
        """Declare this module a boundary: its importers need not re-execute for it."""
        self.accepted = True

    def decline(self) -> None:
        """Any change to this module restarts the program instead of reloading it."""
        self.declined = True

    @property
    def dispose_hooks(self) -> list[DisposeHook]:
        """The registered dispose hooks, in registration order."""
        return list(self._dispose)


@dataclass
class _Kept:
    fingerprint: object
    value: Any


@dataclass
class HotState:
    """Handles and kept values of every module, while a reloader is installed."""

    handles: dict[str, Handle] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    kept: dict[tuple[str, str], _Kept] = field(default_factory=dict)
    # During a batch, what the staged versions create; merged on commit.
    staged_handles: dict[str, Handle] | None = None
    staged_kept: dict[tuple[str, str], _Kept] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    _data_before: dict[str, dict[str, Any]] = field(default_factory=dict)

    def begin(self) -> None:
        """A batch starts staging: new handles and kept values are held apart."""
        self.staged_handles = {}
        self.staged_kept = {}
        self._data_before = {name: dict(data) for name, data in self.data.items()}

    def end(self) -> tuple[dict[str, Handle], dict[tuple[str, str], _Kept]]:
        """The batch's new handles and kept values (the caller commits or drops them)."""
        handles, kept = self.staged_handles or {}, self.staged_kept or {}
        self.staged_handles = self.staged_kept = None
        return handles, kept

    def restore_data(self) -> None:
        """Undo what staged code and dispose hooks wrote to ``hot.data`` (G1)."""
        for name in list(self.data):
            if name not in self._data_before:
                del self.data[name]
        for name, before in self._data_before.items():
            data = self.data.setdefault(name, {})
            data.clear()
            data.update(before)

    def handle(self, name: str) -> Handle:
        data = self.data.setdefault(name, {})
        handle = Handle(name, data, live=True)
        if self.staged_handles is not None:
            self.staged_handles[name] = handle
        else:
            self.handles[name] = handle
        return handle

    def keep(self, module: str, name: str, factory: Callable[[], T]) -> T:
        key = (module, name)
        fingerprint = _fingerprint(factory)
        with self.lock:
            if self.staged_kept is not None and key in self.staged_kept:
                entry = self.staged_kept[key]
            else:
                entry = self.kept.get(key)  # type: ignore[assignment]
            if entry is not None and entry.fingerprint == fingerprint:
                return entry.value  # type: ignore[no-any-return]
        value = factory()
        with self.lock:
            target = self.staged_kept if self.staged_kept is not None else self.kept
            target[key] = _Kept(fingerprint, value)
        return value


def _fingerprint(factory: Callable[[], object]) -> object:
    """What identifies a factory's own source: its code without line numbers."""
    code = getattr(factory, "__code__", None)
    if isinstance(code, types.CodeType):
        return code_fingerprint(code)
    return (type(factory).__qualname__, getattr(factory, "__qualname__", None))


_state: HotState | None = None


def activate() -> HotState:
    """Make the hot API live (called by the reloader's install)."""
    global _state
    if _state is None:
        _state = HotState()
    return _state


def deactivate() -> None:
    global _state
    _state = None


def current() -> HotState | None:
    return _state


def hot(name: str) -> Handle:
    """The handle of module ``name``: call as ``hot = hotmod.hot(__name__)``."""
    state = _state
    if state is None:
        return Handle(name, {}, live=False)
    return state.handle(name)


def keep(name: str, factory: Callable[[], T]) -> T:
    """``factory()`` made once and kept across re-executions of the calling module.

    Keyed by the calling module and ``name``. The value is made again when the
    factory's own code changes. Without a reloader this is just ``factory()``.
    """
    state = _state
    if state is None:
        return factory()
    module = sys._getframe(1).f_globals.get("__name__", "?")
    return state.keep(str(module), name, factory)
