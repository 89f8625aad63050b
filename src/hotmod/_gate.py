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
many requests were still running. Long-lived streams (SSE, WebSockets) are
released by the middleware once their response has started, so they never
hold a commit at all (see ``hotmod.wsgi`` and ``hotmod.asgi``).

Reentrant: work already inside the gate (a request calling another unit of
work) never waits for a commit that is waiting for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from ._engine.batch import Batch

__all__ = ["DEFAULT_DRAIN_TIMEOUT", "Gate", "GateParticipant", "default_gate"]

DEFAULT_DRAIN_TIMEOUT = 10.0

# Read-side depth of the running task (asyncio) or thread (contextvars are per thread too).
# A context variable, not a per-thread or per-task mark, because work a request hands to
# a child task or to a worker thread (``anyio.to_thread``, FastAPI's sync routes) runs in
# a copy of the request's context: it is nested work too and must not wait for a commit.
# Setting and resetting it costs about 0.2 us.
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("hotmod_gate_depth", default=0)

# The read side's fast path takes no lock; it relies on the GIL (see ``Gate``). A
# free-threaded build (3.13t, no GIL) takes the lock on every entry and exit instead.
_LOCK_FREE: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


class Gate:
    """Readers-writer gate; see the module docstring.

    The read side's fast path takes no lock. ``_inside`` holds one item per
    unit of work inside the gate; a unit *first* appends its item and *then*
    reads ``_closed``; a commit sets ``_closed`` (under the lock) and *then*
    reads ``len(_inside)``. ``list.append``, ``list.pop`` and ``len`` of a
    list are each one call into C, atomic under the GIL (Python FAQ, "What
    kinds of global value mutation are thread-safe?"), and the GIL orders
    these steps as one sequence. So a unit that saw the gate open is already
    counted by the time the commit reads the count, and waits for it; a unit
    that saw it closed takes its item back (and wakes the commit, which may be
    waiting for that count) and waits for the gate to open. Leaving pops the
    item and, only while a commit waits, wakes it under the lock: the commit
    reads the count and starts waiting under that lock, so the wake-up cannot
    fall between the two.
    """

    def __new__(cls, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> Gate:
        # Without a GIL the fast path's ordering argument does not hold: lock instead.
        return super().__new__(cls if _LOCK_FREE or cls is not Gate else _LockedGate)

    def __init__(self, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        self.drain_timeout = drain_timeout
        self._lock = threading.Lock()  # the write side, and the read side's slow path
        self._cond = threading.Condition(self._lock)
        self._inside: list[None] = []  # one item per unit of work inside the gate
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
    # ``enter``/``exit`` count units of work; the ``_depth`` mark (set by ``reading()``
    # and by the middleware) says the running thread or task is inside one, so that
    # nested work never waits for a commit that waits for it.
    def enter(self) -> None:
        """Take the read side, waiting (this thread) while a commit holds the gate."""
        self._inside.append(None)
        if self._closed and not _depth.get():
            self._back_out()
            with self._cond:
                self._waiting += 1
                while self._closed:
                    self._cond.wait()
                self._waiting -= 1
                self._inside.append(None)  # under the lock: no commit can close meanwhile

    def try_enter(self) -> bool:
        """Take the read side if no commit holds the gate (or we are inside already)."""
        self._inside.append(None)
        if self._closed and not _depth.get():
            self._back_out()
            return False
        return True

    async def enter_async(self) -> None:
        """Take the read side, awaiting (not blocking the loop) while a commit holds it."""
        if self.try_enter():
            return
        import asyncio  # here, not at start-up: only async servers need it

        while True:
            with self._lock:
                if not self._closed:
                    self._inside.append(None)  # under the lock: no commit can close meanwhile
                    return
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
                self._waiting += 1
            try:
                await future
            finally:
                with self._lock:
                    self._waiting -= 1

    def exit(self) -> None:
        """Give the read side back (from any thread)."""
        self._inside.pop()
        if self._closed:
            with self._cond:  # a commit may wait for this one
                self._cond.notify_all()

    def _back_out(self) -> None:
        """Take back an item appended while a commit holds the gate, and tell the commit."""
        with self._cond:
            self._inside.pop()
            self._cond.notify_all()

    def reading(self) -> _Reading:
        """``with gate.reading():`` or ``async with gate.reading():`` around one unit of work."""
        return _Reading(self)

    # -- the write side -------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, timeout: float | None = None) -> Iterator[int]:
        """Close the gate, drain, and yield how many units are *still* in flight.

        New work waits until the block ends. Draining waits at most
        ``timeout`` seconds (default ``drain_timeout``); work of the calling
        thread itself is not waited for.
        """
        wait = self.drain_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        own = _depth.get()
        inside = self._inside
        with self._cond:
            self._closed = True  # first close, then count: see the class docstring
            while len(inside) > own:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            still = len(inside) - own
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

    def enter(self) -> None:
        with self._cond:
            if self._closed and not _depth.get():
                self._waiting += 1
                while self._closed:
                    self._cond.wait()
                self._waiting -= 1
            self._inside.append(None)

    def try_enter(self) -> bool:
        with self._lock:
            if self._closed and not _depth.get():
                return False
            self._inside.append(None)
            return True

    def exit(self) -> None:
        with self._cond:
            self._inside.pop()
            if self._closed:
                self._cond.notify_all()


def app_reader(app: Any, app_getter: bool) -> Callable[[], Any]:
    """For the middleware: what returns the app to call for a request (``app``
    itself is that callable when ``app_getter``; an app swapped at commit then
    serves the next request)."""
    return app if app_getter else lambda: app


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Reading:
    """The read side as a (sync or async) context manager."""

    __slots__ = ("_gate", "_token")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._token: contextvars.Token[int] | None = None

    def __enter__(self) -> None:
        self._gate.enter()
        self._token = _depth.set(_depth.get() + 1)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()

    async def __aenter__(self) -> None:
        await self._gate.enter_async()
        self._token = _depth.set(_depth.get() + 1)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._token is not None:
            _depth.reset(self._token)
            self._token = None
        self._gate.exit()


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
                batch.notes.append(
                    f"{still} request(s) still in flight after the {self.gate.drain_timeout:g} s"
                    " drain; they finish on whatever code they call from now on"
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
