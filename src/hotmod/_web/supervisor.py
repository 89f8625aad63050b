"""``hotmod serve``'s supervisor: owns the listening socket, runs no user code (G7).

The supervisor binds the socket once (TCP on host:port, or a unix socket)
and starts worker processes (:mod:`.serve`) that inherit it. A restart never
refuses a connection: the new worker starts while the old one serves; once
the new one reports READY (app imported, accepting) the old one is told to
STOP: it stops accepting and drains. Meanwhile both accept on the same
socket, and connections nobody accepted yet wait in its backlog, so clients
see latency, never a refused connection.

* A worker asks for a restart (RESTART) when an edit cannot be applied in
  place or installed packages changed.
* A new worker whose app fails to start (FAILED) leaves a healthy old worker
  serving: one report, and the restart is retried at the next change (the old
  worker asks again). With no healthy worker the failed one serves its error
  page until a fix is saved.
* A worker that dies unexpectedly is replaced (at most one start a second).
* SIGINT / SIGTERM stop every worker gracefully (drained), then exit 0; a
  second one kills them without waiting for the drain.
* Workers run in their own process group (Ctrl-C in a terminal reaches the
  supervisor alone) and stop by themselves when the supervisor is gone.

The roles follow hupper (parent owns the loop and the socket; workers report;
messages are named, :mod:`.ipc`); the code is ours.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Final

from .._errors import UsageError
from .ipc import Channel, Message
from .options import Env, ServeOptions

# Workers get this long beyond the drain timeout to exit before they are killed.
_KILL_GRACE_S: Final = 5.0
# A worker that dies is replaced, but not more often than this.
_RESPAWN_INTERVAL_S: Final = 1.0
_BACKLOG: Final = 2048
_WORKER_CODE: Final = "from hotmod._web.serve import main; main()"
EXIT_ERROR: Final = 1


class BindError(UsageError):
    """The listening socket cannot be made (port in use, bad host...)."""

    exit_code = EXIT_ERROR


class State(enum.Enum):
    STARTING = "starting"  # not ready yet
    SERVING = "serving"  # the app
    ERROR_PAGE = "error page"  # its app failed to start; serves the error page
    STOPPING = "stopping"  # told to stop, draining


@dataclass
class Worker:
    """One worker process, as the supervisor sees it."""

    proc: subprocess.Popen[bytes]
    channel: Channel
    number: int
    state: State = State.STARTING
    kill_at: float | None = None
    wants_restart: bool = False  # it asked for a restart (its change stays pending)
    info: dict[str, Any] = field(default_factory=dict)


def bind(options: ServeOptions) -> socket.socket:
    """The listening socket (non-blocking: the workers share it); :class:`BindError`."""
    where = options.url()
    try:
        if options.uds is not None:
            _clear_stale_unix_socket(options.uds)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = options.uds
        else:
            infos = socket.getaddrinfo(
                options.host, options.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except socket.gaierror as exc:
        raise BindError(f"cannot listen on {where}: unknown host ({exc.strerror})") from None
    try:
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"cannot listen on {where}: address already in use"
                " (another server is running there; choose another --port)"
            ) from None
        raise BindError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _clear_stale_unix_socket(path: str) -> None:
    """Remove a unix socket file nobody listens on (left by a killed server)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindError(f"cannot listen on unix:{path}: the file exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody answers: stale
    else:
        raise BindError(f"cannot listen on unix:{path}: address already in use")
    finally:
        probe.close()


class Supervisor:
    """Runs workers on one listening socket until stopped; see the module docstring."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.workers: list[Worker] = []
        self.started = 0  # workers started so far
        self.current: Worker | None = None  # the one serving (app or error page)
        self.candidate: Worker | None = None  # the one starting to replace it
        self.again = False  # a restart was asked for while the candidate started
        self.exit_code = 0
        self.stopping = False
        self._signalled = False
        self._forced = False
        self._announced = False
        self._respawn_at: float | None = None
        self._last_start = 0.0
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self.sock: socket.socket | None = None

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> int:
        """Bind, serve until SIGINT/SIGTERM (or a fatal start), return the exit code."""
        self.sock = bind(self.options)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start_worker()
            while not (self.stopping and not self.workers):
                self._step()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self._close()
        return self.exit_code

    def _step(self) -> None:
        timeout = self._next_deadline()
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 512)
                continue
            worker: Worker = key.data
            messages = worker.channel.receive()
            if messages is None:
                self._gone(worker)
            else:
                for message, payload in messages:
                    self._handle(worker, message, payload)
        if self._signalled and not self.stopping:
            self.stopping = True
            for worker in list(self.workers):
                self._retire(worker)
        now = time.monotonic()
        for worker in list(self.workers):
            if self._forced:
                worker.kill_at = now
            if worker.kill_at is not None and now >= worker.kill_at:
                with contextlib.suppress(OSError):
                    worker.proc.kill()
                worker.kill_at = None
        if self._respawn_at is not None and now >= self._respawn_at and not self.stopping:
            self._respawn_at = None
            self._start_worker()

    def _next_deadline(self) -> float:
        times = [w.kill_at for w in self.workers if w.kill_at is not None]
        if self._respawn_at is not None:
            times.append(self._respawn_at)
        if not times:
            return 1.0
        return max(0.0, min(times) - time.monotonic())

    def _on_signal(self, number: int, frame: types.FrameType | None) -> None:
        # Only noted here; the loop acts on it (a handler runs between any two bytecodes).
        # A second one (Ctrl-C again) does not wait for the drain.
        self._forced = self._signalled
        self._signalled = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    # -- workers --------------------------------------------------------------------------
    def _start_worker(self) -> None:
        assert self.sock is not None
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env[Env.OPTIONS] = self.options.to_env()
        env[Env.LISTEN_FD] = str(self.sock.fileno())
        env[Env.CONTROL_FD] = str(theirs.fileno())
        env[Env.RESTARTS] = str(self.started)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE],
                pass_fds=(self.sock.fileno(), theirs.fileno()),
                env=env,
                stdin=subprocess.DEVNULL,
                # Its own process group: Ctrl-C reaches the supervisor only, which
                # then stops the workers in order.
                process_group=0,
            )
        finally:
            theirs.close()
        self.started += 1
        self._last_start = time.monotonic()
        worker = Worker(proc, Channel(ours), self.started)
        self.workers.append(worker)
        self._selector.register(ours, selectors.EVENT_READ, worker)
        self.candidate = worker
        self.again = False

    def _retire(self, worker: Worker) -> None:
        """Tell ``worker`` to stop accepting, drain and exit (killed if it takes too long)."""
        if worker.state is State.STOPPING:
            return
        worker.state = State.STOPPING
        worker.kill_at = time.monotonic() + self.options.drain_timeout + _KILL_GRACE_S
        if not worker.channel.send(Message.STOP):
            with contextlib.suppress(OSError):
                worker.proc.terminate()
        if worker is self.current:
            self.current = None
        if worker is self.candidate:
            self.candidate = None

    def _promote(self, worker: Worker, state: State) -> None:
        old, self.current = self.current, worker
        worker.state = state
        self.candidate = None
        if old is not None and old is not worker:
            self._retire(old)
        if worker.wants_restart:  # an edit it saw while starting needs a restart
            self._start_worker()

    def _handle(self, worker: Worker, message: Message, payload: dict[str, Any]) -> None:
        if message is Message.RESTART:
            self._restart_asked(worker, payload)
        elif worker is not self.candidate or self.stopping:
            return  # a late report of a worker already being replaced or stopped
        elif message is Message.READY:
            worker.info = payload
            self._promote(worker, State.SERVING)
            if not self._announced:
                self._announced = True
                self._say(
                    f"serving {self.options.target} ({str(payload.get('kind', '')).upper()},"
                    f" {payload.get('server')}) on {self.options.url(self._port())};"
                    " press Ctrl-C to stop"
                )
        elif message is Message.FAILED:
            self._failed(worker, payload)
        elif message is Message.FATAL:
            self._fatal(worker, payload)

    def _restart_asked(self, worker: Worker, payload: dict[str, Any]) -> None:
        if self.stopping or worker.state is State.STOPPING:
            return
        worker.wants_restart = True
        if worker is self.current and self.candidate is not None:
            self.again = True  # retried if the candidate fails to start
        elif worker is self.current:
            self._start_worker()

    def _failed(self, worker: Worker, error: dict[str, Any]) -> None:
        where = f"{error['path']}: " if error.get("path") else ""
        if where and error.get("line"):
            where = f"{error['path']}:{error['line']}: "
        self._say(
            f"{self.options.target} failed to start: {where}{error.get('type')}:"
            f" {error.get('message')}"
        )
        traceback = str(error.get("traceback") or "").rstrip()
        if traceback:
            print(traceback, file=sys.stderr, flush=True)
        if self.current is not None and self.current.state is State.SERVING:
            self._say("still serving the previous version; saving a fix retries the restart")
            self._retire(worker)
            if self.again:
                self._start_worker()
        else:
            self._say(
                f"serving an error page on {self.options.url(self._port())} until a fix is saved"
            )
            self._promote(worker, State.ERROR_PAGE)

    def _fatal(self, worker: Worker, payload: dict[str, Any]) -> None:
        message = str(payload.get("message", "cannot serve the app"))
        self._retire(worker)
        if self.current is None:
            print(f"hotmod: error: {message}", file=sys.stderr, flush=True)
            self.exit_code = int(payload.get("exit_code", EXIT_ERROR))
            self.stopping = True
            for other in self.workers:
                self._retire(other)
        else:
            self._say(f"the new version cannot be served: {message}")
            self._say("still serving the previous version; saving a fix retries the restart")

    def _gone(self, worker: Worker) -> None:
        """``worker``'s channel closed: it exited (or is about to)."""
        self._selector.unregister(worker.channel.sock)
        worker.channel.close()
        try:  # its end closes as it exits
            code = worker.proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            code = worker.proc.wait()
        self.workers.remove(worker)
        if worker.state is State.STOPPING or self.stopping:
            return
        if worker is self.candidate:
            self.candidate = None
            self._say(f"the new worker exited (code {code}) before it was ready")
            if self.current is None or self.again:
                self._schedule_respawn()
            return
        if worker is self.current:
            self.current = None
            self._say(f"the worker exited unexpectedly (code {code}); starting a new one")
            self._schedule_respawn()

    def _schedule_respawn(self) -> None:
        if self.candidate is None:
            self._respawn_at = max(time.monotonic(), self._last_start + _RESPAWN_INTERVAL_S)

    def _port(self) -> int:
        if self.sock is None or self.options.uds is not None:
            return self.options.port
        return int(self.sock.getsockname()[1])

    # -- helpers --------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.options.verbosity >= 0:
            print(f"[hotmod] {text}", file=sys.stderr, flush=True)

    def _close(self) -> None:
        for worker in self.workers:  # only after an error in the loop itself
            with contextlib.suppress(OSError):
                worker.proc.kill()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.sock is not None:
            self.sock.close()
            if self.options.uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.options.uds)


def serve(options: ServeOptions) -> int:
    """``hotmod serve``: supervise workers serving ``options.target``; the exit code."""
    return Supervisor(options).run()
