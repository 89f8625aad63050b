"""Watch: debounced batches of changed source files under the project roots.

The first box of watch → plan → stage → commit → report. A :class:`Watcher`
watches its root directories recursively through watchfiles (the Rust
``notify`` backend: inotify, FSEvents, ReadDirectoryChangesW) and hands out
*batches*: sets of absolute, resolved paths of files that were added, modified
or deleted, grouped by a short quiet period.

Why directories and not files: editors save by writing a temporary file and
renaming it over the target (``os.replace``, ``sed -i``, vim, JetBrains). A
watch on the file's inode never sees that; a watch on its directory sees the
target name appear, which we report as a change of the target.

Only paths that can matter to the program pass the filter: the right suffix,
not under an ignored directory (``__pycache__``, VCS folders, virtual
environments, site-packages, build output), not matching an ``exclude`` glob,
not an editor's lock or scratch copy. Everything else (a log file rewritten
every millisecond in the project folder) is dropped in a few hundred
nanoseconds and never wakes the consumer.

Only watchfiles' native extension is loaded, not the watchfiles package (see
:mod:`hotmod._watch.native`): the program run under hotmod must not find
watchfiles' dependencies in its ``sys.modules``.

Threads: watchfiles' ``RustNotify`` collects raw events on its own native
thread. A small daemon *pump* thread of ours drains them, filters them and adds
the survivors to a pending set; :meth:`Watcher.poll_once` waits on that set.
The pump exists because the only ``RustNotify.watch`` return that never drops
an event is a batch of changes: its ``timeout`` and ``stop`` returns clear the
native change set *after* checking it, so an event landing in between would be
lost. The pump therefore waits with no timeout and is stopped only on close.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal

from .._errors import UsageError
from .native import load_rust_notify
from .pathfilter import DEFAULT_IGNORED_DIRS, PathFilter

if TYPE_CHECKING:
    from watchfiles._rust_notify import RustNotify

__all__ = ["DEFAULT_IGNORED_DIRS", "Watcher"]

logger = logging.getLogger(__name__)

# watchfiles' RustNotify sleeps ``step`` ms between looks at the native change
# set and returns once a look finds no new distinct change: a first event is
# handed over 1-2 steps after it happens. Its finest granularity is 1 ms; that
# costs one wake-up of the pump per millisecond (~1-2 % of a core), the price of
# a save-to-live target of 10 ms.
_STEP_MS: Final = 1
# poll_once's waits and batches()' stop checks are sliced to this, so a set stop
# event is noticed within ~20 ms.
_SLICE_S: Final = 0.02
# After this many backend failures in a row the pump gives up.
_MAX_RESTARTS: Final = 5

def _force_polling_from_env() -> tuple[bool, int]:
    """Honour watchfiles' documented override for file systems without events.

    We never force polling ourselves (it costs ``poll_delay`` of latency), but
    ``WATCHFILES_FORCE_POLLING=1`` is how users of network mounts and WSL's
    ``/mnt/c`` already tell watchfiles-based tools to poll.
    """
    value = os.environ.get("WATCHFILES_FORCE_POLLING", "")
    force = bool(value) and value.lower() not in {"false", "disable", "disabled"}
    delay = os.environ.get("WATCHFILES_POLL_DELAY_MS", "")
    return force, int(delay) if delay.isdecimal() else 300


def _open_notify(roots: tuple[str, ...], recursive: bool = True) -> RustNotify:
    """Start the native watcher on ``roots``; watching is live when it returns."""
    force_polling, poll_delay_ms = _force_polling_from_env()
    rust_notify = load_rust_notify()
    try:
        return rust_notify(
            list(roots),
            bool(os.environ.get("WATCHFILES_DEBUG")),
            force_polling,
            poll_delay_ms,
            recursive,
            True,  # skip unreadable sub-directories instead of failing
        )
    except FileNotFoundError as exc:  # a root vanished since we resolved it
        raise UsageError(f"cannot watch {', '.join(roots)}: {exc}") from exc


class _Shared:
    """State shared by the pump thread and the consumer, guarded by ``cond``.

    Kept apart from :class:`Watcher` so the pump holds no reference to the
    watcher: a watcher dropped without ``close()`` is collected and its
    finalizer stops the pump.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.closing = threading.Event()
        self.pending: set[str] = set()
        self.first_seen = 0.0  # monotonic time the oldest pending path arrived
        self.last_seen = 0.0  # monotonic time the newest pending path arrived
        self.error: BaseException | None = None

    def add(self, paths: set[str], quiet_s: float) -> None:
        """Add changes the native watcher handed over after ``quiet_s`` without a new one."""
        seen = time.monotonic() - quiet_s  # the quiet period runs from the change, not from now
        with self.cond:
            if not self.pending:
                self.first_seen = seen
            self.pending |= paths
            self.last_seen = max(self.last_seen, seen)
            self.cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.error = error
            self.cond.notify_all()

    def stop(self) -> None:
        self.closing.set()
        with self.cond:
            self.cond.notify_all()


