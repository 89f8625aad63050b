"""One batch: the unit of work, from changed paths to a :class:`ReloadResult`.

Everything that lives for one batch belongs to its :class:`Batch`: the plan,
the staged modules, the hot handles the new versions created, the reconciler,
the undo log, and what each participant prepared. The reloader makes one per
set of changed files and calls :meth:`Batch.run`; the steps are

    plan → prepare (participants) → stage → commit → report
                                        ╰→ abandon (on any failure)

Nothing live changes before :meth:`commit`; a failure there unwinds the undo
log and abandons the batch, so the previous version keeps running (G1).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ReloadError, RestartRequired
from .._events import Outcome, ReloadResult
from .attributes import init_attributes
from .closures import ClosureUpdate, carry_history, find_closures
from .commit import commit_batch
from .patch import move_class_lines, move_functions
from .plan import Plan, make_plan, resolve_patches
from .policy import Policy
from .reconcile import Reconciler
from .stage import Staged, Stager, user_traceback
from .undo import UndoLog

if TYPE_CHECKING:
    from .._hot import HotState
    from .graph import ModuleGraph
    from .participants import Participant, Participants

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """One transaction over a set of changed paths (see the module docstring)."""

    paths: frozenset[Path]
    graph: ModuleGraph
    hot: HotState
    participants: Participants
    policy: Policy
    version: int  # the version that is live; a commit makes it version + 1
    started: float = field(default_factory=time.perf_counter)
    plan: Plan = field(default_factory=Plan)
    staged: Staged = field(default_factory=Staged)
    reconciler: Reconciler = field(default_factory=Reconciler)
    undo: UndoLog = field(default_factory=UndoLog)
    prepared: list[Participant] = field(default_factory=list)
    claimed: dict[Path, str] = field(default_factory=dict)  # path -> participant name
    required: dict[str, str] = field(default_factory=dict)  # module -> why it re-executes
    closures: list[ClosureUpdate] = field(default_factory=list)
    stand_ins: dict[str, dict[str, object]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    functions: int = 0
    _staging: bool = False

    # -- what participants use ----------------------------------------------------------
    @property
    def unclaimed(self) -> list[Path]:
        """Changed paths that are neither project modules nor claimed yet."""
        return [p for p in self.plan.ignored if p not in self.claimed]

    def claim(self, path: Path, participant: str) -> None:
        """``participant`` takes care of ``path`` (a template, a config file...)."""
        self.claimed[path] = participant

    def require(self, module: str, reason: str) -> None:
        """Re-execute project module ``module`` in this batch (``reason`` is reported)."""
        if module in self.graph.records:
            self.required.setdefault(module, reason)
            self.plan.reexec.add(module)

    def stand_in(self, module: str, **attrs: object) -> None:
        """While staging, staged code importing ``module`` sees ``attrs`` instead.

        For participants whose live objects must not be touched before the
        commit: stand in for ``app`` with a recorder, replay what it recorded
        onto the live app in ``commit``. Staged bindings of a stand-in become
        the live object at commit. Call it from ``prepare``.
        """
        self.stand_ins.setdefault(module, {}).update(attrs)

    def map_back(self, staged: object, live: object) -> None:
        """Wherever staged code put ``staged``, the live program gets ``live`` at commit."""
        self.reconciler.map_back(staged, live)

    def live(self, obj: object) -> object:
        """``obj`` (made by staged code) with staged functions and classes replaced
        by their live counterparts; containers are updated in place. Call it
        from ``commit``, for objects built while staging that outlive the batch
        (a new app's view functions)."""
        return self.reconciler.remap(obj)

    def staged_module(self, name: str) -> types.ModuleType | None:
        """The staged (new) version of ``name`` in this batch, if it was re-executed."""
        return self.staged.modules.get(name) or self.staged.new.get(name)

    # -- the steps ------------------------------------------------------------------------
    def run(self) -> ReloadResult:
        """Plan, stage and commit; every failure leaves the previous version running."""
        declined = {n for n, h in self.hot.handles.items() if h.declined}
        try:
            self.plan = make_plan(self.paths, self.graph, declined=declined)
        except ReloadError as exc:
            return self._result(Outcome.FAILED, error=exc, traceback=_one_line_tb(exc))
        if self.plan.restart is not None:
            return self._restart(self.plan.restart)
        try:
            self.participants.prepare(self)
        except RestartRequired as exc:
            self.abandon()
            return self._restart(exc.reason)
        except Exception as exc:
            self.abandon()
            return self._failed(exc, phase="prepare")
        if self.plan.empty and not self.claimed:
            self.abandon()
            record_sources(self.plan, self.graph)
            return self._result(Outcome.UNCHANGED)
        try:
            self._stage()
        except RestartRequired as exc:
            self.abandon()
            return self._restart(exc.reason)
        except ReloadError as exc:
            self.abandon()
            cause = exc.__cause__ or exc
            return self._result(Outcome.FAILED, error=exc, traceback=user_traceback(cause))
        except Exception as exc:  # a participant's stage step
            self.abandon()
            return self._failed(exc, phase="stage")
        if (self.plan.empty or self.plan.moved_only) and not (
            self.staged.modules or self.claimed
        ):
            self.abandon()
            # Comments or blank lines moved functions: no new version, but their
            # tracebacks name the lines they are on now.
            for patches in self.plan.patches.values():
                move_functions(patches)
            for moves in self.plan.class_lines.values():
                move_class_lines(moves)
            record_sources(self.plan, self.graph)
            return self._result(Outcome.UNCHANGED)
        if self.policy.strict and self.notes:
            self.abandon()
            return self._restart(f"--strict: {self.notes[0]}")
        try:
            with self.participants.holding(self):
                try:
                    commit_batch(self)
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    # Rolled back under the hold: nobody sees the half-made commit.
                    return self._rolled_back(exc)
        except Exception as exc:  # a participant refused to hold (before any commit step)
            self.abandon()
            return self._failed(exc, phase="commit")
        self.participants.committed(self)
        reexecuted = tuple(self.staged.order)
        patched = tuple(sorted(set(self.plan.patches) - set(reexecuted)))
        return self._result(
            Outcome.APPLIED, version=self.version + 1, patched=patched, reexecuted=reexecuted,
            removed=tuple(sorted(self.plan.removed)), functions=self.functions,
            claimed=tuple(sorted(self.claimed)),
            notes=tuple(self.notes),
        )

    def _stage(self) -> None:
        resolve_patches(self.plan, self.graph)
        if self.plan.empty:
            if self.claimed:  # comments only, but claimed files (templates) still stage
                self.participants.stage(self)
            return  # comments and blank lines only
        self._staging = True
        stager = Stager(self.graph, self.hot)
        self.staged = stager.stage(
            self.plan, self.reconciler, accepted=self._accepted(), stand_ins=self.stand_ins
        )
        for delta in self.staged.deltas.values():
            self.notes.extend(delta.notes)
        for module, names in sorted(self.plan.unmatched.items()):
            if module in self.staged.modules:
                continue  # re-executed: the reconciler maps what it finds
            for qualname in names:
                self.notes.append(
                    f"{module}.{qualname}: changed, but no live function runs it (held by an"
                    " object hotmod cannot see into); the old code may still run"
                )
        self.closures, notes = find_closures(self.plan, self.graph, self.staged)
        self.notes.extend(notes)
        self.notes.extend(self._new_attributes())
        self.participants.stage(self)

    def _new_attributes(self) -> list[str]:
        """Classes whose ``__init__`` now sets attributes that old instances lack.

        A class with a ``hot.migrate`` hook in the new version is left to it.
        """
        migrated = {
            (cls.__module__, cls.__qualname__)
            for handle in (self.hot.staged_handles or {}).values()
            for cls, _ in handle.migrations
        }
        notes = []
        for module, change in sorted(self.plan.changes.items()):
            record = self.graph.records.get(module)
            if change.tree is None or record is None:
                continue
            if module not in self.plan.patches and module not in self.staged.modules:
                continue
            old_classes = {s.name: s for s in record.tree.body if isinstance(s, ast.ClassDef)}
            for stmt in change.tree.body:
                if not isinstance(stmt, ast.ClassDef) or old_classes.get(stmt.name) is stmt:
                    continue  # unchanged statements (the quick path shares them)
                old_stmt = old_classes.get(stmt.name)
                before = init_attributes([old_stmt]) if old_stmt is not None else {}
                for qualname, attrs in sorted(init_attributes([stmt]).items()):
                    added = attrs - before.get(qualname, attrs)
                    if added and (module, qualname) not in migrated:
                        notes.append(
                            f"{module}.{qualname}: __init__ now sets {', '.join(sorted(added))};"
                            " instances made before lack them (migrate them with hot.migrate)"
                        )
        return notes

    def _accepted(self) -> set[str]:
        return {n for n, h in self.hot.handles.items() if h.accepted}

    # -- endings --------------------------------------------------------------------------
    def abandon(self) -> None:
        """Forget everything staged: the batch will not be committed."""
        if self._staging:
            self._staging = False
            self.hot.end()
            Stager(self.graph, self.hot).abandon(self.staged.new)
        self._abandon_participants()

    def _abandon_participants(self) -> None:
        # Logged by the loop; the batch's own outcome is what counts.
        with contextlib.suppress(Exception):
            self.participants.abandon(self)

    def _rolled_back(self, exc: BaseException) -> ReloadResult:
        # Undo first (participants' commits included, in reverse), then let
        # everyone forget what they staged: an undo step may still need it.
        try:
            self.undo.rollback()
        except ReloadError as rollback_error:
            self.abandon()
            return self._result(
                Outcome.FAILED, error=rollback_error, traceback=user_traceback(exc)
            )
        self.abandon()
        return self._failed(exc, phase="commit")

    def _failed(self, exc: BaseException, *, phase: str) -> ReloadResult:
        error = exc if isinstance(exc, ReloadError) else ReloadError(
            f"{type(exc).__name__}: {exc}", phase=phase
        )
        if error is not exc:
            error.__cause__ = exc
        return self._result(Outcome.FAILED, error=error, traceback=user_traceback(exc))

    def _restart(self, reason: str) -> ReloadResult:
        if not self.policy.restarts:
            error = ReloadError(f"needs a restart, which this host never does: {reason}",
                                phase="plan")
            return self._result(Outcome.FAILED, error=error, reason=reason)
        return self._result(Outcome.RESTART, reason=reason)

    def _result(self, outcome: Outcome, **fields: Any) -> ReloadResult:
        elapsed = (time.perf_counter() - self.started) * 1000
        fields.setdefault("version", self.version)
        return ReloadResult(
            outcome, paths=tuple(sorted(self.paths)), duration_ms=elapsed, **fields
        )


def record_sources(plan: Plan, graph: ModuleGraph) -> None:
    """The changed files' new sources become the versions the graph knows as live."""
    for name, change in plan.changes.items():
        record = graph.records.get(name)
        if record is None or change.source is None or change.code is None:
            continue
        record.nested_history = carry_history(record.code, change.code, record.nested_history)
        record.source, record.code = change.source, change.code
        record.stale_lines = change.stale_lines
        record._tree, record._info = change.tree, change._info
        if record._info is None:
            graph.cold.add(name)  # scanned off the critical path (ModuleGraph.warm)
        with contextlib.suppress(OSError):
            record.mtime_ns = change.path.stat().st_mtime_ns


def _one_line_tb(exc: ReloadError) -> str:
    cause = exc.__cause__
    if isinstance(cause, SyntaxError):
        import traceback

        return "".join(traceback.format_exception_only(cause))
    return str(exc)
