"""A ``hotmod serve`` worker: imports the app, serves it under a Reloader.

Started by the supervisor (never by hand) with the listening socket and its
end of the control channel inherited (see :mod:`.supervisor`, :mod:`.ipc`).
The worker

1. imports the target with a :class:`~hotmod.Reloader` installed, the current
   folder first on ``sys.path`` (as uvicorn does);
2. serves it through the gate middleware from an :class:`AppSlot` that the
   reloader's batches swap (``frameworks.attach``), on Werkzeug (WSGI) or
   uvicorn (ASGI);
3. tells the supervisor READY once it accepts; asks it for a RESTART when a
   batch cannot be applied in place (and, until it is replaced, answers every
   later batch with a restart too: the change stays pending, so a failed new
   worker is retried at the next save);
4. on STOP (or when the supervisor is gone) stops accepting, drains, exits.

The user's code failing at start-up (a syntax error, an exception) does not
end the worker: it serves an error page and tells the supervisor FAILED; the
next change of a watched file asks for a restart. A target that cannot be
served at all (no such module or attribute, not an app, a missing extra) is
FATAL: one line, and the supervisor exits.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._engine.reloader import WATCHED_SUFFIXES, Reloader
from .._errors import RestartRequired, UsageError
from .._events import Outcome, ReloadResult, Reporter, Started, TerminalReporter
from .._run.report import Exited, RunJsonLinesReporter, RunReporter
from .._run.runner import _some_paths
from . import frameworks, servers
from .errorpage import ErrorPageASGI, ErrorPageWSGI, StartupError
from .ipc import Channel, Message
from .livereload import LiveReload
from .options import Env, ServeOptions
from .slot import AppSlot, Kind, Target, app_kind

if TYPE_CHECKING:
    from .._watch.watcher import Watcher

# Exit codes of a worker that cannot serve its target (the supervisor exits with them too).
EXIT_USAGE: Final = 2
EXIT_MISSING: Final = 1
# After draining, the process exits even if the app left non-daemon threads running.
_EXIT_GRACE_S: Final = 5.0
# Top-level packages whose absence is a missing extra, not an error in the app.
_EXTRAS: Final = {"flask": "flask", "werkzeug": "flask", "uvicorn": "asgi", "starlette": "asgi"}


class Fatal(UsageError):
    """The target cannot be served at all; ``exit_code`` for the supervisor."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PendingRestart:
    """Once a restart was asked for, every batch asks again instead of applying."""

    name = "serve-restart"
    order = 5

    def __init__(self) -> None:
        self.reason: str | None = None

    def prepare(self, batch: object) -> None:
        if self.reason is not None:
            raise RestartRequired(f"a restart is pending ({self.reason})")

    def stage(self, batch: object) -> None:
        pass

    def commit(self, batch: object, undo: object) -> None:
        pass

    def abandon(self, batch: object) -> None:
        pass


def build_served(
    slot: AppSlot, reloader: Reloader, options: ServeOptions, live: LiveReload | None = None
) -> Any:
    """The callable the server calls for each request: the slot behind the gate.

    With ``live`` (``--live-reload``), live reload wraps it, outside the gate,
    and takes part in the reloader's batches.
    """
    if slot.kind == "wsgi":
        from ..wsgi import GateMiddleware as WSGIGate

        served: Any = WSGIGate(slot, gate=reloader.gate, app_getter=True)
    else:
        from ..asgi import GateMiddleware as ASGIGate

        served = ASGIGate(slot, gate=reloader.gate, app_getter=True)
    if live is None:
        return served
    reloader.add_participant(live)
    return live.wsgi(served) if slot.kind == "wsgi" else live.asgi(served)