def _pump(
    shared: _Shared,
    notify: RustNotify,
    make_notify: Callable[[], RustNotify],
    path_filter: PathFilter,
    rust_debounce_ms: int,
    step_ms: int = _STEP_MS,
) -> None:
    """Move filtered changes from the native watcher into ``shared`` until closed."""
    failures = 0
    try:
        while not shared.closing.is_set():
            try:
                # timeout 0: wait until changes or stop; see the module docstring.
                raw = notify.watch(rust_debounce_ms, step_ms, 0, shared.closing)
            except RuntimeError as exc:
                # e.g. a file name that is not valid UTF-8 appeared: the native
                # watcher keeps that error for good, so start a fresh one.
                failures += 1
                if failures > _MAX_RESTARTS:
                    logger.error("file watcher failed %d times, giving up: %s", failures, exc)
                    shared.fail(exc)
                    return
                logger.warning(
                    "file watcher failed (%s); restarting it: changes made in the last"
                    " few milliseconds may have been missed",
                    exc,
                )
                notify.close()
                shared.closing.wait(0.01 * failures)
                notify = make_notify()
                continue
            if isinstance(raw, str):  # "stop"; "signal" cannot reach a non-main thread
                continue
            failures = 0
            accepted = path_filter.filter(raw)
            if accepted:
                # The native side hands changes over once a step passed with no
                # new one: that step is part of the quiet period already.
                shared.add(accepted, step_ms / 1000)
            elif logger.isEnabledFor(logging.DEBUG):
                logger.debug("ignored %d change(s)", len(raw))
    except BaseException as exc:
        logger.exception("file watcher stopped")
        shared.fail(exc)
    finally:
        notify.close()


