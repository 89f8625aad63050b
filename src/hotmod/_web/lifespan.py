"""ASGI lifespan for a served app that a batch may replace.

A server runs the lifespan protocol once, for the app it started with. Under
hotmod the app object is replaced when its module re-executes, so the
lifespan belongs to the slot, not to one app: the gate middleware hands the
server's lifespan to :meth:`Lifespans.serve`, which starts the app being
served on ``lifespan.startup`` and stops whichever app is served on
``lifespan.shutdown``. Between the two, a commit that swaps the app calls

* :meth:`Lifespans.start` (new app, before the swap, gate held): its startup
  runs on the server's loop (``slot.loop``); ``lifespan.startup.failed`` or
  an exception fails the batch, which rolls back;
* :meth:`Lifespans.retire` (old app, after the commit, gate released): its
  shutdown runs, errors are logged. A rolled-back new app is retired too.

Each app's lifespan gets its own ``state`` dict; the one the server copies
into requests (``request.state``) is refilled with the state of the app
being served (and put back if the batch rolls back).

A server that runs no lifespan (``--lifespan off``) never calls ``serve``:
then replaced apps are not started either, as a fresh start would not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import ReloadError

if TYPE_CHECKING:
    from ..asgi import Message, Receive, Scope, Send
    from .slot import AppSlot

logger = logging.getLogger(__name__)

#: How long a new app's startup may take before the batch fails (seconds).
STARTUP_TIMEOUT_S = 60.0
#: How long an old app's shutdown may take before it is abandoned (seconds).
SHUTDOWN_TIMEOUT_S = 30.0

# How long a lifespan coroutine may take to return once it has answered.
_FINISH_S = 5.0

_ASGI = {"version": "3.0", "spec_version": "2.0"}


@dataclass
class _Running:
    """One app's lifespan coroutine, with the queues it talks through."""

    app: Any
    task: asyncio.Future[Any]
    inbox: asyncio.Queue[Message]
    outbox: asyncio.Queue[Message]

    async def reply(self) -> Message | None:
        """The app's next message, or None if its lifespan ended without one.

        Cancelled (a timeout), it cancels the app's lifespan too.
        """
        get = asyncio.ensure_future(self.outbox.get())
        try:
            await asyncio.wait({get, self.task}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            get.cancel()
            self.task.cancel()
            raise
        if get.done():
            return get.result()
        get.cancel()
        return None

    async def finish(self) -> None:
        """Let the lifespan coroutine end (it does once it has answered; bounded)."""
        await asyncio.wait({self.task}, timeout=_FINISH_S)
        self.error()  # retrieved: asyncio does not log it as never retrieved

    def error(self) -> BaseException | None:
        if not self.task.done() or self.task.cancelled():
            return None
        return self.task.exception()


class Lifespans:
    """The lifespans of the apps a slot serves (see the module docstring)."""

    def __init__(self, slot: AppSlot) -> None:
        self.slot = slot
        self.enabled = False  # the server runs lifespans
        self._running: dict[int, _Running] = {}
        self._server_state: dict[str, Any] | None = None
        # Whose state the server's dict holds, and what it held before (for a rollback).
        self._owner: object = None
        self._previous: list[tuple[object, dict[str, Any]]] = []

    # -- the server's side (on its loop) --------------------------------------------------
    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The server's lifespan: start the served app, later stop the one served then."""
        state = scope.get("state")
        self._server_state = state if isinstance(state, dict) else None
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        self.enabled = True
        app = self.slot.app
        try:
            await self._startup(app, self._server_state)
        except ReloadError as exc:
            self.enabled = False
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        self._owner = app
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        self.enabled = False
        failures = []
        for running in list(self._running.values()):
            failure = await self._shutdown(running)
            if failure:
                failures.append(failure)
        if failures:
            await send({"type": "lifespan.shutdown.failed", "message": "; ".join(failures)})
        else:
            await send({"type": "lifespan.shutdown.complete"})

    async def _startup(self, app: Any, state: dict[str, Any] | None) -> None:
        scope: dict[str, Any] = {"type": "lifespan", "asgi": dict(_ASGI)}
        if state is not None:
            scope["state"] = state
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: asyncio.Queue[Message] = asyncio.Queue()
        task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
        running = _Running(app, task, inbox, outbox)
        await running.inbox.put({"type": "lifespan.startup"})
        message = await running.reply()
        if message is None:
            error = running.error()
            if error is not None:
                # No lifespan support (an app that raises on this scope type): as
                # uvicorn's "auto" mode does, carry on without one.
                logger.debug("hotmod: %r has no lifespan (%r)", app, error)
            return
        if message["type"] == "lifespan.startup.failed":
            await running.finish()
            raise ReloadError(
                f"the new app's startup failed: {message.get('message') or 'no message'}",
                phase="lifespan",
            )
        self._running[id(app)] = running

    async def _shutdown(self, running: _Running) -> str | None:
        """Stop one app's lifespan; a failure is returned as text (and logged)."""
        self._running.pop(id(running.app), None)
        if running.task.done():
            return None
        await running.inbox.put({"type": "lifespan.shutdown"})
        message = await running.reply()
        await running.finish()
        if message is not None and message["type"] == "lifespan.shutdown.failed":
            text = str(message.get("message") or "shutdown failed")
            logger.error("hotmod: an old app's shutdown failed: %s", text)
            return text
        return None

    # -- the commit's side (the reloader's thread) ----------------------------------------
    def start(self, app: Any) -> None:
        """Run ``app``'s startup on the server's loop; raise if it fails (the batch fails)."""
        loop = self.slot.loop
        if not self.enabled or loop is None or id(app) in self._running:
            return
        state: dict[str, Any] = {}
        self._call(loop, self._startup(app, state), STARTUP_TIMEOUT_S, "startup")
        server = self._server_state
        if server is not None:
            self._previous.append((self._owner, dict(server)))
            server.clear()
            server.update(state)
        self._owner = app

    def retire(self, app: Any) -> None:
        """Run ``app``'s shutdown (an old app after the commit, or a new one rolled back)."""
        if app is self._owner and self._previous:
            # A new app rolled back: the server's state is the old app's again.
            self._owner, before = self._previous.pop()
            if self._server_state is not None:
                self._server_state.clear()
                self._server_state.update(before)
        else:
            self._previous.clear()
        running = self._running.get(id(app))
        loop = self.slot.loop
        if running is None or loop is None or loop.is_closed():
            return
        try:
            self._call(loop, self._shutdown(running), SHUTDOWN_TIMEOUT_S, "shutdown")
        except ReloadError as exc:
            logger.error("hotmod: %s", exc)

    def _call(
        self, loop: asyncio.AbstractEventLoop, coro: Any, timeout: float, what: str
    ) -> None:
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            coro.close()
            raise ReloadError(
                f"cannot run an app's lifespan {what} from its own event loop's thread"
                " (apply reloads from another thread)", phase="commit",
            )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            future.result(timeout=timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise ReloadError(
                f"the app's lifespan {what} took longer than {timeout:g} s", phase="lifespan"
            ) from exc
