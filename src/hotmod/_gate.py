"""The gate: one version per request (G4).

A readers-writer gate, aware of threads and of asyncio. Units of work
(requests, jobs) take the *read* side; the commit of a batch takes the
*write* side: it closes the gate to new work, waits for the work in flight to
finish (bounded by ``drain_timeout``), commits, and opens the gate again.
Work that arrived meanwhile waits for those few milliseconds and then runs
entirely on the new version.

Staging runs outside the gate: requests flow while a batch is compiled and
executed into staging modules; only the swap itself holds them.

Work still in flight when the drain times out (a long download, a stream)
does not stop the commit: it goes ahead, and the batch's report says how
many requests were still running. Long-lived connections never hold a commit
at all: a request that asks for an event stream (``Accept:
text/event-stream``, as every EventSource and SSE client sends) is not
waited for, and a WebSocket is released once accepted (see ``hotmod.wsgi``
and ``hotmod.asgi``).

Reentrant: work already inside the gate (a request calling another unit of
work) never waits for a commit that is waiting for it. A unit entered with
:meth:`Gate.reading` marks its context (so work it hands to child tasks and
worker threads is nested too); a request held by the middleware is found on
the stack of the thread or task that asks (see :func:`register_holder`): the
middleware sets no mark, as the mark would cost every request more than the
rest of the gate does.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from types import CodeType, FrameType, TracebackType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import asyncio

    from ._engine.batch import Batch

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT", "Gate", "GateParticipant", "default_gate", "register_holder",
]

DEFAULT_DRAIN_TIMEOUT = 10.0

# Read-side depth of ``reading()`` units in the running task (asyncio) or thread. A context
# variable, not a per-thread or per-task mark, because work a unit hands to a child task or
# to a worker thread (``anyio.to_thread``) runs in a copy of its context: it is nested work
# too and must not wait for a commit. The middleware does not set it: in a server, setting
# and resetting it cost each request about 1 % of a trivial endpoint's CPU time (2 % under
# Werkzeug, whose thread per connection creates a context at the first set).
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("hotmod_gate_depth", default=0)

# Code objects of frames that hold the gate's read side for a request (the middleware's
# ``__call__``); each such frame has the locals ``self`` (with ``_gate``) and ``key``.
_HOLDERS: set[CodeType] = set()


def register_holder(code: CodeType) -> None:
    """Say that frames running ``code`` hold a unit of work: locals ``self`` (whose
    ``_gate`` is the gate) and ``key`` (the unit's key, while it holds one)."""
    _HOLDERS.add(code)


def asks_for_stream(item: Mapping[str, Any] | None) -> bool:
    """Whether a unit's request (a WSGI environ or an ASGI scope) asks for an event
    stream: such a request is never waited for by a commit."""
    if item is None:
        return False
    accept = item.get("HTTP_ACCEPT")  # WSGI
    if accept is None:
        for name, value in item.get("headers", ()):  # ASGI: lower-case names
            if name == b"accept":
                accept = value.decode("latin-1")
                break
        else:
            return False
    return "text/event-stream" in accept


# The read side's fast path takes no lock; it relies on the GIL (see ``Gate``). A
# free-threaded build (3.13t, no GIL) takes the lock on every entry and exit instead.
_LOCK_FREE: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


class Gate:
    """Readers-writer gate; see the module docstring.

    The read side's fast path takes no lock. ``_inside`` maps a key to each
    unit of work inside the gate (the value is its request, or ``None``); a
    unit *first* stores its entry and *then* reads ``_closed``; a commit sets
    ``_closed`` (under the lock) and *then* counts the entries. Storing and
    deleting a dict item, and copying a dict's values, are each one step in C,
    atomic under the GIL (Python FAQ, "What kinds of global value mutation are
    thread-safe?"), and the GIL orders these steps as one sequence. So a unit
    that saw the gate open is already counted by the time the commit counts,
    and the commit waits for it; a unit that saw it closed takes its entry
    back (and wakes the commit, which may be waiting for that count) and
    waits for the gate to open. Leaving deletes the entry and, only while a
    commit waits, wakes it under the lock: the commit counts and starts
    waiting under that lock, so the wake-up cannot fall between the two.

    The middleware runs this fast path inline (``lock_free``): no call into
    the gate on a request's way, unless a commit holds it.
    """

    lock_free = True  # the middleware may store and delete entries itself

    def __new__(cls, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> Gate:
        # Without a GIL the fast path's ordering argument does not hold: lock instead.
        return super().__new__(cls if _LOCK_FREE or cls is not Gate else _LockedGate)

    def __init__(self, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        self.drain_timeout = drain_timeout
        self._lock = threading.Lock()  # the write side, and the read side's slow path
        self._cond = threading.Condition(self._lock)
        # One entry per unit of work inside the gate: its request (WSGI environ, ASGI
        # scope) or None; keyed by a number no other unit has.
        self._inside: dict[int, Mapping[str, Any] | None] = {}
        self.new_key: Callable[[], int] = itertools.count().__next__
        self._waiting = 0  # units of work held back by a commit now
        self._closed = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.swaps = 0  # commits made through this gate

    @property
    def in_flight(self) -> int:
        """Units of work inside the gate now."""
        return len(self._inside)

    @property
    def waiting(self) -> int:
        """Units of work held back by the commit holding the gate now."""
        return self._waiting

    @property
    def closed(self) -> bool:
        """True while a commit holds the gate."""
        return self._closed

    # -- the read side --------------------------------------------------------------------
    # ``enter`` returns the unit's key, ``exit`` takes it; ``item`` is the unit's request
    # (its Accept header decides whether a commit waits for it), ``outer`` the frame
    # from which to look for units this one is nested in (see ``_nested``).
    def enter(self, item: Mapping[str, Any] | None = None, outer: FrameType | None = None) -> int:
        """Take the read side, waiting (this thread) while a commit holds the gate."""
        key = self.new_key()
        self._inside[key] = item
        if self._closed:
            key = self.wait(key, item, outer)
        return key

    def wait(self, key: int, item: Mapping[str, Any] | None, outer: FrameType | None) -> int:
        """The slow path: a commit held the gate as unit ``key`` entered. Take its entry
        back and wait (this thread) for the gate to open, unless the unit is nested in
        one the commit waits for; return its key inside."""
        nested = self._nested(outer)
        with self._cond:
            self._back_out(key)
            return self._admit(item, nested)

    def _back_out(self, key: int) -> None:
        """Under the lock: take back an entry stored while a commit held the gate, and
        tell the commit, which may be counting on it."""
        del self._inside[key]
        self._cond.notify_all()

    def _admit(self, item: Mapping[str, Any] | None, nested: bool) -> int:
        """Under the lock: wait for the gate to open (unless ``nested``), then enter."""
        if not nested:
            self._waiting += 1
            while self._closed:
                self._cond.wait()
            self._waiting -= 1
        key = self.new_key()
        self._inside[key] = item  # under the lock: no commit can close meanwhile
        return key

    async def enter_async(
        self, item: Mapping[str, Any] | None = None, outer: FrameType | None = None
    ) -> int:
        """Take the read side, awaiting (not blocking the loop) while a commit holds it."""
        key = self.new_key()
        self._inside[key] = item
        if self._closed:
            key = await self.wait_async(key, item, outer)
        return key

    async def wait_async(
        self, key: int, item: Mapping[str, Any] | None, outer: FrameType | None
    ) -> int:
        """:meth:`wait` for a task: awaits the gate's opening without blocking its loop."""
        nested = self._nested(outer)
        with self._cond:
            self._back_out(key)
        return await self._admit_async(item, nested)

    async def _admit_async(self, item: Mapping[str, Any] | None, nested: bool) -> int:
        import asyncio  # here, not at start-up: only async servers need it

        while True:
            with self._lock:
                if nested or not self._closed:
                    key = self.new_key()
                    self._inside[key] = item  # under the lock: no commit can close meanwhile
                    return key
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
                self._waiting += 1
            try:
                await future
            finally:
                with self._lock:
                    self._waiting -= 1

    def try_enter(self) -> bool:
        """Take the read side if no commit holds the gate (or the running thread or task
        is inside already); give it back with :meth:`exit` (no key needed)."""
        key = self.new_key()
        self._inside[key] = None
        if self._closed and not self._nested(sys._getframe(1)):
            with self._cond:
                self._back_out(key)
            return False
        return True

    def exit(self, key: int | None = None) -> None:
        """Give the read side back (from any thread): unit ``key`` (a key no longer
        inside is ignored) or, with none, the latest unit entered with no request
        (``enter()`` or ``try_enter()`` called without arguments)."""
        self._inside.pop(self._anonymous() if key is None else key, None)
        if self._closed:
            self.wake()

    def _anonymous(self) -> int:
        """The latest unit entered with no request (-1: none)."""
        return next((key for key, item in reversed(list(self._inside.items())) if item is None), -1)

    def wake(self) -> None:
        """Tell a commit that may be waiting for the count that a unit has left."""
        with self._cond:
            self._cond.notify_all()

    def _nested(self, outer: FrameType | None) -> bool:
        """Whether the running thread or task is inside a unit a commit waits for: a
        ``reading()`` mark in its context, or a holder frame (see ``register_holder``)
        on its stack from ``outer`` down."""
        return _depth.get() > 0 or self._held_on_stack(outer) > 0

    def _held_on_stack(self, frame: FrameType | None) -> int:
        """How many units a commit waits for are held by frames from ``frame`` down."""
        inside, count = self._inside, 0
        while frame is not None:
            if frame.f_code in _HOLDERS:
                local = frame.f_locals
                key = local.get("key")
                if getattr(local.get("self"), "_gate", None) is self and key in inside:
                    count += not asks_for_stream(inside.get(key))
            frame = frame.f_back
        return count

    def _pending(self) -> int:
        """Units inside that a commit waits for (not those streaming events)."""
        return sum(1 for item in list(self._inside.values()) if not asks_for_stream(item))

    def pending_requests(self) -> list[str]:
        """The requests a commit would wait for now, as ``METHOD /path`` (for reports)."""
        described = []
        for item in list(self._inside.values()):
            if item is not None and not asks_for_stream(item):
                method = item.get("REQUEST_METHOD", item.get("method", "?"))
                path = item.get("PATH_INFO", item.get("path", "?"))
                described.append(f"{method} {path}")
        return described

    def reading(self) -> _Reading:
        """``with gate.reading():`` or ``async with gate.reading():`` around one unit of work."""
        return _Reading(self)

    # -- the write side -------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, timeout: float | None = None) -> Iterator[int]:
        """Close the gate, drain, and yield how many units are *still* in flight.

        New work waits until the block ends. Draining waits at most
        ``timeout`` seconds (default ``drain_timeout``); work of the calling
        thread itself is not waited for, nor are requests for event streams.
        """
        wait = self.drain_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        own = _depth.get() + self._held_on_stack(sys._getframe(1))
        with self._cond:
            self._closed = True  # first close, then count: see the class docstring
            while (pending := self._pending()) > own:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            still = pending - own
        try:
            yield still
        finally:
            with self._cond:
                self._closed = False
                self.swaps += 1
                waiters, self._waiters = self._waiters, []
                self._cond.notify_all()
            for loop, future in waiters:
                with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                    loop.call_soon_threadsafe(_wake, future)


class _LockedGate(Gate):
    """The gate for builds without a GIL: every entry and exit takes the lock."""

    lock_free = False

    def enter(self, item: Mapping[str, Any] | None = None, outer: FrameType | None = None) -> int:
        with self._cond:
            return self._admit(item, not self._closed or self._nested(outer))

    async def enter_async(
        self, item: Mapping[str, Any] | None = None, outer: FrameType | None = None
    ) -> int:
        with self._cond:
            if not self._closed:
                return self._admit(item, True)
        return await self._admit_async(item, self._nested(outer))

    def try_enter(self) -> bool:
        with self._cond:
            if self._closed and not self._nested(sys._getframe(1)):
                return False
            self._inside[self.new_key()] = None
            return True

    def exit(self, key: int | None = None) -> None:
        with self._cond:
            self._inside.pop(self._anonymous() if key is None else key, None)
            if self._closed:
                self._cond.notify_all()


def app_reader(app: Any, app_getter: bool) -> Callable[[], Any]:
    """For the middleware: what returns the app to call for a request (``app``
    itself is that callable when ``app_getter``; an app swapped at commit then
    serves the next request)."""
    if not app_getter:
        return lambda: app
    if isinstance(type(app).__dict__.get("__call__"), types.FunctionType):
        # An object with a ``__call__`` method (the served app's slot): its bound method,
        # which the interpreter calls faster than the object itself.
        return cast("Callable[[], Any]", app.__call__)
    return cast("Callable[[], Any]", app)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Reading:
    """The read side as a (sync or async) context manager."""

    __slots__ = ("_gate", "_key", "_token")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._key = -1
        self._token: contextvars.Token[int] | None = None

    def __enter__(self) -> None:
        self._key = self._gate.enter(None, sys._getframe(1))
        self._token = _depth.set(_depth.get() + 1)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()

    async def __aenter__(self) -> None:
        self._key = await self._gate.enter_async(None, sys._getframe(1))
        self._token = _depth.set(_depth.get() + 1)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._token is not None:
            _depth.reset(self._token)
            self._token = None
        self._gate.exit(self._key)


class GateParticipant:
    """The gate's part in a transaction: every commit (and rollback) runs closed."""

    name = "gate"
    order = 0  # held first, released last

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def prepare(self, batch: Batch) -> None:
        pass

    def stage(self, batch: Batch) -> None:
        pass

    def commit(self, batch: Batch, undo: object) -> None:
        pass

    @contextlib.contextmanager
    def hold(self, batch: Batch) -> Iterator[None]:
        with self.gate.writing() as still:
            if still:
                held = self.gate.pending_requests()
                more = ", ..." if len(held) > 3 else ""
                named = f" ({', '.join(held[:3])}{more})" if held else ""
                batch.notes.append(
                    f"{still} request(s) still in flight after the {self.gate.drain_timeout:g} s"
                    f" drain{named}; they finish on whatever code they call from now on"
                )
            yield

    def committed(self, batch: Batch) -> None:
        pass

    def abandon(self, batch: Batch) -> None:
        pass


_DEFAULT = Gate()


def default_gate() -> Gate:
    """The process's gate: the one ``hotmod.gate()``, the middleware and the Reloader share."""
    return _DEFAULT
