"""Commit: make a staged batch live, every mutation through the batch's undo log.

The order is chosen so that nothing can fail after the old version's dispose
hooks ran (they close connections, stop threads: their effect cannot be
undone):

1. body and class patches, live closures, the reconciler's function and
   class updates, participants' commits — each may fail, and is undone;
2. the dispose hooks of the versions being replaced — they may fail, and then
   everything of step 1 is undone, but they run *before* the modules' names
   are rebound, against a frozen copy of their own code, so they see (and
   close) the old version's objects;
3. rebinding the live modules' names and dropping removed modules — plain
   dictionary operations that cannot fail;
4. bookkeeping: the hot handles and kept values of the new versions, the
   sources and records the graph knows as live.
"""

from __future__ import annotations

import functools
import gc
import sys
import types
from typing import TYPE_CHECKING

from .. import _compat
from .._errors import ReloadError
from .classpatch import apply_class_patch
from .closures import apply_closure_updates
from .patch import apply_body_patch, instance_dict, move_class_lines
from .undo import UndoLog

if TYPE_CHECKING:
    from .._hot import DisposeHook, Handle
    from .batch import Batch


def commit_batch(batch: Batch) -> None:
    """Apply ``batch`` to the live program; raise (after nothing irreversible) on failure.

    On an exception the caller rolls back ``batch.undo``.
    """
    from .batch import record_sources

    hot, plan, staged, undo = batch.hot, batch.plan, batch.staged, batch.undo
    replaced = set(staged.modules) | plan.removed
    disposals = [
        (name, _frozen_hooks(handle)) for name in sorted(replaced)
        if (handle := hot.handles.get(name)) is not None
    ]
    functions = 0
    for module, patches in plan.patches.items():
        if module in staged.modules:
            continue  # re-executed instead: the reconciler patches its functions
        for patch in patches:
            apply_body_patch(patch, undo)
            functions += not patch.moved  # moved, not changed: not counted
        for class_patch in plan.class_patches.get(module, ()):
            apply_class_patch(class_patch, undo)
    for module, moves in plan.class_lines.items():
        if module not in staged.modules:
            move_class_lines(moves, undo)
    functions += apply_closure_updates(batch.closures, undo)
    batch.reconciler.commit(undo)
    functions += batch.reconciler.updated_functions
    batch.participants.commit(batch, undo)
    _migrate(batch)

    for name, hooks in disposals:
        data = hot.handles[name].data
        for hook in hooks:
            try:
                hook(data)
            except Exception as exc:
                raise ReloadError(
                    f"dispose hook of {name} failed: {exc!r}", module=name, phase="dispose"
                ) from exc

    # Nothing below can fail: the batch is committed.
    batch.reconciler.rebind(undo)
    for name in sorted(plan.removed):
        _drop_module(name, undo)
    undo.discard()
    batch.functions = functions
    handles, kept = hot.end()
    for name in replaced:
        hot.handles.pop(name, None)
    hot.handles.update(handles)
    hot.kept.update(kept)
    graph = batch.graph
    record_sources(plan, graph)
    for name, record in (graph.staged_records or {}).items():
        previous = graph.records.get(name)
        if previous is not None:
            record.order = previous.order
            record.nested_history = previous.nested_history  # set by record_sources
            if previous.code is record.code:  # the planner's code: its tree and facts too
                record._tree, record._info = previous._tree, previous._info
        graph.add(record)
    graph.staged_records = None
    for name in plan.removed:
        graph.remove(name)


def _migrate(batch: Batch) -> None:
    """Run the new versions' ``hot.migrate`` hooks on live instances (undoably)."""
    hooks = [
        (name, cls, hook)
        for name, handle in sorted((batch.hot.staged_handles or {}).items())
        for cls, hook in handle.migrations
    ]
    if not hooks:
        return
    for name, cls, hook in hooks:
        live = batch.reconciler.remap(cls)
        for instance in live_instances(live):
            state = instance_dict(instance)
            if state is not None:
                batch.undo.on_rollback(
                    functools.partial(_compat.replace_dict, state, dict(state))
                )
            try:
                hook(instance)
            except Exception as exc:
                raise ReloadError(
                    f"migration hook of {name} failed on {instance!r}: {exc!r}",
                    module=name, phase="migrate",
                ) from exc


def live_instances(cls: type) -> list[object]:
    """Instances of ``cls`` and its subclasses, found through the garbage collector.

    Instances of classes defined in Python refer to their class, so one
    ``gc.get_referrers`` pass finds them; it is paid only by batches that
    register a migration.
    """
    classes: list[type] = [cls]
    for klass in classes:
        subclasses: list[type] = type.__subclasses__(klass)
        classes.extend(k for k in subclasses if k not in classes)
    wanted = {id(k) for k in classes}
    return [
        obj for obj in gc.get_referrers(*classes)
        if id(type(obj)) in wanted and not isinstance(obj, type)
    ]


def _frozen_hooks(handle: Handle) -> list[DisposeHook]:
    """The handle's dispose hooks, with the code they have now.

    Committing patches functions in place; a dispose hook of the old version
    must still run the old version's code.
    """
    frozen: list[DisposeHook] = []
    for hook in handle.dispose_hooks:
        if type(hook) is types.FunctionType:
            frozen.append(_compat.clone_function(hook, hook.__globals__))
        else:
            frozen.append(hook)
    return frozen


def _drop_module(name: str, undo: UndoLog) -> None:
    if name in sys.modules:
        undo.delitem(sys.modules, name)
    parent_name, _, child = name.rpartition(".")
    parent = sys.modules.get(parent_name) if parent_name else None
    if parent is not None and child in parent.__dict__:
        undo.delattr(parent, child)
