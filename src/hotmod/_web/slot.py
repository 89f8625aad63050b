"""The served app: which object answers requests, and how a batch replaces it.

``hotmod serve module:app`` (or ``--factory module:create_app``) serves the
app through an :class:`AppSlot`: the gate middleware reads ``slot.app`` for
every request. A batch that rebuilds the app (the app's module re-executed,
or the factory's code changed) builds the new app *while staging*, from the
staged modules, without touching the live one; the commit swaps it into the
slot under the gate. A failed batch leaves the live app exactly as it was.

:class:`TargetParticipant` does that for any WSGI or ASGI app; what a
framework needs on top (Flask: which modules register on the app; FastAPI:
what it derived from signatures and models; ASGI lifespan) is a
:class:`Framework` it is given.
"""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from .._errors import UsageError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from .._engine.batch import Batch
    from .._engine.undo import UndoLog

logger = logging.getLogger(__name__)

Kind = Literal["wsgi", "asgi"]


@dataclass(frozen=True)
class Target:
    """``module:attr`` of the app (or of its factory, with ``factory=True``)."""

    module: str
    attr: str
    factory: bool = False

    @classmethod
    def parse(cls, spec: str, *, factory: bool = False) -> Target:
        module, sep, attr = spec.partition(":")
        if not sep:
            attr = "create_app" if factory else "app"
        if not all(p.isidentifier() for p in (*module.split("."), *attr.split("."))):
            raise UsageError(f"not an app: {spec!r} (expected 'module:attribute')")
        return cls(module, attr, factory)

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}"

    def find(self, module: types.ModuleType) -> Any:
        """The attribute (the app, or the factory) in ``module``."""
        value: Any = module
        for part in self.attr.split("."):
            value = getattr(value, part)
        return value

    def build(self, module: types.ModuleType) -> Any:
        """The app ``module`` defines: the attribute, or what the factory returns."""
        found = self.find(module)
        return found() if self.factory else found


def app_kind(app: object) -> Kind:
    """WSGI or ASGI, as uvicorn decides it: a coroutine function is ASGI."""
    import inspect

    if not callable(app):
        raise UsageError(f"not an app: {app!r} is not callable")
    if inspect.isfunction(app) or inspect.ismethod(app):
        call: object = app
    else:
        call = type(app).__call__
    return "asgi" if inspect.iscoroutinefunction(call) else "wsgi"


class AppSlot:
    """The app being served now; swapped (undoably) by a commit."""

    def __init__(self, target: Target, app: object, kind: Kind) -> None:
        self.target = target
        self.app: Any = app
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's, for ASGI
        # The server's lifespan, if an adapter runs it for every app the slot serves
        # (the gate middleware hands lifespan events to it).
        self.lifespan: Callable[..., Awaitable[None]] | None = None
        self.generation = 0  # bumped by every swap

    def __call__(self) -> Any:
        return self.app

    def swap(self, app: object, undo: UndoLog) -> None:
        old, generation = self.app, self.generation

        def restore() -> None:
            self.app, self.generation = old, generation

        undo.on_rollback(restore)
        self.app = app
        self.generation += 1


def load(target: Target) -> tuple[types.ModuleType, Any]:
    """Import the target's module and build the app (errors propagate as raised)."""
    module = importlib.import_module(target.module)
    return module, target.build(module)


class Framework(Protocol):
    """What one web framework adds to swapping the app (see flask.py, asgi.py)."""

    name: str

    def prepare(self, batch: Batch, slot: AppSlot) -> None:
        """Ask for re-executions the framework's registrations need (``batch.require``)."""

    def adopt(self, batch: Batch, app: Any) -> None:
        """At commit, before the swap: point the staged-built app at live objects."""

    def start(self, app: Any) -> None:
        """At commit, before the swap: start the new app (ASGI lifespan); may raise."""

    def retire(self, app: Any) -> None:
        """After the commit, gate released: stop the old app (ASGI lifespan shutdown)."""


class PlainFramework:
    """Any WSGI/ASGI app: swapped, nothing else."""

    name = "plain"

    def prepare(self, batch: Batch, slot: AppSlot) -> None:
        pass

    def adopt(self, batch: Batch, app: Any) -> None:
        adopt_graph(batch, app)

    def start(self, app: Any) -> None:
        pass

    def retire(self, app: Any) -> None:
        pass


