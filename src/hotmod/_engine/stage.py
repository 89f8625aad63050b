"""Stage: run what must be re-executed into fresh modules, nothing live changes.

Modules to re-execute are taken out of ``sys.modules`` and imported again
through the import system, with the project loader handing it the code the
planner compiled. Cycles, relative imports and packages therefore behave
exactly as at start-up, and importers staged later in the batch see the
staged versions. Groups run dependencies first; after each group the
:class:`~hotmod._reconcile.Reconciler` says which names changed, and only
importers whose import-time code uses a changed name are re-executed too (G5).
"""

from __future__ import annotations

import heapq
import importlib
import logging
import sys
import threading
import traceback
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ReloadError, RestartRequired
from .._hot import HotState
from .graph import MAIN, ModuleGraph
from .isolate import guarded_imports
from .plan import Plan, compile_source
from .reconcile import ModuleDelta, Reconciler
from .scan import ModuleInfo, top_level_use

logger = logging.getLogger(__name__)


@dataclass
class Staged:
    """The outcome of staging: staged modules and what the commit must do."""

    modules: dict[str, types.ModuleType] = field(default_factory=dict)  # name -> staged
    live: dict[str, types.ModuleType] = field(default_factory=dict)  # name -> live
    new: dict[str, types.ModuleType] = field(default_factory=dict)  # first imported now
    deltas: dict[str, ModuleDelta] = field(default_factory=dict)
    removed: dict[str, types.ModuleType] = field(default_factory=dict)  # deleted files
    order: list[str] = field(default_factory=list)  # re-executed, in execution order
    shadowed: dict[str, types.ModuleType] = field(default_factory=dict)  # stood in for


