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
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("hotmod_gate_depth", default=0)


class Gate:
    """Readers-writer gate; see the module docstring."""

    def __init__(self, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        self.drain_timeout = drain_timeout
        self._lock = threading.Lock()  # the fast path takes only this
        self._cond = threading.Condition(self._lock)
        self._readers = 0
        self._waiting = 0  # units of work held back by a commit now
        self._closed = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.swaps = 0  # commits made through this gate

    @property
    def in_flight(self) -> int:
        """Units of work inside the gate now."""
        return self._readers

    @property
    def waiting(self) -> int:
        """Units of work held back by the commit holding the gate now."""
        return self._waiting

    @property
    def closed(self) -> bool:
        """True while a commit holds the gate."""
        return self._closed

    # -- the read side --------------------------------------------------------------------
    # ``enter``/``exit`` count units of work; ``mark_inside()`` marks the running
    # thread or task as inside one, so that nested work never waits for a
    # commit that waits for it. ``reading()`` does both.
    def enter(self) -> None:
        """Take the read side, waiting (this thread) while a commit holds the gate."""
        with self._lock:
            if not self._closed or _depth.get():
                self._readers += 1
                return
        with self._cond:
            self._waiting += 1
            while self._closed:
                self._cond.wait()
            self._waiting -= 1
            self._readers += 1

    def try_enter(self) -> bool:
        """Take the read side if no commit holds the gate (or we are inside already)."""
        with self._lock:
            if not self._closed or _depth.get():
                self._readers += 1
                return True
        return False

    async def enter_async(self) -> None:
        """Take the read side, awaiting (not blocking the loop) while a commit holds it."""
        while True:
            with self._lock:
                if not self._closed or _depth.get():
                    self._readers += 1
                    return
                import asyncio  # here, not at start-up: only async servers need it

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
        with self._lock:
            self._readers -= 1
            if self._closed and self._readers <= 0:
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
        with self._cond:
            self._closed = True
            while self._readers > own:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            still = self._readers - own
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


def app_reader(app: Any, app_getter: bool) -> Callable[[], Any]:
    """For the middleware: what returns the app to call for a request (``app``
    itself is that callable when ``app_getter``; an app swapped at commit then
    serves the next request)."""
    return app if app_getter else lambda: app


def mark_inside() -> contextvars.Token[int]:
    """Mark the running thread or task as inside a unit of work (for reentrancy);
    give the token back to :func:`mark_outside` in the same thread or task."""
    return _depth.set(_depth.get() + 1)


def mark_outside(token: contextvars.Token[int]) -> None:
    _depth.reset(token)


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
