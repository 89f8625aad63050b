"""The reloader: one transaction per batch of changed files.

``Reloader.apply(paths)`` runs watch → plan → stage → commit → report for one
batch, synchronously; ``start()`` runs it from a watch thread. A batch that
fails leaves the previous version running and stays pending: the next batch
retries it together with whatever changed since (G1, G6).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .. import _hot
from .._errors import ReloadError, RestartRequired, UsageError
from .._events import Outcome, ReloadResult, Reporter
from .graph import ModuleGraph, ModuleRecord
from .patch import apply_body_patch, apply_class_patch
from .plan import Plan, make_plan
from .reconcile import Reconciler
from .stage import Staged, Stager, user_traceback
from .undo import Transaction

logger = logging.getLogger(__name__)

WATCHED_SUFFIXES = (".py", ".so", ".pyd")
# Entries of a site-packages folder that appear or vanish when packages are
# installed, upgraded or removed (the folder itself is watched, not its tree).
PACKAGE_MARKERS = (".dist-info", ".egg-info", ".egg-link", ".pth")
# Installing takes seconds: a slow step keeps this watcher's cost near nothing.
_PACKAGES_STEP_MS = 50


def installed_package_folders() -> list[Path]:
    """The folders pip installs into for this interpreter (those that exist)."""
    import site

    found = [Path(p) for p in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(Path(site.getusersitepackages()))
    return [p for p in dict.fromkeys(found) if p.is_dir()]


class Reloader:
    """Hot reload for the modules under ``roots``.

    ``Reloader(roots, *, debounce_ms=5, exclude=(), strict=False, reporter=None,
    on_restart=None)``. ``install()`` puts the import hook in place (modules
    imported afterwards are tracked; project modules already imported are
    adopted); ``start()`` also watches the roots in a daemon thread;
    ``stop()``/``uninstall()`` restore the interpreter. As a context manager it
    installs on enter and stops on exit. ``apply(paths)`` performs one
    transaction synchronously and returns its :class:`ReloadResult`.

    ``strict=True`` restarts instead of applying anything that is not provably
    equivalent to a fresh start (e.g. a class replaced while instances live on).
    ``packages`` are folders of installed packages (default: this interpreter's
    site-packages; ``()`` for none): a package installed, upgraded or removed
    there needs a restart, reported like any other.
    ``on_restart(result)`` is called (from the watch thread) when a batch needs a
    restart; without it the result is only reported.
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        *,
        debounce_ms: int = 5,
        exclude: Sequence[str] = (),
        strict: bool = False,
        reporter: Reporter | None = None,
        on_restart: Callable[[ReloadResult], None] | None = None,
        packages: Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        paths = [Path(r).resolve() for r in roots] or [Path.cwd().resolve()]
        for path in paths:
            if not path.is_dir():
                raise UsageError(f"watch root is not a directory: {path}")
        self.roots = tuple(paths)
        self.debounce_ms = debounce_ms
        self.exclude = tuple(exclude)
        self.strict = strict
        self.reporter = reporter
        self.on_restart = on_restart
        self.packages = (
            installed_package_folders() if packages is None
            else [Path(p) for p in packages if Path(p).is_dir()]
        )
        self.graph = ModuleGraph(self.roots)
        self.version = 0
        self._pending: set[Path] = set()
        self._lock = threading.RLock()
        self._hot: _hot.HotState | None = None
        self._thread: threading.Thread | None = None
        self._packages_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------
    def install(self) -> None:
        """Install the import hook and make the ``hot`` API live."""
        if self._hot is not None:
            return
        if _hot.current() is not None:
            raise UsageError("another hotmod Reloader is already installed in this process")
        self._hot = _hot.activate()
        self.graph.install()

    def uninstall(self) -> None:
        """Remove the import hook; the ``hot`` API becomes inert again."""
        self.stop()
        if self._hot is None:
            return
        self.graph.uninstall()
        _hot.deactivate()
        self._hot = None

    def start(
        self, *, wait: bool = True, on_ready: Callable[[], None] | None = None
    ) -> None:
        """Install, then watch the roots from a daemon thread.

        The thread arms the watcher, then calls ``on_ready()`` and applies any
        edit made to an imported module before watching began. With
        ``wait=True`` (the default) this returns once the watcher is armed;
        ``hotmod run`` passes ``wait=False`` so that the program starts at once
        and arming overlaps with its own start-up.
        """
        self.install()
        if self._thread is not None:
            return
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._watch, args=(on_ready,), name="hotmod-watch", daemon=True
        )
        self._thread.start()
        if self.packages:
            self._packages_thread = threading.Thread(
                target=self._watch_packages, name="hotmod-packages", daemon=True
            )
            self._packages_thread.start()
        if wait:
            self._ready.wait(timeout=30)

    def stop(self) -> None:
        """Stop watching (the import hook stays until :meth:`uninstall`)."""
        thread, self._thread = self._thread, None
        packages, self._packages_thread = self._packages_thread, None
        if thread is not None or packages is not None:
            self._stop.set()
        for running in (thread, packages):
            if running is not None:
                running.join(timeout=5)

    def __enter__(self) -> Reloader:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def _watch(self, on_ready: Callable[[], None] | None) -> None:
        from .._watch.watcher import Watcher  # imported here: watchfiles costs start-up time

        try:
            watcher = Watcher(
                self.roots, debounce_ms=self.debounce_ms, exclude=self.exclude,
                suffixes=WATCHED_SUFFIXES, keep_deleted=self.graph.holds_modules,
            )
        except Exception:
            logger.exception("hotmod: cannot watch %s; reloading is off", self.roots)
            self._ready.set()
            return
        with watcher:
            self._ready.set()
            if on_ready is not None:
                on_ready()
            self.graph.index()  # off the program's start-up path
            missed = self.graph.changed_on_disk()  # edited between import and arming
            batches = watcher.batches(self._stop)
            if missed:
                batches = itertools.chain([missed], batches)
            for batch in batches:
                try:
                    result = self.apply(batch)
                except Exception:  # G6: nothing stops the watcher
                    logger.exception("hotmod: reload crashed; still watching")
                    continue
                if result.outcome is Outcome.RESTART and self.on_restart is not None:
                    self.on_restart(result)

    def _watch_packages(self) -> None:
        """Report a restart whenever installed packages change."""
        from .._watch.watcher import Watcher

        try:
            watcher = Watcher(
                self.packages, debounce_ms=200, suffixes=PACKAGE_MARKERS, ignored_dirs=(),
                recursive=False, step_ms=_PACKAGES_STEP_MS,
            )
        except Exception:
            logger.exception("hotmod: cannot watch installed packages in %s", self.packages)
            return
        with watcher:
            for batch in watcher.batches(self._stop):
                names = ", ".join(sorted(p.name for p in batch))
                result = ReloadResult(
                    Outcome.RESTART, paths=tuple(sorted(batch)), version=self.version,
                    reason=f"installed packages changed ({names})",
                )
                if self.reporter is not None:
                    self.reporter.reloaded(result)
                if self.on_restart is not None:
                    self.on_restart(result)

    # -- the entry script ---------------------------------------------------------------
    def track_main(
        self, module: types.ModuleType, path: Path, source: str, code: types.CodeType
    ) -> None:
        """Track the entry script, run as ``__main__`` from ``code``."""
        record = ModuleRecord(module.__name__, path.resolve(), source, code, False)
        record.mtime_ns = path.stat().st_mtime_ns
        self.graph.add(record)

    # -- one transaction ----------------------------------------------------------------
    def apply(self, paths: Iterable[str | os.PathLike[str]]) -> ReloadResult:
        """Apply one batch of changed files, all or nothing; report and return the result."""
        if self._hot is None:
            raise UsageError("Reloader.apply() needs install() (or start()) first")
        with self._lock:
            batch = {Path(os.path.abspath(p)) for p in paths} | self._pending
            started = time.perf_counter()
            result = self._transaction(batch, started)
            if result.outcome is Outcome.FAILED:
                self._pending = {p for p in batch if p.suffix == ".py"}
            else:
                self._pending.clear()
        if self.reporter is not None:
            self.reporter.reloaded(result)
        return result

    def _transaction(self, batch: set[Path], started: float) -> ReloadResult:
        assert self._hot is not None
        hot = self._hot
        paths = tuple(sorted(batch))

        def result(outcome: Outcome, **kw: object) -> ReloadResult:
            elapsed = (time.perf_counter() - started) * 1000
            fields: dict[str, Any] = dict(kw)
            return ReloadResult(
                outcome, paths=paths, version=self.version, duration_ms=elapsed, **fields
            )

        declined = {n for n, h in hot.handles.items() if h.declined}
        accepted = {n for n, h in hot.handles.items() if h.accepted}
        try:
            plan = make_plan(batch, self.graph, declined=declined)
        except ReloadError as exc:
            return result(Outcome.FAILED, error=exc, traceback=_one_line_tb(exc))
        if plan.restart is not None:
            return result(Outcome.RESTART, reason=plan.restart)
        if plan.empty:
            self._record_sources(plan)
            return result(Outcome.UNCHANGED)

        reconciler = Reconciler()
        tx = Transaction()
        try:
            staged = Stager(self.graph, hot).stage(plan, reconciler, accepted=accepted)
        except RestartRequired as exc:
            return result(Outcome.RESTART, reason=exc.reason)
        except ReloadError as exc:
            cause = exc.__cause__ or exc
            return result(Outcome.FAILED, error=exc, traceback=user_traceback(cause))
        notes = tuple(n for d in staged.deltas.values() for n in d.notes)
        if self.strict and notes:
            hot.end()
            Stager(self.graph, hot).abandon(staged.new)
            return result(Outcome.RESTART, reason=f"--strict: {notes[0]}")
        try:
            functions = self._commit(plan, staged, reconciler, tx)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            Stager(self.graph, hot).abandon(staged.new)
            try:
                tx.rollback()
            except ReloadError as rollback_error:
                return result(Outcome.FAILED, error=rollback_error, traceback=user_traceback(exc))
            error = exc if isinstance(exc, ReloadError) else ReloadError(
                f"{type(exc).__name__}: {exc}", phase="commit"
            )
            if error is not exc:
                error.__cause__ = exc
            return result(Outcome.FAILED, error=error, traceback=user_traceback(exc))
        self.version += 1
        reexecuted = tuple(staged.order)
        patched = tuple(sorted(set(plan.patches) - set(reexecuted)))
        return result(
            Outcome.APPLIED, patched=patched, reexecuted=reexecuted,
            removed=tuple(sorted(plan.removed)), functions=functions, notes=notes,
        )

    def _commit(self, plan: Plan, staged: Staged, reconciler: Reconciler, tx: Transaction) -> int:
        """Dispose old versions, patch and rebind, drop removed modules, record sources."""
        assert self._hot is not None
        hot = self._hot
        handles, kept = hot.end()
        replaced = set(staged.modules) | plan.removed
        for name in sorted(replaced):
            old = hot.handles.get(name)
            if old is not None:
                try:
                    old.run_dispose()
                except Exception as exc:
                    raise ReloadError(
                        f"dispose hook of {name} failed: {exc!r}", module=name, phase="dispose"
                    ) from exc
        functions = 0
        for module, patches in plan.patches.items():
            if module in staged.modules:
                continue  # re-executed instead: the reconciler patches its functions
            for patch in patches:
                apply_body_patch(patch, tx)
                functions += 1
            for class_patch in plan.class_patches.get(module, ()):
                apply_class_patch(class_patch, tx)
        reconciler.commit(tx)
        functions += reconciler.updated_functions
        for name in sorted(plan.removed):
            self._drop_module(name, tx)
        # Nothing below can fail: the batch is committed.
        tx.discard()
        for name in replaced:
            hot.handles.pop(name, None)
        hot.handles.update(handles)
        hot.kept.update(kept)
        self._record_sources(plan)
        for name, record in (self.graph.staged_records or {}).items():
            previous = self.graph.records.get(name)
            if previous is not None:
                record.order = previous.order
            self.graph.add(record)
        self.graph.staged_records = None
        for name in plan.removed:
            self.graph.remove(name)
        return functions

    def _record_sources(self, plan: Plan) -> None:
        for name, change in plan.changes.items():
            record = self.graph.records.get(name)
            if record is None or change.source is None or change.code is None:
                continue
            record.source, record.code = change.source, change.code
            record._tree, record._info = change.tree, change._info
            with contextlib.suppress(OSError):
                record.mtime_ns = change.path.stat().st_mtime_ns

    def _drop_module(self, name: str, tx: Transaction) -> None:
        if name in sys.modules:
            tx.delitem(sys.modules, name)
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name) if parent_name else None
        if parent is not None and child in parent.__dict__:
            tx.delattr(parent, child)


def _one_line_tb(exc: ReloadError) -> str:
    cause = exc.__cause__
    if isinstance(cause, SyntaxError):
        import traceback

        return "".join(traceback.format_exception_only(cause))
    return str(exc)