class Watcher:
    """Watch directory trees and yield batches of changed source files.

    ``roots`` are directories, watched recursively; each must exist (else
    :class:`~hotmod.UsageError`, naming it). Roots inside another root are
    merged into it. Watching is live when the constructor returns: a change
    made after it is never missed.

    A path is reported when it ends with one of ``suffixes`` (default
    ``(".py",)``), lies under a root but not under a directory named in
    ``ignored_dirs`` (default :data:`DEFAULT_IGNORED_DIRS`) or under a virtual
    environment (a directory holding ``pyvenv.cfg`` or ``conda-meta``), and
    matches none of the ``exclude`` globs (:mod:`fnmatch` syntax, tried on the
    path relative to its root with ``/`` separators, on the file name and on
    each directory name below the root). Editor lock files and scratch copies
    (``.#*``, ``flycheck_*``) are always excluded. A deleted path of any other
    kind is reported when ``keep_deleted(path)`` says so: a folder that was
    moved or removed cannot be listed any more, and only the consumer knows
    what it held. A file of any other suffix is reported when
    ``interesting(path)`` says so (asked for every such change: make it a set
    lookup). ``recursive=False`` watches only the roots' own entries;
    ``step_ms`` (default 1) is how often the native watcher hands changes over,
    taking the interpreter lock each time: raise it where latency matters less.

    Batches: once a change is seen, the watcher waits until no further change
    arrives for ``debounce_ms`` (default 5 ms: a quiet period, so a burst of
    saves or a save by rename becomes one batch; the native watcher's last
    step, in which it saw no new change, counts towards it) but never longer than
    ``max_window_ms`` (default 1000 ms) after the first change, so a stream of
    changes cannot hold a batch back for ever. Changes to ignored paths
    neither start nor prolong a batch. Changes made while nobody is polling
    are kept and returned by the next poll.

    One consumer at a time: call :meth:`poll_once` or iterate :meth:`batches`
    from a single thread. :meth:`close` (or leaving the ``with`` block) stops
    watching and may be called from any thread, any number of times.
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        *,
        debounce_ms: int = 5,
        max_window_ms: int = 1000,
        exclude: Sequence[str] = (),
        suffixes: Sequence[str] = (".py",),
        ignored_dirs: Iterable[str] = DEFAULT_IGNORED_DIRS,
        keep_deleted: Callable[[str], bool] | None = None,
        recursive: bool = True,
        step_ms: int = _STEP_MS,
        interesting: Callable[[str], bool] | None = None,
    ) -> None:
        if isinstance(roots, str | os.PathLike):
            raise UsageError(f"roots must be a sequence of paths, not the single path {roots!r}")
        if not roots:
            raise UsageError("no directory to watch: roots is empty")
        if step_ms < 1:
            raise UsageError(f"step_ms must be at least 1, got {step_ms}")
        if debounce_ms < 0 or max_window_ms < 0:
            raise UsageError(
                f"debounce_ms and max_window_ms must be >= 0, got {debounce_ms}, {max_window_ms}"
            )
        if isinstance(exclude, str):
            raise UsageError(f"exclude must be a sequence of globs, not the string {exclude!r}")
        if isinstance(suffixes, str) or not suffixes:
            raise UsageError(f"suffixes must be a non-empty sequence, got {suffixes!r}")
        for suffix in suffixes:
            if not suffix.startswith(".") or len(suffix) < 2:
                raise UsageError(f"a suffix starts with a dot, like '.py': got {suffix!r}")
        self.roots: tuple[Path, ...] = _resolve_roots(roots)
        self.debounce_ms = debounce_ms
        self.max_window_ms = max_window_ms
        self._filter = PathFilter(
            [str(r) for r in self.roots],
            suffixes=tuple(suffixes),
            ignored_dirs=ignored_dirs,
            exclude=tuple(exclude),
            keep_deleted=keep_deleted,
            recursive=recursive,
            interesting=interesting,
        )
        self._shared = _Shared()
        self._closed = False
        make_notify = functools.partial(
            _open_notify, tuple(str(r) for r in self.roots), recursive
        )
        notify = make_notify()
        self._thread = threading.Thread(
            target=_pump,
            args=(
                self._shared,
                notify,
                make_notify,
                self._filter,
                # Native grouping of a stream of distinct changes: hand them over
                # at least this often so our own quiet-period clock stays exact.
                max(step_ms, min(debounce_ms, max_window_ms)),
                step_ms,
            ),
            name=f"hotmod-watch:{self.roots[0].name}",
            daemon=True,
        )
        self._thread.start()
        # A watcher dropped without close() must not leave a thread spinning.
        self._finalizer = weakref.finalize(self, self._shared.stop)
        logger.debug(
            "watching %s (debounce %d ms, window %d ms)",
            ", ".join(map(str, self.roots)),
            debounce_ms,
            max_window_ms,
        )

    def poll_once(self, timeout_ms: int) -> set[Path] | None:
        """Wait up to ``timeout_ms`` for a change and return the batch it starts.

        Returns the set of changed paths (absolute and resolved; added, modified
        and deleted files alike; a renamed file contributes its old and new
        path) once ``debounce_ms`` passed without a further change, or
        ``max_window_ms`` after the first one: so the call may last up to
        ``timeout_ms + max_window_ms``. Returns ``None`` when nothing changed
        within ``timeout_ms`` (``0``: only look at what is already pending) or
        when the watcher is closed meanwhile.

        Raises :class:`~hotmod.UsageError` if the watcher is closed or
        ``timeout_ms`` is negative, and the backend's error (``RuntimeError``
        or ``OSError``) if the native watcher failed for good.
        """
        if timeout_ms < 0:
            raise UsageError(f"timeout_ms must be >= 0, got {timeout_ms}")
        if self._closed:
            raise UsageError("poll_once() on a closed Watcher")
        return self._poll(timeout_ms / 1000, None)

    def batches(self, stop: threading.Event) -> Iterator[set[Path]]:
        """Yield batches (as :meth:`poll_once` returns them) until ``stop`` is set.

        ``stop`` is noticed within about 20 ms, also in the middle of a quiet
        period; changes pending at that point stay pending. Ends too when the
        watcher is closed.
        """
        while not stop.is_set() and not self._closed:
            batch = self._poll(None, stop)
            if batch is not None:
                yield batch

    def close(self) -> None:
        """Stop watching and release the native watcher. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()  # sets closing, wakes any poll
        self._thread.join(timeout=2.0)
        if self._thread.is_alive():
            logger.warning("file watcher thread did not stop within 2 s")

    def __enter__(self) -> Watcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self.close()
        return False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Watcher {state} roots={[str(r) for r in self.roots]}>"

    def _poll(self, timeout_s: float | None, stop: threading.Event | None) -> set[Path] | None:
        shared = self._shared
        debounce = self.debounce_ms / 1000
        window = self.max_window_ms / 1000
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with shared.cond:
            # 1. wait for a first change
            while not shared.pending:
                if shared.error is not None:
                    raise shared.error
                if shared.closing.is_set() or (stop is not None and stop.is_set()):
                    return None
                wait = _SLICE_S if stop is not None else None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                shared.cond.wait(wait)
            # 2. wait for the quiet period, bounded by the window
            while True:
                due = min(shared.last_seen + debounce, shared.first_seen + window)
                remaining = due - time.monotonic()
                if remaining <= 0:
                    break
                if shared.closing.is_set() or (stop is not None and stop.is_set()):
                    return None  # what is pending stays pending
                shared.cond.wait(min(remaining, _SLICE_S))
            batch, shared.pending = shared.pending, set()
        # Roots are resolved, so this only matters for symlinks below them.
        paths = {Path(os.path.realpath(p)) for p in batch}
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("batch of %d: %s", len(paths), ", ".join(sorted(map(str, paths))))
        return paths


def _resolve_roots(roots: Sequence[str | os.PathLike[str]]) -> tuple[Path, ...]:
    """Resolve, check and de-nest the roots (a root inside another adds nothing)."""
    resolved: list[Path] = []
    for root in roots:
        path = Path(root)
        try:
            real = path.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise UsageError(f"cannot watch {os.fspath(root)!r}: no such directory") from exc
        if not real.is_dir():
            raise UsageError(
                f"cannot watch {os.fspath(root)!r}: not a directory (watch its folder:"
                " editors save by rename, which a watch on the file itself misses)"
            )
        resolved.append(real)
    outer = [r for r in resolved if not any(o != r and r.is_relative_to(o) for o in resolved)]
    return tuple(dict.fromkeys(outer))
