"""The reloader: one transaction per batch of changed files.

``Reloader.apply(paths)`` runs watch → plan → stage → commit → report for one
batch, synchronously; ``start()`` runs it from a watch thread. A batch that
fails leaves the previous version running and stays pending: the next batch
retries it together with whatever changed since (G1, G6).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import threading
import time
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

from .. import _hot
from .._errors import ReloadError, UsageError
from .._events import Outcome, ReloadResult, Reporter
from .._gate import Gate, GateParticipant, default_gate
from .filedeps import FileDependencies
from .graph import ModuleGraph
from .participants import Participant, Participants
from .policy import Policy
from .record import ModuleRecord

logger = logging.getLogger(__name__)

WATCHED_SUFFIXES = (".py", ".so", ".pyd")
# Entries of a site-packages folder that appear or vanish when packages are
# installed, upgraded or removed (the folder itself is watched, not its tree).
PACKAGE_MARKERS = (".dist-info", ".egg-info", ".egg-link", ".pth")
# A batch identical to one that failed less than this long ago is an echo of it.
_ECHO_S = 0.5
# Seconds after the watcher arms when what the program imported since is indexed
# (later than most start-ups: the work would compete with the program for the GIL).
_SETTLE_S = 3.0
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
    ``gate`` is the :class:`~hotmod._gate.Gate` every commit closes (default:
    the process's, which ``hotmod.gate()`` and the WSGI/ASGI middleware use).
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
        gate: Gate | None = None,
    ) -> None:
        paths = [Path(r).resolve() for r in roots] or [Path.cwd().resolve()]
        for path in paths:
            if not path.is_dir():
                raise UsageError(f"watch root is not a directory: {path}")
        self.roots = tuple(paths)
        self.debounce_ms = debounce_ms
        self.exclude = tuple(exclude)
        self.policy = Policy(strict=strict)
        self.participants = Participants()
        self.reporter = reporter
        self.on_restart = on_restart
        self.packages = (
            installed_package_folders() if packages is None
            else [Path(p) for p in packages if Path(p).is_dir()]
        )
        self.graph = ModuleGraph(self.roots, exclude=self.exclude)
        # Every commit runs with the gate closed (G4): requests see one version.
        self.gate = gate if gate is not None else default_gate()
        self.participants.add(GateParticipant(self.gate))
        # Non-Python files read at import time re-execute their readers.
        self.file_dependencies = FileDependencies(self.graph)
        self.participants.add(self.file_dependencies)
        self.version = 0
        self._pending: set[Path] = set()
        # The last failed batch: its files' (mtime, size), its result, when it ended.
        self._failed: tuple[dict[Path, tuple[int, int] | None], ReloadResult, float] | None = None
        self._lock = threading.RLock()
        self._hot: _hot.HotState | None = None
        self._thread: threading.Thread | None = None
        self._packages_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._packages_ready = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------
    def install(self) -> None:
        """Install the import hook and make the ``hot`` API live."""
        if self._hot is not None:
            return
        if _hot.current() is not None:
            raise UsageError("another hotmod Reloader is already installed in this process")
        self._hot = _hot.activate()
        self.graph.install()
        self.file_dependencies.install()

    def uninstall(self) -> None:
        """Remove the import hook; the ``hot`` API becomes inert again."""
        self.stop()
        if self._hot is None:
            return
        self.graph.uninstall()
        self.file_dependencies.uninstall()
        _hot.deactivate()
        self._hot = None

    def start(
        self, *, wait: bool = True, on_ready: Callable[[], None] | None = None
    ) -> None:
        """Install, then watch the roots from a daemon thread.

        The thread arms the watcher, then calls ``on_ready()`` and applies any
        edit made to an imported module before watching began. With
        ``wait=True`` (the default) this returns once the watchers are armed;
        ``hotmod run`` passes ``wait=False`` so that the program starts at once
        and arming overlaps with its own start-up.
        """
        self.install()
        if self._thread is not None:
            return
        self._stop.clear()
        self._ready.clear()
        self._packages_ready.clear()
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
            if self._packages_thread is not None:  # a change after start() is never missed
                self._packages_ready.wait(timeout=30)

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
                interesting=self._interesting,
            )
        except Exception:
            logger.exception("hotmod: cannot watch %s; reloading is off", self.roots)
            self._ready.set()
            return
        with watcher:
            # The program is usually still starting when the watcher arms: index
            # what it imported, read its sources and load the reload pipeline once
            # start-up has settled, neither on its way nor at the first edit.
            # Started before ready is told: a program whose main code returns
            # right after (its threads serving) is shutting down, and Python 3.12+
            # starts no thread then.
            settle = threading.Timer(_SETTLE_S, self._settle)
            settle.daemon = True
            settle.start()
            # Edited between import and arming: looked for before ready is told, so that
            # a change made once start() has returned is the watcher's alone. (A scan
            # racing it could see half of a folder's rename and apply that half alone.)
            missed = self.graph.changed_on_disk()
            missed |= self.file_dependencies.changed_on_disk()
            self._ready.set()
            if on_ready is not None:
                on_ready()
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
                with self._lock:
                    self.graph.warm()  # after the report: the next edit finds its facts ready

    def _settle(self) -> None:
        """Index new records, read their sources and parse large modules (off the start-up path)."""
        if self._stop.is_set():
            return
        with self._lock:
            self.graph.index()
            self.graph.warm_large()
        importlib.import_module(".batch", __package__)  # the pipeline, before any edit

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
            self._packages_ready.set()
            return
        with watcher:
            self._packages_ready.set()
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

    def _interesting(self, path: str) -> bool:
        """A changed file of another suffix matters to some participant (a file
        dependency, a template): asked per such change, participants answer fast."""
        for participant in self.participants:
            check = getattr(participant, "interesting", None)
            if check is not None and check(path):
                return True
        return False

    @property
    def strict(self) -> bool:
        return self.policy.strict

    def add_participant(self, participant: Participant) -> None:
        """Let ``participant`` take part in every batch from now on (see participants)."""
        self.participants.add(participant)

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
        from .batch import Batch  # the pipeline loads at the first batch, not at start-up

        with self._lock:
            changed = {Path(os.path.abspath(p)) for p in paths} | self._pending
            failed = self._failed
            # Taken before the batch runs: what it may fail on is this version or
            # a newer one, never older (a save landing meanwhile is no echo).
            contents = _signatures(changed)
            if (
                failed is not None
                and time.monotonic() - failed[2] < _ECHO_S
                and failed[0] == contents
            ):
                # The same files (same mtime and size) as a batch that failed a moment
                # ago (an editor's second event for one save): it would fail
                # again. Saving again later does retry (a server now up, say).
                return failed[1]
            batch = Batch(
                frozenset(changed), self.graph, self._hot, self.participants, self.policy,
                version=self.version,
            )
            try:
                result = batch.run()
            except Exception as exc:  # a bug of hotmod's own: never the user's error (G6)
                logger.exception("hotmod: internal error while applying %s", sorted(changed))
                batch.abandon()
                error = ReloadError(
                    f"internal error in hotmod ({type(exc).__name__}: {exc}); nothing was"
                    " applied. Please report it.", phase="internal",
                )
                error.__cause__ = exc
                result = ReloadResult(
                    Outcome.FAILED, paths=tuple(sorted(changed)), version=self.version,
                    error=error,
                )
            if result.outcome is Outcome.APPLIED:
                self.version = result.version
            if result.outcome is Outcome.FAILED and result.error is not None and (
                result.error.phase != "internal"
            ):
                self._pending = {
                    p for p in changed if p.suffix == ".py" or p in batch.claimed
                    # a dependency stays pending even if the plan failed before prepare
                    or self.file_dependencies.interesting(str(p))
                }
                self._failed = (contents, result, time.monotonic())
            else:
                self._pending.clear()
                self._failed = None
        if self.reporter is not None:
            self.reporter.reloaded(result)
        return result


def _signatures(paths: Iterable[Path]) -> dict[Path, tuple[int, int] | None]:
    """(mtime_ns, size) of each file (None if missing): a new save changes them,
    an editor's second event for the same save does not. One stat per file."""
    found: dict[Path, tuple[int, int] | None] = {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            found[path] = None
        else:
            found[path] = (stat.st_mtime_ns, stat.st_size)
    return found