class Stager:
    def __init__(self, graph: ModuleGraph, hot: HotState) -> None:
        self.graph = graph
        self.hot = hot

    def stage(
        self,
        plan: Plan,
        reconciler: Reconciler,
        *,
        accepted: set[str],
        stand_ins: Mapping[str, Mapping[str, object]] | None = None,
    ) -> Staged:
        """Re-execute what the plan (and its consequences) needs.

        ``stand_ins`` maps a live module's name to attributes the staged code
        must see instead of the live ones (a participant's recording stand-in
        for a live Flask app, say): staged code importing that module gets a
        view of it with those attributes, so the live objects are not touched
        while staging; at commit the stand-ins map back onto the live objects.

        Raises :class:`ReloadError` if any module fails (sys.modules is restored
        first) and :class:`RestartRequired` if the entry script would have to run
        again.
        """
        staged = Staged()
        for name, attrs in (stand_ins or {}).items():
            live = sys.modules.get(name)
            if live is None or name in plan.reexec:
                continue  # not imported, or running again anyway: nothing to stand in for
            view = types.ModuleType(name)
            view.__dict__.update(live.__dict__)
            view.__dict__.update(attrs)
            sys.modules[name] = view
            staged.shadowed[name] = live
            reconciler.stand_in(view, live, attrs)
        before = set(sys.modules)
        self.graph.staged_records = {}
        self.graph.staging_thread = threading.get_ident()
        self.hot.begin()
        for name in plan.removed:  # importers staged now must not find a deleted module
            module = sys.modules.pop(name, None)
            if module is not None:
                staged.removed[name] = module
        try:
            with guarded_imports(_LiveView(staged)):
                self._stage_all(plan, reconciler, staged, accepted)
        except BaseException:
            self._restore(staged)
            first_imported = set(sys.modules) - before
            self.hot.end()
            self.abandon(n for n in first_imported if n in (self.graph.staged_records or {}))
            raise
        finally:
            self.graph.staged_code.clear()
            self.graph.staging_thread = None
        self._restore(staged)
        for name in (self.graph.staged_records or {}):
            if name not in staged.modules and name in sys.modules:
                staged.new[name] = sys.modules[name]
                reconciler.adopt_new(sys.modules[name])
        return staged

    def _stage_all(
        self, plan: Plan, reconciler: Reconciler, staged: Staged, accepted: set[str]
    ) -> None:
        """Run the plan's modules, then every importer that uses a changed name.

        Candidates are taken lowest rank first (dependencies before importers),
        and only the importers of modules that changed are ever looked at, so
        the cost follows the change, not the size of the project (G5).
        """
        graph = self.graph
        graph.index()
        to_run = set(plan.reexec)
        deltas: dict[str, tuple[set[str], set[str]]] = {
            m: (set(), names) for m, names in plan.mutated.items()
        }
        for module in plan.removed:
            deltas[module] = ({"*"}, set())
        heap: list[tuple[int, str]] = []
        queued: set[str] = set()
        done: set[str] = set()
        deferred: dict[str, int] = {}
        priority: dict[str, int] = {}  # the rank a queued module waits under

        def enqueue(names: set[str]) -> None:
            for name in names - queued - done:
                if name in graph.records and name not in plan.removed:
                    queued.add(name)
                    priority[name] = graph.records[name].rank
                    heapq.heappush(heap, (priority[name], name))

        # Importers of patched modules were all examined by _promote: those that
        # call a changed function at import time made it re-execute (its own
        # importers follow from its delta); the others need not run again.
        to_run |= self._promote(plan, accepted)
        enqueue(to_run)
        for module in plan.removed:
            enqueue(graph.importers(module))
        while heap:
            _, name = heapq.heappop(heap)
            queued.discard(name)
            if name in done:
                continue
            waiting = graph.dependencies(name) & queued
            if waiting and deferred.get(name, 0) < 2:  # a stale rank: let them go first
                deferred[name] = deferred.get(name, 0) + 1
                queued.add(name)
                # After what it waits for, as queued now (deferred ones included).
                priority[name] = max(priority.get(w, graph.records[w].rank) for w in waiting) + 1
                heapq.heappush(heap, (priority[name], name))
                continue
            if name not in to_run and not self._must_follow([name], deltas, plan, accepted):
                done.add(name)
                continue
            group = [m for m in graph.cycle_of(name) if m not in done or m == name]
            if MAIN in group:
                raise RestartRequired(self._main_reason(deltas), module=MAIN)
            self._run_group(group, plan, staged)
            for member in group:
                done.add(member)
                queued.discard(member)
                if member not in staged.modules:
                    continue
                delta = reconciler.analyze(staged.modules[member], staged.live[member])
                staged.deltas[member] = delta
                deltas[member] = (delta.rebound, delta.mutated)
                if member not in accepted and (delta.rebound or delta.mutated):
                    enqueue(graph.importers(member))

    def _must_follow(
        self,
        group: list[str],
        deltas: dict[str, tuple[set[str], set[str]]],
        plan: Plan,
        accepted: set[str],
    ) -> bool:
        for member in group:
            change = plan.changes.get(member)
            if change is not None and change.tree is not None:
                info = change.info  # its new source, scanned once for the whole batch
            else:
                info = self.graph.records[member].info
            for dep in self.graph.dependencies(member) & deltas.keys():
                rebound, mutated = deltas[dep]
                if dep in group or dep in accepted:
                    continue
                if "*" in rebound:  # a removed module: anyone importing it must run again
                    if dep in self.graph.dependencies(member):
                        return True
                    continue
                if member == MAIN:  # its main loop reads globals afresh: top level only
                    if info.uses(dep, rebound, set(), toplevel_only=True):
                        return True
                elif info.uses(dep, rebound, mutated):
                    return True
        return False

    def _promote(self, plan: Plan, accepted: set[str]) -> set[str]:
        """Patched modules whose changed functions an importer calls at import time.

        That importer re-executes, and must see the new code while it does
        (``X = lib.compute()``): the patched module is staged too, so the
        staged world holds the new version of every function in the batch.
        """
        promoted: set[str] = set()
        for module in sorted(plan.patches):
            if module in accepted or module == MAIN:
                continue
            mutated = plan.mutated.get(module, set())
            for importer in self.graph.importers(module):
                if importer == MAIN or importer in plan.removed:
                    continue
                change = plan.changes.get(importer)
                info = change.info if change is not None and change.tree is not None else (
                    self.graph.records[importer].info
                )
                if self._calls_at_import(importer, info, module, mutated):
                    promoted.add(module)
                    break
        for module in promoted:
            plan.patches.pop(module, None)
            plan.class_patches.pop(module, None)
            plan.reexec.add(module)
        return promoted

    def _calls_at_import(
        self, importer: str, info: ModuleInfo, module: str, mutated: set[str]
    ) -> bool:
        """``info.uses(module, set(), mutated)``, remembered per importer version.

        Editing the same function again asks the same question of every
        importer; the answer holds while the importer's facts (``info``) do.
        """
        cache = self.graph.uses_cache
        key = (importer, module, frozenset(mutated))
        known = cache.get(key)
        if known is not None and known[0] is info:
            return known[1]
        answer = info.uses(module, set(), mutated)
        if len(cache) > _USES_CACHE_MAX:
            cache.clear()
        cache[key] = (info, answer)
        return answer

    def _main_reason(self, deltas: dict[str, tuple[set[str], set[str]]]) -> str:
        """Why the entry script must run again, naming the name and the line."""
        record = self.graph.records[MAIN]
        for dep in sorted(self.graph.dependencies(MAIN) & deltas.keys()):
            rebound, _ = deltas[dep]
            use = top_level_use(record.tree, record.info, dep, rebound)
            if use is not None:
                name, line = use
                return (
                    f"the entry script's top level uses {dep}.{name}, which changed"
                    f" ({record.path.name}, line {line})"
                )
        return "the entry script's top level uses a changed name"

    def _run_group(self, group: list[str], plan: Plan, staged: Staged) -> None:
        graph = self.graph
        ordered = sorted(group, key=lambda n: graph.records[n].order)
        for name in ordered:
            record = graph.records[name]
            change = plan.changes.get(name)
            if change is not None and change.source is not None and change.code is not None:
                source, code, stale = change.source, change.code, change.stale_lines
            else:
                source, code, stale = record.source, record.code, record.stale_lines
            if stale:  # a quick change moved statements: the module's line table is old
                code = compile_source(source, record.path, name)[1]
            graph.staged_code[name] = (source, code)
            live = sys.modules.pop(name, None)
            if live is None:
                continue  # not imported any more: nothing to stage against
            live = staged.shadowed.get(name, live)  # a stand-in view is not the live module
            staged.live[name] = live
        for name in ordered:
            if name not in staged.live or name in staged.modules:
                continue
            try:
                module = importlib.import_module(name)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise _stage_error(exc, name, graph) from exc
            staged.modules[name] = module
            staged.order.append(name)
        for name in ordered:  # a cycle member imported by another member
            if name in staged.live and name not in staged.modules:
                staged.modules[name] = sys.modules[name]
                staged.order.append(name)

    def abandon(self, new_modules: Iterable[str]) -> None:
        """Forget a staged batch that will not be committed.

        ``new_modules`` were first imported by the staged code: they go too.
        """
        for name in list(new_modules):
            sys.modules.pop(name, None)
        self.graph.staged_records = None
        self.hot.restore_data()

    def _restore(self, staged: Staged) -> None:
        """Put the live modules back in ``sys.modules`` and on their parent packages."""
        for name, module in staged.removed.items():
            sys.modules[name] = module  # the commit drops it, undoably
        for name, module in staged.shadowed.items():
            if name not in staged.live:
                sys.modules[name] = module
        for name, live in staged.live.items():
            sys.modules[name] = live
            parent_name, _, child = name.rpartition(".")
            parent = sys.modules.get(parent_name) if parent_name else None
            if parent is not None and parent.__dict__.get(child) is not live:
                setattr(parent, child, live)


