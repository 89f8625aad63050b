"""Live closures: functions made at run time from a nested ``def`` that was edited.

``def make(): def handler(): ...; return handler`` — the program holds
``handler`` objects made long ago (a view defined inside ``create_app()``, a
callback made by a factory). Nothing in any module's namespace leads to
them, so the only way to find them is to ask the garbage collector which
objects refer to the old code object. That costs a pass over the heap, so it
is done only for batches that change a nested function's code, never for a
plain body edit and never at start-up (docs/benchmarks.md measures it).

A closure whose new code has other free variables cannot take the new code
(CPython's rule): it is reported, and ``--strict`` restarts.
"""

from __future__ import annotations

import functools
import gc
import types
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _compat
from .patch import changed_keys, code_index
from .undo import UndoLog

if TYPE_CHECKING:
    from .graph import ModuleGraph
    from .plan import Plan
    from .stage import Staged


@dataclass(frozen=True)
class ClosureUpdate:
    """One live function made from an edited nested ``def``, and its new code."""

    func: types.FunctionType
    code: types.CodeType


# Older code objects of a module's nested functions that were equal to the
# version now recorded, or differed only in where they start, by code key. A
# closure made before an unrelated reload still runs one of them (a recompile
# makes equal, not identical, code; an edit above moves it: such closures keep
# the old lines until their code really changes, rather than every such edit
# paying for a heap pass). Kept on the module's record; weak, so gone when no
# closure runs them any more.
NestedHistory = dict[tuple[str, int], list["weakref.ref[types.CodeType]"]]


def nested_changes(
    old: types.CodeType, new: types.CodeType, history: NestedHistory
) -> list[tuple[types.CodeType, types.CodeType]]:
    """(old nested function code, its new version) for those that changed.

    Equal older versions still run by closures come too. A list, not a dict:
    code objects compare (and hash) by value, and equal versions are distinct.
    """
    old_by_key, _ = code_index(old)
    new_by_key, _ = code_index(new)
    changed: list[tuple[types.CodeType, types.CodeType]] = []
    for key in changed_keys(old, new):
        if "<locals>" not in key[0]:
            continue
        before, after = old_by_key[key], new_by_key.get(key)
        if after is None or after is before or _compat.code_equal(before, after):
            continue
        if _compat.only_moved(before, after):
            continue  # lines moved, nothing else: no heap pass for that (see carry_history)
        changed.append((before, after))
        for ref in history.get(key, ()):
            older = ref()
            if older is not None:
                changed.append((older, after))
    return changed


def carry_history(
    old: types.CodeType, new: types.CodeType, previous: NestedHistory
) -> NestedHistory:
    """The history to keep once ``new`` replaces ``old`` as a module's recorded code."""
    if not previous and not any("<locals>" in c.co_qualname for c in _compat.iter_code_tree(old)):
        return {}
    old_by_key, _ = code_index(old)
    new_by_key, _ = code_index(new)
    history: NestedHistory = {}
    changed = changed_keys(old, new)
    unchanged = set(previous).difference(changed)
    for key in [*unchanged, *changed]:
        before, after = old_by_key.get(key), new_by_key.get(key)
        if "<locals>" not in key[0] or before is None or after is None:
            continue
        alive = [r for r in previous.get(key, ()) if r() is not None]
        if after is before:
            if alive:
                history[key] = alive  # the same code object: nothing new to remember
        elif _compat.code_equal(before, after) or _compat.only_moved(before, after):
            history[key] = [*alive, weakref.ref(before)]
    return history


def find_closures(
    plan: Plan, graph: ModuleGraph, staged: Staged
) -> tuple[list[ClosureUpdate], list[str]]:
    """Live functions still running an edited nested function's old code.

    Returns the updates to apply at commit and notes for closures that cannot
    take the new code. One heap pass for the whole batch, only if needed.
    """
    targets: dict[int, types.CodeType] = {}
    originals: list[types.CodeType] = []
    for module, change in plan.changes.items():
        record = graph.records.get(module)
        if change.code is None or record is None:
            continue
        if module not in plan.patches and module not in staged.modules:
            continue  # not applied in this batch
        for before, after in nested_changes(record.code, change.code, record.nested_history):
            targets[id(before)] = after
            originals.append(before)
    if not targets:
        return [], []
    updates: list[ClosureUpdate] = []
    notes: list[str] = []
    patched = {id(p.func) for patches in plan.patches.values() for p in patches}
    for referrer in gc.get_referrers(*originals):
        if type(referrer) is not types.FunctionType or id(referrer) in patched:
            continue  # the enclosing code's constants, frames; functions patched already
        replacement = targets.get(id(referrer.__code__))
        if replacement is None:
            continue
        if _compat.can_swap_code(referrer, replacement):
            updates.append(ClosureUpdate(referrer, replacement))
        else:
            notes.append(
                f"{referrer.__module__}.{referrer.__qualname__}: a live closure cannot take"
                " the new code (its free variables changed); it runs the old code"
            )
    return updates, notes


def apply_closure_updates(updates: list[ClosureUpdate], undo: UndoLog) -> int:
    """Swap the new code into each live closure (undoably); the number updated."""
    for update in updates:
        state = _compat.function_state(update.func)
        update.func.__code__ = update.code
        update.func.__doc__ = _compat.code_docstring(update.code)
        undo.on_rollback(functools.partial(_compat.restore_function, update.func, state))
    return len(updates)
