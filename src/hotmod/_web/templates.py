"""Jinja templates of the served Flask app, reloaded in the same transaction as Python files.

A template is read when it is first rendered, not at import time, so no module
re-executes for it. This participant takes the changed files under the app's
and its blueprints' template folders (``batch.claim``), compiles each while
staging (a syntax error fails the batch, reported with file and line, and
nothing of the batch is applied) and, at commit, puts the compiled template in
the live Jinja environment's cache, with an undo. Jinja's own ``auto_reload``
is off (see :func:`~hotmod._web.flaskapp.disable_auto_reload`): an edit that
failed is never picked up from disk behind the transaction's back.

A batch that also rebuilds the app needs nothing more: the new app's Jinja
environment starts with an empty cache and reads the templates as they are.
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._engine.participants import BaseParticipant
from .._errors import ReloadError

if TYPE_CHECKING:
    from .._engine.batch import Batch
    from .._engine.undo import UndoLog
    from .slot import AppSlot

logger = logging.getLogger(__name__)

_MISSING: Any = object()


class TemplateParticipant(BaseParticipant):
    """Claims, compiles and installs edited templates of ``slot``'s Flask app."""

    name = "flask-templates"
    order = 150  # before the app participant (200): claims come first

    def __init__(self, slot: AppSlot) -> None:
        self.slot = slot
        self._changed: dict[int, list[str]] = {}  # id(batch) -> changed template names
        self._staged: dict[int, list[tuple[str, Any]]] = {}  # id(batch) -> (name, template)
        self._folders: tuple[tuple[int, int], list[Path]] = ((0, -1), [])

    def folders(self) -> list[Path]:
        """The live app's template folders (its own first, then its blueprints')."""
        app = self.slot.app
        key = (id(app), self.slot.generation)
        if self._folders[0] == key:
            return self._folders[1]  # the watcher asks for every changed file
        loaders = [app.jinja_loader, *(bp.jinja_loader for bp in app.iter_blueprints())]
        found: list[Path] = []
        for loader in loaders:
            for folder in getattr(loader, "searchpath", ()):
                # Both spellings: the watcher reports resolved paths.
                for path in (Path(os.path.abspath(folder)), Path(os.path.realpath(folder))):
                    if path not in found:
                        found.append(path)
        self._folders = (key, found)
        return found

    def interesting(self, path: str) -> bool:
        """Whether the changed file ``path`` is in a template folder (for the watcher)."""
        return _template_name(Path(os.path.abspath(path)), self.folders()) is not None

    # -- the participant steps ----------------------------------------------------------
    def prepare(self, batch: Batch) -> None:
        folders = self.folders()
        changed = []
        for path in batch.plan.ignored:
            name = _template_name(path, folders)
            if name is None:
                continue
            if path not in batch.claimed:
                batch.claim(path, self.name)
            if name not in changed:
                changed.append(name)
        if changed:
            self._changed[id(batch)] = changed

    def stage(self, batch: Batch) -> None:
        """Compile every changed template against the live environment (touching nothing)."""
        changed = self._changed.get(id(batch))
        if not changed:
            return
        from jinja2 import TemplateNotFound, TemplateSyntaxError

        env = self.slot.app.jinja_env
        staged: list[tuple[str, Any]] = []
        for name in changed:
            # What the loader serves for that name now: the changed file, or another
            # folder's file of that name (one shadows the other, or one was deleted).
            try:
                source, filename, _ = env.loader.get_source(env, name)
            except TemplateNotFound:
                staged.append((name, None))  # gone: rendering it fails, as at start-up
                continue
            try:
                code = env.compile(source, name, filename)
            except TemplateSyntaxError as exc:
                raise ReloadError(
                    f"TemplateSyntaxError: {exc.message} ({name}, line {exc.lineno})",
                    path=Path(filename) if filename else None, lineno=exc.lineno,
                    phase="stage",
                ) from exc
            staged.append((name, env.template_class.from_code(
                env, code, env.make_globals(None), None
            )))
        self._staged[id(batch)] = staged

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        """The compiled templates replace the cached ones (undoably)."""
        staged = self._staged.get(id(batch))
        if not staged:
            return
        env = self.slot.app.jinja_env
        cache = env.cache
        if cache is None or env.loader is None:
            return  # Jinja caches nothing: every render reads the file
        for name, template in staged:
            key = (weakref.ref(env.loader), name)
            old = cache.get(key, _MISSING)
            undo.on_rollback(functools.partial(_restore, cache, key, old))
            if template is None:
                if old is not _MISSING:
                    del cache[key]
            else:
                cache[key] = template

    def committed(self, batch: Batch) -> None:
        self.abandon(batch)

    def abandon(self, batch: Batch) -> None:
        self._changed.pop(id(batch), None)
        self._staged.pop(id(batch), None)


def _restore(cache: Any, key: object, old: Any) -> None:
    if old is _MISSING:
        if key in cache:
            del cache[key]
    else:
        cache[key] = old


def _template_name(path: Path, folders: list[Path]) -> str | None:
    """``path``'s template name (relative to the first folder holding it), if any."""
    for folder in folders:
        try:
            relative = path.relative_to(folder)
        except ValueError:
            continue
        return relative.as_posix()
    return None
