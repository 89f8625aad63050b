"""Other threads never observe a staged module.

Staging re-executes modules through the import system, so for the few
milliseconds it takes, ``sys.modules`` holds the staged versions. A program's
other threads keep running meanwhile; one that imports a module of the batch
would block on the module's import lock and then receive the staged module —
even from a batch that is then rolled back (G1).

While a batch is staged, :class:`ImportGuard` stands in for
``builtins.__import__`` (and is put back right after): the staging thread
imports as usual; every other thread asking for a module of the batch gets
the live module at once, without touching the import system. A ``from pkg
import sub`` gets a one-off view of the live package with its live
submodules. What remains visible is documented (docs/usage.md): reading
``pkg.sub`` as an attribute, or ``importlib.import_module``, from another
thread during those milliseconds.
"""

from __future__ import annotations

import builtins
import importlib.util
import sys
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any


class ImportGuard:
    """``__import__`` for the duration of a staging: live modules for other threads."""

    def __init__(self, live: Mapping[str, types.ModuleType], staging_thread: int) -> None:
        self._live = live  # name -> live module, filled as staging takes modules out
        self._thread = staging_thread
        self._original: Any = builtins.__import__

    def __call__(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        if threading.get_ident() == self._thread or not self._live:
            return self._original(name, globals, locals, fromlist, level)  # type: ignore[no-any-return]
        try:
            absolute = _absolute(name, globals, level)
        except (ImportError, ValueError):
            absolute = None
        if absolute is None or not self._concerns(absolute):
            return self._original(name, globals, locals, fromlist, level)  # type: ignore[no-any-return]
        module = self._module(absolute)
        if module is None:  # not loaded yet: the import system must load it
            return self._original(name, globals, locals, fromlist, level)  # type: ignore[no-any-return]
        if fromlist:
            return self._view(module, fromlist)
        if level == 0:
            top = self._module(absolute.partition(".")[0])
            return top if top is not None else module
        if not name:
            return module
        cut = len(name) - len(name.partition(".")[0])
        parent = self._module(absolute[: len(absolute) - cut])
        return parent if parent is not None else module

    def _concerns(self, absolute: str) -> bool:
        parts = absolute.split(".")
        return any(".".join(parts[: i + 1]) in self._live for i in range(len(parts))) or any(
            n.startswith(absolute + ".") for n in self._live
        )

    def _module(self, name: str) -> types.ModuleType | None:
        return self._live.get(name) or sys.modules.get(name)

    def _view(self, module: types.ModuleType, fromlist: Sequence[str]) -> types.ModuleType:
        """``module``, or a copy of it whose submodules in ``fromlist`` are the live ones."""
        swaps = {
            item: live for item in fromlist
            if (live := self._live.get(f"{module.__name__}.{item}")) is not None
        }
        if not swaps:
            return module
        view = types.ModuleType(module.__name__)
        view.__dict__.update(module.__dict__)
        view.__dict__.update(swaps)
        return view


def _absolute(name: str, globals_: Mapping[str, Any] | None, level: int) -> str | None:
    if level == 0:
        return name
    package = (globals_ or {}).get("__package__")
    if not package:
        spec = (globals_ or {}).get("__spec__")
        package = getattr(spec, "parent", None)
    if not package:
        return None
    return importlib.util.resolve_name("." * level + name, package)


@contextmanager
def guarded_imports(live: Mapping[str, types.ModuleType]) -> Iterator[None]:
    """Install an :class:`ImportGuard` for the calling (staging) thread; always restore."""
    guard = ImportGuard(live, threading.get_ident())
    previous = builtins.__import__
    builtins.__import__ = guard
    try:
        yield
    finally:
        if builtins.__import__ is guard:
            builtins.__import__ = previous