class Worker:
    """One worker process (see the module docstring)."""

    def __init__(self, options: ServeOptions, fd: int, control: Channel, restarts: int) -> None:
        self.options = options
        self.fd = fd
        self.control = control
        self.restarts = restarts
        self.pending = PendingRestart()
        self.server: servers.Server | None = None
        self.live = LiveReload() if options.live_reload else None
        self._stop = threading.Event()
        reporters: list[Reporter] = [TerminalReporter(verbosity=options.verbosity)]
        if options.json_events is not None:
            reporters.append(RunJsonLinesReporter(Path(options.json_events)))
        self.reporter = RunReporter(reporters)
        self.roots = [Path(w) for w in options.watch] or [Path.cwd()]

    # -- start-up ---------------------------------------------------------------------
    def run(self) -> int:
        threading.Thread(target=self._listen, name="hotmod-control", daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        sys.path.insert(0, os.getcwd())
        options = self.options
        target = Target.parse(options.target, factory=options.factory)
        reloader = Reloader(
            self.roots, debounce_ms=options.debounce_ms, exclude=options.exclude,
            strict=options.strict, reporter=self.reporter, on_restart=self._ask_restart,
        )
        reloader.gate.drain_timeout = options.drain_timeout
        reloader.add_participant(self.pending)
        reloader.install()
        try:
            app, kind = _load(target)
            slot = AppSlot(target, app, kind)
            frameworks.attach(reloader, slot)
            self.server = servers.make_server(
                kind, build_served(slot, reloader, options, self.live), self.fd, options
            )
        except Fatal as exc:
            reloader.uninstall()
            self.control.send(Message.FATAL, {"message": str(exc), "exit_code": exc.exit_code})
            return exc.exit_code
        except servers.MissingExtra as exc:
            reloader.uninstall()
            self.control.send(Message.FATAL, {"message": str(exc), "exit_code": EXIT_MISSING})
            return EXIT_MISSING
        except BaseException as exc:  # the user's code failed: serve the error page
            if isinstance(exc, KeyboardInterrupt):
                raise
            reloader.uninstall()
            return self._serve_error(StartupError.from_exception(exc))
        reloader.start(wait=True)

        def ready() -> None:
            if kind == "asgi":
                import asyncio

                with contextlib.suppress(RuntimeError):
                    slot.loop = asyncio.get_running_loop()
            self.reporter.started(Started(argv=options.argv, restarts=self.restarts))
            self.control.send(Message.READY, {
                "kind": kind, "server": self.server.name if self.server else "?",
                "url": options.url(),
            })

        try:
            code = self._serve(ready)
        finally:
            reloader.uninstall()
        if self.server.startup_failed and not self._stop.is_set():
            # uvicorn logged the app's traceback; serve the page until a fix.
            return self._serve_error(StartupError(
                "LifespanError", "the app's startup (ASGI lifespan) failed; its traceback is"
                " in the server's log above", None, None, "",
            ))
        return code

    def _serve_error(self, error: StartupError) -> int:
        """Serve the error page; a change of a watched file asks for a restart."""
        from .._watch.watcher import Watcher

        kind: Kind = "wsgi" if servers.available("wsgi") else "asgi"
        page: Any = ErrorPageWSGI(error) if kind == "wsgi" else ErrorPageASGI(error)
        try:
            self.server = servers.make_server(kind, page, self.fd, self.options)
        except servers.MissingExtra as exc:
            self.control.send(Message.FATAL, {"message": str(exc), "exit_code": EXIT_MISSING})
            return EXIT_MISSING
        self.reporter.exited(Exited(
            returncode=1, error_type=error.type, message=error.message, path=error.path,
            line=error.line, traceback=error.traceback, waiting=True,
        ))
        # Armed before FAILED is sent: a fix saved after the report is always seen.
        with Watcher(
            self.roots, debounce_ms=self.options.debounce_ms, exclude=self.options.exclude,
            suffixes=WATCHED_SUFFIXES,
        ) as watcher:
            threading.Thread(
                target=self._wait_for_fix, args=(watcher,), name="hotmod-watch", daemon=True
            ).start()

            def ready() -> None:
                self.control.send(Message.FAILED, error.to_json())

            return self._serve(ready)

    # -- serving ----------------------------------------------------------------------
    def _serve(self, ready: Any) -> int:
        assert self.server is not None
        if self._stop.is_set():
            return 0
        self.server.serve(ready)
        return 0

    def stop(self) -> None:
        """Stop accepting and drain (any thread, any number of times)."""
        self._stop.set()
        if self.live is not None:  # open pages' streams end (they would hold the drain)
            self.live.close()
        if self.server is not None:
            self.server.stop()

    def _listen(self) -> None:
        """The control channel: STOP (or the supervisor gone) stops the worker."""
        while True:
            messages = self.control.receive()
            if messages is None or any(m is Message.STOP for m, _ in messages):
                self.stop()
                return

    def _ask_restart(self, result: ReloadResult) -> None:
        reason = result.reason or "a restart was needed"
        if self.pending.reason is None:
            self.pending.reason = reason
        self.control.send(Message.RESTART, {"reason": reason})

    def _wait_for_fix(self, watcher: Watcher) -> None:
        try:
            for batch in watcher.batches(self._stop):
                result = ReloadResult(
                    Outcome.RESTART, paths=tuple(sorted(batch)),
                    reason=f"{_some_paths(batch)} changed after the app failed to start",
                )
                self.reporter.reloaded(result)
                self._ask_restart(result)
        except (RuntimeError, OSError) as exc:  # the native watcher gave up
            print(f"[hotmod] watching for a fix failed ({exc})", file=sys.stderr)


def _load(target: Target) -> tuple[Any, Kind]:
    """Import the target and build the app; :class:`Fatal` for what is not the app's fault."""
    try:
        module = importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        root = missing.partition(".")[0]
        if missing and (target.module == missing or target.module.startswith(missing + ".")):
            raise Fatal(f"cannot import {target.module!r}: no module named {missing!r}"
                        f" (looked in {os.getcwd()} and on sys.path)") from None
        if root in _EXTRAS:
            raise Fatal(
                f"{root} is not installed (imported by the app): pip install"
                f" 'hotmod[{_EXTRAS[root]}]'", EXIT_MISSING,
            ) from None
        raise
    try:
        found = target.find(module)
    except AttributeError:
        raise Fatal(f"module {target.module!r} has no attribute {target.attr!r}") from None
    if target.factory and not callable(found):
        raise Fatal(f"{target} is not callable: --factory needs a function returning the app")
    app = _call_factory(target, found) if target.factory else found
    what = f"what {target}() returned" if target.factory else str(target)
    if not callable(app):
        raise Fatal(f"{what} is not an app: {type(app).__name__} objects are neither WSGI"
                    " nor ASGI apps")
    try:
        kind = app_kind(app)
    except UsageError as exc:
        raise Fatal(str(exc)) from None
    if not servers.available(kind):
        raise servers.missing_extra(kind)
    return app, kind


def _call_factory(target: Target, factory: Any) -> Any:
    try:
        return factory()
    except Exception as exc:
        # Raised by the call itself (wrong signature: not a factory), not inside it.
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
            raise Fatal(f"cannot call {target}() to make the app: {exc}") from None
        raise


def main() -> None:
    """Entry point of a worker process (``python -c``, started by the supervisor)."""
    from ..cli import _log_to_stderr

    options = ServeOptions.from_env()
    _log_to_stderr(verbose=options.verbosity >= 2)
    control = Channel.from_fd(int(os.environ[Env.CONTROL_FD]))
    worker = Worker(options, int(os.environ[Env.LISTEN_FD]), control, int(os.environ[Env.RESTARTS]))
    code = worker.run()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    # Drained: the app's own non-daemon threads get a moment, then the process ends.
    exit_timer = threading.Timer(_EXIT_GRACE_S, os._exit, (code,))
    exit_timer.daemon = True
    exit_timer.start()
    sys.exit(code)