_USES_CACHE_MAX = 50_000


class _LiveView(dict[str, types.ModuleType]):
    """The live modules the batch took out of ``sys.modules`` (staged ones and removed)."""

    def __init__(self, staged: Staged) -> None:
        super().__init__()
        self._staged = staged

    def __len__(self) -> int:
        staged = self._staged
        return len(staged.live) + len(staged.removed) + len(staged.shadowed)

    def __contains__(self, name: object) -> bool:
        staged = self._staged
        return name in staged.live or name in staged.removed or name in staged.shadowed

    def __iter__(self) -> Iterator[str]:
        yield from list(self._staged.live)
        yield from list(self._staged.removed)
        yield from list(self._staged.shadowed)

    def get(self, name: str, default: Any = None) -> Any:
        staged = self._staged
        return (
            staged.live.get(name) or staged.removed.get(name)
            or staged.shadowed.get(name, default)
        )


def _stage_error(exc: BaseException, module: str, graph: ModuleGraph) -> ReloadError:
    """A ReloadError located at the innermost project frame of ``exc``."""
    path: Path | None = None
    lineno: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename:
        path, lineno = Path(exc.filename), exc.lineno
    for frame, line in traceback.walk_tb(exc.__traceback__):
        candidate = Path(frame.f_code.co_filename)
        if candidate.is_absolute() and graph.is_project_file(candidate):
            path, lineno = candidate, line
    error = ReloadError(
        f"{type(exc).__name__}: {exc}", path=path, module=module, lineno=lineno, phase="stage"
    )
    return error


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without hotmod's and importlib's own frames."""
    te = traceback.TracebackException.from_exception(exc)
    hotmod_dir = str(Path(__file__).parent.parent)
    te.stack = traceback.StackSummary.from_list(
        [
            f for f in te.stack
            if not f.filename.startswith(hotmod_dir) and "importlib" not in f.filename
        ]
    )
    return "".join(te.format())