# How far adopt_graph follows attributes (app -> router -> routes -> route), and how
# many objects it visits at most.
_ADOPT_DEPTH = 6
_ADOPT_BUDGET = 50_000
_CONTAINERS = (list, tuple, set, frozenset, dict)


def adopt_graph(batch: Batch, root: object, *, depth: int = _ADOPT_DEPTH) -> None:
    """Staged functions held anywhere in ``root``'s object graph become the live ones.

    A new app built while staging keeps functions made by staged code in its
    routes, handlers and middleware (objects inside objects). Those functions
    read the *staged* module namespaces, which the commit discards: later
    edits would never reach them. This follows instance attributes and
    containers from ``root`` (``depth`` objects deep, budgeted) and has
    :meth:`Batch.live` replace them in place. Modules, classes and functions
    are not entered.
    """
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(root, 0)]
    budget = _ADOPT_BUDGET
    while stack and budget > 0:
        obj, level = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        budget -= 1
        kind = type(obj)
        if kind in _SKIP:
            continue
        if issubclass(kind, _CONTAINERS):
            batch.live(obj)  # in place (tuples were rebuilt in their owner already)
            items = cast("dict[Any, Any]", obj).values() if issubclass(kind, dict) else obj
            stack.extend((v, level) for v in list(cast("Iterable[Any]", items)))
            continue
        if level >= depth or issubclass(kind, type):
            continue
        try:
            state = object.__getattribute__(obj, "__dict__")
        except AttributeError:
            continue
        if type(state) is not dict:
            continue
        batch.live(state)
        stack.extend((v, level + 1) for v in list(state.values()) if type(v) not in _SKIP)


_SKIP = frozenset({
    types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.CodeType, str, bytes, int, float, bool, type(None),
})


class TargetParticipant:
    """Rebuilds the served app when a batch changes what builds it; swaps it at commit.

    * ``module:app``: when anything re-executes, the app's module re-executes
      too (so registrations run again on a fresh app, as at start-up); the
      staged module's ``app`` is the new app. Body edits are patched in place
      and keep the app.
    * ``--factory``: the same, and any edit to the factory's module
      re-executes it; the staged factory is called while staging.
    """

    name = "app"
    order = 200  # after adapters that claim files (templates) or require modules

    def __init__(self, slot: AppSlot, framework: Framework | None = None) -> None:
        self.slot = slot
        self.framework: Framework = framework if framework is not None else PlainFramework()
        self._new: dict[int, Any] = {}  # id(batch) -> the app it built
        self._retired: dict[int, Any] = {}

    def prepare(self, batch: Batch) -> None:
        module = self.slot.target.module
        factory_changed = self.slot.target.factory and module in batch.plan.changes
        if batch.plan.reexec or factory_changed:
            batch.require(module, f"builds the served app ({self.slot.target})")
        self.framework.prepare(batch, self.slot)

    def stage(self, batch: Batch) -> None:
        staged = batch.staged_module(self.slot.target.module)
        if staged is None:
            return
        app = self.slot.target.build(staged)
        if app is not self.slot.app:
            kind = app_kind(app)
            if kind != self.slot.kind:
                raise UsageError(
                    f"{self.slot.target} is now a {kind.upper()} app; it was"
                    f" {self.slot.kind.upper()} (this needs a restart of hotmod serve)"
                )
            self._new[id(batch)] = app

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        app = self._new.get(id(batch))
        if app is None:
            return
        self.framework.adopt(batch, app)
        app = batch.live(app)  # an app that is a function keeps its identity
        if app is self.slot.app:
            return
        self.framework.start(app)
        old = self.slot.app
        self.slot.swap(app, undo)
        undo.on_rollback(lambda: self.framework.retire(app))  # started, then rolled back
        self._retired[id(batch)] = old

    def committed(self, batch: Batch) -> None:
        self._new.pop(id(batch), None)
        old = self._retired.pop(id(batch), None)
        if old is not None:
            self.framework.retire(old)

    def abandon(self, batch: Batch) -> None:
        self._new.pop(id(batch), None)
        self._retired.pop(id(batch), None)

