"""Jinja templates of the served Flask app, reloaded in the same transaction as Python files.

A template is read when it is first rendered, not at import time, so no module
re-executes for it. This participant takes the changed files under the app's
and its blueprints' template folders (``batch.claim``) and, while staging,
compiles what the app's loader now serves for each changed name (a syntax
error fails the batch, reported with file and line, and nothing of the batch
is applied). At commit, undoably, the new texts become the committed ones the
app reads (:mod:`hotmod._web.templatesources`) and the compiled templates
replace the cached ones in the live Jinja environment.

A batch that also rebuilds the app needs nothing more: the new app's Jinja
environment starts with an empty cache and reads the committed texts.
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._engine.participants import BaseParticipant
from .._errors import ReloadError
from .templatesources import TemplateSources, disk_loader, template_folders

if TYPE_CHECKING:
    from .._engine.batch import Batch
    from .._engine.undo import UndoLog
    from .slot import AppSlot

logger = logging.getLogger(__name__)

_MISSING: Any = object()


@dataclass
class _Staged:
    """One changed template name, as the batch will make it live."""

    name: str
    paths: list[Path]  # the changed files that have this name
    filename: str | None = None  # the file that serves it now (None: no file does)
    source: str | None = None
    template: Any = None  # compiled against the live environment


class TemplateParticipant(BaseParticipant):
    """Claims, compiles and installs edited templates of ``slot``'s Flask app."""

    name = "flask-templates"
    order = 150  # before the app participant (200): claims come first

    def __init__(self, slot: AppSlot, sources: TemplateSources) -> None:
        self.slot = slot
        self.sources = sources
        self._staged: dict[int, dict[str, _Staged]] = {}  # id(batch) -> by template name
        self._folders: tuple[tuple[int, int], list[Path]] = ((0, -1), [])

    def folders(self) -> list[Path]:
        """The live app's template folders, both as given and resolved."""
        app = self.slot.app
        key = (id(app), self.slot.generation)
        if self._folders[0] == key:
            return self._folders[1]  # the watcher asks for every changed file
        found: list[Path] = []
        for folder in template_folders(app):
            # Both spellings: the watcher reports resolved paths.
            for path in (Path(folder), Path(os.path.realpath(folder))):
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
        changed: dict[str, _Staged] = {}
        for path in batch.plan.ignored:
            name = _template_name(path, folders)
            if name is None:
                continue
            if path not in batch.claimed:  # a file read at import time may be a template too
                batch.claim(path, self.name)
            changed.setdefault(name, _Staged(name, [])).paths.append(path)
        if changed:
            self._staged[id(batch)] = changed

    def stage(self, batch: Batch) -> None:
        """Compile what the loader serves for each changed name now (touching nothing live)."""
        changed = self._staged.get(id(batch))
        if not changed:
            return
        from jinja2 import TemplateNotFound, TemplateSyntaxError

        env = self.slot.app.jinja_env
        loader = disk_loader(env)
        for staged in changed.values():
            # The changed file, or another folder's file of that name (one shadows
            # the other, or one was deleted): what a fresh start would serve.
            try:
                source, filename, _ = loader.get_source(env, staged.name)
            except TemplateNotFound:
                continue  # gone: rendering it fails, as at start-up
            try:
                code = env.compile(source, staged.name, filename)
            except TemplateSyntaxError as exc:
                raise ReloadError(
                    f"TemplateSyntaxError: {exc.message} ({staged.name}, line {exc.lineno})",
                    path=Path(filename) if filename else None, lineno=exc.lineno,
                    phase="stage",
                ) from exc
            staged.filename, staged.source = filename, source
            staged.template = env.template_class.from_code(
                env, code, env.make_globals(None), None
            )

    def commit(self, batch: Batch, undo: UndoLog) -> None:
        """The new texts are committed and the compiled templates cached (undoably)."""
        changed = self._staged.get(id(batch))
        if not changed:
            return
        env = self.slot.app.jinja_env
        cache = env.cache if env.loader is not None else None
        for staged in changed.values():
            for path in staged.paths:
                if not path.exists():
                    self.sources.set(str(path), None, undo)
            if staged.filename is not None and staged.source is not None:
                self.sources.set(staged.filename, staged.source, undo)
            if cache is None:
                continue  # Jinja caches nothing: every render reads the committed text
            key = (weakref.ref(env.loader), staged.name)
            old = cache.get(key, _MISSING)
            undo.on_rollback(functools.partial(_restore, cache, key, old))
            if staged.template is not None:
                cache[key] = staged.template
            elif old is not _MISSING:
                del cache[key]

    def committed(self, batch: Batch) -> None:
        self._staged.pop(id(batch), None)

    def abandon(self, batch: Batch) -> None:
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
